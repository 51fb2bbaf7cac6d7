"""The province's own procedure catalogue and the fees charged per procedure, on the province
schema's names (``catalogue``, ``fees``, ``dossiers`` of ``mappings/province.yaml``)."""

from __future__ import annotations

import re
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
    """Every local procedure, by code (its national code from its own row, or from the table of
    national codes when ``catalogue.national_codes`` names one)."""
    c = (schema or ProvinceSchema()).catalogue
    with engine.connect() as conn:
        q = conn.dialect.identifier_preparer.quote
        national, join = f"c.{q(c.national_code)}", ""
        if c.national_codes is not None:
            m = c.national_codes
            national = f"m.{q(m.national_code)}"
            join = f" LEFT JOIN {q(m.table)} m ON m.{q(m.code)} = c.{q(c.code)}"
        unverified = f"c.{q(c.unverified)}" if c.unverified else "0"
        days = f"c.{q(c.days)}" if c.days else "NULL"
        rows = conn.execute(
            text(
                f"SELECT c.{q(c.code)}, c.{q(c.name)}, {national}, {unverified},"
                f" c.{q(c.sector_code)}, c.{q(c.sector_name)}, {days} FROM {q(c.table)} c{join}"
                f" ORDER BY c.{q(c.code)}"
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
            _days(days),
        )
        for code, name, national, unverified, sector_code, sector_name, days in rows
    ]


_NUMBER = re.compile(r"\s*(\d+(?:[.,]\d+)?)")


def _days(value: object) -> float | None:
    """Processing days: a number, or text starting with one ("15 ngày làm việc"); None when the
    text names no number (a catalogue's free text is not an error)."""
    if value is None or isinstance(value, int | float):
        return float(value) if value is not None else None
    found = _NUMBER.match(str(value))
    return float(found.group(1).replace(",", ".")) if found else None


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
