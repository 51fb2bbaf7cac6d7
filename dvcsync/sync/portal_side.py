"""What a real portal already holds of a province's dossiers that were submitted on it: the
demo and `dvcsync mock-portal --knows` give these to the mock, so the status reports the push
sends for them find their dossier, as on the real portal."""

from __future__ import annotations

from typing import Any

from dvcsync.mapping import MappingSet


def portal_side_dossiers(source_url: str, mappings: MappingSet) -> list[dict[str, Any]]:
    """The portal's records (``HoSoCongDVC``) of the source's dossiers submitted on the portal (those
    the mapping with ``applies_to`` takes: the portal's code filled in the sample, ``systemId =
    5`` on OpenCPS), under the portal's code (that mapping's ``MaHoSo`` column): what a real portal
    holds for them before the province reports their status."""
    from dvcsync.contract import HoSoCongDVC
    from dvcsync.province.source import SqlSource, make_engine

    spec = mappings.specs["dossier"]
    assert spec.source is not None
    status = next((s for s in mappings.specs.values() if s.applies_to is not None), None)
    code_column = status.fields["MaHoSo"].path if status is not None and "MaHoSo" in status.fields else None
    if status is None or status.applies_to is None or code_column is None:
        return []
    applies = status.applies_to
    keep = set(HoSoCongDVC.model_fields)
    bodies: list[dict[str, Any]] = []
    params: dict[str, Any] = {}

    def bind(value: Any) -> str:
        params[f"_portal{len(params)}"] = value
        return f":_portal{len(params) - 1}"

    engine = make_engine(source_url)
    try:
        where = applies.test.sql(engine.dialect.identifier_preparer.quote(applies.column), bind)
        for page in SqlSource(engine, spec.source).iter_pages(1000, where=where, params=params):
            for record in page:
                mapped = mappings.get("dossier").map(record)
                if mapped.ok:  # one that cannot be mapped is quarantined by the push, never reported
                    wire = {k: v for k, v in mapped.value.to_wire().items() if k in keep}
                    bodies.append({**wire, "MaHoSo": record[code_column]})
    finally:
        engine.dispose()
    return bodies
