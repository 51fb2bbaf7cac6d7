"""One dossier, mapped into the exact envelopes the portal would receive (operator's view)."""

from __future__ import annotations

from typing import Any

from dvcsync.config import Settings
from dvcsync.contract import PERSONAL_WIRE_FIELDS, CapNhatTienDoHoSoMCRequest, DongBoHoSoMCRequest
from dvcsync.mapping import FieldError, MappingSet, mask
from dvcsync.province.source import SqlSource, make_engine

SESSION_PLACEHOLDER = "<session>"


def mask_personal(value: Any) -> Any:
    """A copy of a wire body with personal fields masked (for printing and logs)."""
    if isinstance(value, dict):
        return {
            k: (mask(v) if k in PERSONAL_WIRE_FIELDS and isinstance(v, str) and v else mask_personal(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_personal(item) for item in value]
    return value


def build_envelopes(
    settings: Settings,
    mappings: MappingSet,
    ma_ho_so: str,
    *,
    show_personal: bool = False,
    dossier_mapping: str = "dossier",
    step_mapping: str = "step",
) -> tuple[dict[str, Any], list[FieldError]]:
    spec = mappings.specs[dossier_mapping]
    if spec.source is None:
        raise LookupError(f"mapping {dossier_mapping!r} has no source")
    engine = make_engine(settings.province.source_url)
    try:
        record = SqlSource(engine, spec.source).get(ma_ho_so)
    finally:
        engine.dispose()
    if record is None:
        raise LookupError(
            f"no dossier {ma_ho_so!r} in the source ({spec.source.table}.{spec.source.record_key})"
        )
    dossier = mappings.get(dossier_mapping).map(record)
    errors = list(dossier.errors)
    steps = []
    step_spec = mappings.specs.get(step_mapping)
    if step_spec is not None and step_spec.items_of is not None:
        for item in record.get(step_spec.items_of.child) or []:
            step = mappings.get(step_mapping).map(item, parent=record, record_key=dossier.record)
            errors.extend(step.errors)
            steps.append(step.value)
    if errors:
        return {}, errors
    common = {"session": SESSION_PLACEHOLDER, "madonvi": settings.portal.madonvi}
    envelopes: dict[str, Any] = {
        "DongBoHoSoMC": DongBoHoSoMCRequest(**common, isUpdating="False", data=[dossier.value]).to_wire(),
        "CapNhatTienDoHoSoMC": CapNhatTienDoHoSoMCRequest(**common, data=steps).to_wire(),
    }
    return (envelopes if show_personal else mask_personal(envelopes)), []


async def push_one(settings: Settings, mappings: MappingSet, ma_ho_so: str) -> dict[str, Any]:
    """Push one dossier now, through the outbox (so the state stays exact), and say what happened."""
    from .push import PushJob
    from .runtime import open_runtime

    async with open_runtime(settings, mappings) as rt:
        job = PushJob(settings, mappings, rt.store, rt.client, rt.source)
        summary = await job.push_one(ma_ho_so)
        entries = rt.store.entries_of(ma_ho_so)
    return {
        "ok": all(e["state"] in {"done", "superseded"} for e in entries),
        "summary": summary.as_dict(),
        "entries": entries,
    }
