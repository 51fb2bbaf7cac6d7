"""The scheduled ``reconcile`` job of ``dvcsync run``: a dated report of the last
``[reconcile] period_days`` days, with the configured formats and portal check, recorded in the
runs table like the other jobs; older dated reports beyond ``keep_reports`` are removed."""

from __future__ import annotations

from typing import Any

from dvcsync.config import Settings
from dvcsync.mapping import MappingSet
from dvcsync.sync.runtime import open_runtime

from .period import Period
from .run import ReconcileOptions, reconcile


async def run_reconcile_job(settings: Settings, mappings: MappingSet) -> dict[str, Any]:
    cfg = settings.reconcile
    options = ReconcileOptions(
        period=Period.last_days(cfg.period_days), formats=list(cfg.formats), portal_check=cfg.portal_check
    )
    async with open_runtime(settings, mappings) as runtime:
        run_id = runtime.store.start_run("reconcile")
        try:
            result = await reconcile(runtime, options)
        except BaseException as exc:
            runtime.store.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}"[:500])
            raise
        counts = {k: v for k, v in result.report.counts.items() if v}
        runtime.store.finish_run(
            run_id,
            "ok" if not result.report.total else "mismatches",
            {**counts, "total": result.report.total, "report": str(result.out_dir)},
        )
    return {"mismatches": result.report.total, "report": str(result.out_dir)}


__all__ = ["run_reconcile_job"]
