"""The province's own procedure catalogue, read from its database through the province boundary
(``dvcsync.province.catalogue``: the tables and columns are ``catalogue`` and ``fees`` of
``mappings/province.yaml``), and what the mapping makes of each local code today (the national
code the dossiers are pushed with, or why none).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from dvcsync.mapping import CodeLookupError, MappingSet
from dvcsync.mapping.codes import CodeSkipped
from dvcsync.province.catalogue import fees_charged, local_procedures
from dvcsync.province.schema import ProvinceSchema

from .matcher import LocalProcedure


def read_local(engine: Engine, schema: ProvinceSchema | None = None) -> list[LocalProcedure]:
    """Every local procedure, with the fee most often charged for it (none when it was never)."""
    charged = fees_charged(engine, schema)
    out = []
    for row in local_procedures(engine, schema):
        fees = charged.get(row.code)
        out.append(
            LocalProcedure(
                code=row.code,
                name=row.name,
                national_code=row.national_code,
                unverified=row.unverified,
                sector_code=row.sector_code,
                sector_name=row.sector_name,
                fees=(fees.most_common(1)[0][0],) if fees else (),
                days=row.days,
                agency=getattr(row, "agency", None),  # when the province boundary reads one
            )
        )
    return out


@dataclass(frozen=True)
class MappedCode:
    """What the mapping does with a local procedure code today."""

    code: str | None  # the national code dossiers are pushed with
    skipped: str | None = None  # a decision: no national equivalent (not sent)
    missing: bool = False  # no entry: its dossiers are quarantined


def procedure_table(mappings: MappingSet, mapping: str = "dossier", field: str = "MaTTHC") -> tuple[str, str]:
    """(code table, attribute) that give a dossier its national code: read from the mapping spec."""
    spec = mappings.specs[mapping].fields[field]
    if spec.code is None:
        raise LookupError(f"mapping {mapping!r} does not take {field} from a code table")
    return spec.code, spec.attr or ""


def mapped_code(mappings: MappingSet, local_code: str) -> MappedCode:
    table_name, attr = procedure_table(mappings)
    table = mappings.codes[table_name]
    try:
        value = table.lookup(local_code)
    except CodeSkipped as exc:
        return MappedCode(None, skipped=exc.entry.reason)
    except CodeLookupError:
        return MappedCode(None, missing=True)
    found = value.get(attr) if attr and isinstance(value, dict) else value
    return MappedCode(str(found) if found else None, missing=not found)


def decided(mappings: MappingSet, local_code: str) -> bool:
    """Whether a person decided this code already (an entry or a skip of the table's overlay)."""
    table = mappings.codes[procedure_table(mappings)[0]]
    overlay = table.overlay
    return overlay is not None and (local_code in overlay.skip or local_code in overlay.own_keys())
