"""The province's own procedure catalogue, read from its database, and what the mapping makes of
each local code today (the national code the dossiers are pushed with, or why none).

The sample one-stop system keeps its catalogue in ``thu_tuc`` and the fees charged per dossier in
``le_phi``; ``LocalSchema`` names those tables and columns, so another province's schema is a
matter of options, not code.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Engine, text

from adapter.mapping import CodeLookupError, MappingSet
from adapter.mapping.codes import CodeSkipped

from .matcher import LocalProcedure


@dataclass(frozen=True)
class LocalSchema:
    procedures: str = "thu_tuc"
    code: str = "ma_thu_tuc"
    name: str = "ten_thu_tuc"
    national_code: str = "ma_tthc_qg"
    unverified: str = "chua_xac_minh"
    sector_code: str = "ma_linh_vuc"
    sector_name: str = "ten_linh_vuc"
    days: str = "so_ngay_xu_ly"
    # fees charged: one row per fee of a dossier, joined to the dossier for its procedure code
    fees: str = "le_phi"
    fee_amount: str = "so_tien"
    fee_dossier: str = "ho_so_id"
    dossiers: str = "ho_so"
    dossier_id: str = "id"
    dossier_procedure: str = "ma_thu_tuc"


def read_local(engine: Engine, schema: LocalSchema | None = None) -> list[LocalProcedure]:
    """Every local procedure, with the fee most often charged for it (none when it was never)."""
    s = schema or LocalSchema()
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT {s.code}, {s.name}, {s.national_code}, {s.unverified}, {s.sector_code},"
                f" {s.sector_name}, {s.days} FROM {s.procedures} ORDER BY {s.code}"
            )
        ).all()
        charged: dict[str, Counter[int]] = {}
        for code, amount, count in conn.execute(
            text(
                f"SELECT d.{s.dossier_procedure}, f.{s.fee_amount}, COUNT(*) FROM {s.fees} f"
                f" JOIN {s.dossiers} d ON d.{s.dossier_id} = f.{s.fee_dossier} GROUP BY 1, 2"
            )
        ):
            charged.setdefault(str(code), Counter())[int(amount)] += int(count)
    out = []
    for code, name, national, unverified, sector_code, sector_name, days in rows:
        fees = charged.get(str(code))
        out.append(
            LocalProcedure(
                code=str(code),
                name=str(name),
                national_code=national or None,
                unverified=bool(unverified),
                sector_code=sector_code,
                sector_name=sector_name,
                fees=(fees.most_common(1)[0][0],) if fees else (),
                days=float(days) if days is not None else None,
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
