"""One cycle of each job, with its run recorded; what `dvcsync sync` and the scheduler call."""

from __future__ import annotations

import json
import time

from sqlalchemy import insert, update

from adapter.config import Settings
from adapter.mapping import MappingSet
from adapter.state.store import RUN_T

from .push import ProgressFn, PushJob, PushSummary
from .runtime import open_runtime


async def run_push(
    settings: Settings, mappings: MappingSet, *, progress: ProgressFn | None = None
) -> PushSummary:
    async with open_runtime(settings, mappings) as rt:
        started = time.time()
        with rt.store.begin() as conn:
            inserted = conn.execute(
                insert(RUN_T).values(job="push", started_at=started, status="running", counts="{}")
            ).inserted_primary_key
            assert inserted is not None
            run_id = inserted[0]
        status, error = "failed", None
        try:
            job = PushJob(settings, mappings, rt.store, rt.client, rt.source, progress=progress)
            summary = await job.run_cycle()
            status = "ok" if summary.dead == 0 else "dead-letters"
            return summary
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            with rt.store.begin() as conn:
                values = {"finished_at": time.time(), "status": status, "error": error}
                if status != "failed":
                    values["counts"] = json.dumps(summary.as_dict(), ensure_ascii=False)
                conn.execute(update(RUN_T).where(RUN_T.c.id == run_id).values(**values))
