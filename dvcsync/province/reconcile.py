"""What reconcile reads of the province's dossiers, on the province schema's names: every
dossier by its code on the portal (the local number, or the portal's own code for a dossier
submitted there), in byte order, streamed; and which portal codes the province holds."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from .schema import ProvinceSchema


@dataclass(frozen=True)
class DossierColumns:
    """The dossier columns reconcile compares (the schema's, unless a setting names others)."""

    received: str | None
    agency: str
    procedure: str
    owner: str | None
    portal_code: str

    @classmethod
    def of(cls, schema: ProvinceSchema) -> DossierColumns:
        d = schema.dossiers
        return cls(d.received, d.agency, d.procedure, d.owner, d.portal_code)


def _order(engine: Engine, expression: str) -> str:
    """Byte order on every database, so the stream sorts like Python compares strings (a
    PostgreSQL locale collation would order ``H40.A`` and ``H40.a`` differently, and MariaDB's
    usual ``utf8mb4_general_ci`` holds them equal). UTF-8's byte order is code point order."""
    if engine.dialect.name == "postgresql":
        return f'{expression} COLLATE "C"'
    if engine.dialect.name in ("mysql", "mariadb"):
        return f"CAST({expression} AS BINARY)"
    return expression


def dossier_rows(
    engine: Engine,
    schema: ProvinceSchema,
    columns: DossierColumns | None = None,
    *,
    agency: str | None = None,
    procedure: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Every dossier (filters applied) ordered by its code on the portal; keys ``k``,
    ``local_key``, ``updated_at``, ``received_at``, ``status``, ``agency``, ``procedure``,
    ``origin`` (the portal's code, empty for the province's own), ``owner``."""
    d = schema.dossiers
    c = columns or DossierColumns.of(schema)
    q = engine.dialect.identifier_preparer.quote
    origin, local = q(c.portal_code), q(d.key)
    key = f"CASE WHEN {origin} IS NOT NULL AND {origin} <> '' THEN {origin} ELSE {local} END"
    received = q(c.received) if c.received else "NULL"
    updated = q(d.audit.updated) if d.audit.updated else "NULL"
    owner = q(c.owner) if c.owner else "NULL"
    where, params = [], {}
    if agency:
        where.append(f"{q(c.agency)} = :agency")
        params["agency"] = agency
    if procedure:
        where.append(f"{q(c.procedure)} = :procedure")
        params["procedure"] = procedure
    # the aliases quoted too: ``procedure`` is a reserved word on MariaDB/MySQL
    sql = (
        f"SELECT {key} AS k, {local} AS local_key, {updated} AS updated_at, {received} AS received_at,"
        f" {q(d.status)} AS status, {q(c.agency)} AS agency,"
        f" {q(c.procedure)} AS {q('procedure')}, {origin} AS origin, {owner} AS owner FROM {q(d.table)}"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY {_order(engine, f'({key})')}"  # PostgreSQL orders by an expression, not an alias
    )
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(text(sql), params)
        names = list(result.keys())
        for row in result:
            yield dict(zip(names, row, strict=True))


def held_portal_codes(
    engine: Engine, schema: ProvinceSchema, codes: list[str], portal_code: str | None = None
) -> set[str]:
    """Which of the portal's codes the province holds (taken in, acknowledged or not)."""
    q = engine.dialect.identifier_preparer.quote
    origin, table = q(portal_code or schema.dossiers.portal_code), q(schema.dossiers.table)
    held: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(codes), 500):
            chunk = codes[start : start + 500]
            marks = ", ".join(f":c{n}" for n in range(len(chunk)))
            rows = conn.execute(
                text(f"SELECT {origin} FROM {table} WHERE {origin} IN ({marks})"),
                {f"c{n}": code for n, code in enumerate(chunk)},
            )
            held.update(str(row[0]) for row in rows)
    return held


__all__ = ["DossierColumns", "dossier_rows", "held_portal_codes"]
