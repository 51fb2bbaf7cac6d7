"""The province's own procedure catalogue and the fees charged per procedure, on the province
schema's names (``catalogue``, ``fees``, ``dossiers`` of ``mappings/province.yaml``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Engine, text

from .schema import ProvinceSchema


@dataclass(frozen=True)
class LocalRow:
    code: str
    name: str
    national_code: str | None
    unverified: bool
    sector_code: str | None
    sector_name: str | None
    days: float | None


def local_procedures(engine: Engine, schema: ProvinceSchema | None = None) -> list[LocalRow]:
    """Every local procedure, by code."""
    c = (schema or ProvinceSchema()).catalogue
    with engine.connect() as conn:
        q = conn.dialect.identifier_preparer.quote
        rows = conn.execute(
            text(
                f"SELECT {q(c.code)}, {q(c.name)}, {q(c.national_code)}, {q(c.unverified)},"
                f" {q(c.sector_code)}, {q(c.sector_name)}, {q(c.days)} FROM {q(c.table)} ORDER BY {q(c.code)}"
            )
        ).all()
    return [
        LocalRow(
            str(code),
            str(name),
            national or None,
            bool(unverified),
            sector_code,
            sector_name,
            float(days) if days is not None else None,
        )
        for code, name, national, unverified, sector_code, sector_name, days in rows
    ]


def fees_charged(engine: Engine, schema: ProvinceSchema | None = None) -> dict[str, Counter[int]]:
    """How often each fee amount was charged, by local procedure code."""
    s = schema or ProvinceSchema()
    d, f = s.dossiers, s.fees
    charged: dict[str, Counter[int]] = {}
    with engine.connect() as conn:
        q = conn.dialect.identifier_preparer.quote
        for code, amount, count in conn.execute(
            text(
                f"SELECT d.{q(d.procedure)}, f.{q(f.amount)}, COUNT(*) FROM {q(f.table)} f"
                f" JOIN {q(d.table)} d ON d.{q(d.id)} = f.{q(f.dossier)} GROUP BY 1, 2"
            )
        ):
            charged.setdefault(str(code), Counter())[int(amount)] += int(count)
    return charged


__all__ = ["LocalRow", "fees_charged", "local_procedures"]
