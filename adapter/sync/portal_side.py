"""What a real portal already holds of a province's dossiers that were submitted on it: the
demo and `dvcsync mock-portal --knows` give these to the mock, so the status reports the push
sends for them find their dossier, as on the real portal."""

from __future__ import annotations

from typing import Any

from adapter.mapping import MappingSet


def portal_side_dossiers(source_url: str, mappings: MappingSet) -> list[dict[str, Any]]:
    """The portal's records (``HoSoCongDVC``) of the source's dossiers that carry a portal code
    (``ma_ho_so_qg``): what a real portal holds for them before the province reports their status."""
    from adapter.contract import HoSoCongDVC
    from adapter.province.source import SqlSource, make_engine

    spec = mappings.specs["dossier"]
    assert spec.source is not None
    keep = set(HoSoCongDVC.model_fields)
    bodies: list[dict[str, Any]] = []
    engine = make_engine(source_url)
    try:
        for page in SqlSource(engine, spec.source).iter_pages(1000, where="ma_ho_so_qg IS NOT NULL"):
            for record in page:
                mapped = mappings.get("dossier").map(record)
                if mapped.ok:  # one that cannot be mapped is quarantined by the push, never reported
                    wire = {k: v for k, v in mapped.value.to_wire().items() if k in keep}
                    bodies.append({**wire, "MaHoSo": record["ma_ho_so_qg"]})
    finally:
        engine.dispose()
    return bodies
