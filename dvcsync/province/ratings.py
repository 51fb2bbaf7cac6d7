"""Citizens' ratings of returned dossiers with their dossier's procedure and agency, on the
province schema's names (``ratings``, ``dossiers`` of ``mappings/province.yaml``)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, text

from .schema import ProvinceSchema


def ratings_between(
    engine: Engine, start: date, end: date, schema: ProvinceSchema | None = None
) -> list[tuple[str, str, str, str]]:
    """``(procedure, agency, level, moment)`` of the ratings made from ``start`` (included) to
    ``end`` (excluded), by moment; the level as the province writes it. With ``ratings.through``
    a rating names a row of that table (a question asked about one dossier), which names the
    dossier."""
    s = schema or ProvinceSchema()
    d, r = s.dossiers, s.ratings
    with engine.connect() as conn:
        q = conn.dialect.identifier_preparer.quote
        params: dict[str, object] = {"start": start.isoformat(), "end": end.isoformat()}
        join, where = f"JOIN {q(d.table)} d ON d.{q(d.id)} = r.{q(r.dossier)}", ""
        if r.through is not None:  # rating → the row it answers → the dossier (OpenCPS's votes)
            t = r.through
            join = (
                f"JOIN {q(t.table)} v ON v.{q(t.id)} = r.{q(r.dossier)}"
                f" JOIN {q(d.table)} d ON d.{q(d.id)} = v.{q(t.dossier)}"
            )
            for n, (column, value) in enumerate(t.where.items()):
                where += f" AND v.{q(column)} = :w{n}"
                params[f"w{n}"] = value
        sql = text(
            f"SELECT d.{q(d.procedure)}, d.{q(d.agency)}, r.{q(r.level)}, r.{q(r.moment)} FROM {q(r.table)} r"
            f" {join} WHERE r.{q(r.moment)} >= :start AND r.{q(r.moment)} < :end{where}"
            f" ORDER BY r.{q(r.moment)}"
        )
        rows = conn.execute(sql, params).all()
    return [(str(p), str(a), str(level).strip(), str(moment)) for p, a, level, moment in rows]


__all__ = ["ratings_between"]
