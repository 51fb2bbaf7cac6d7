"""The retention job: settled payloads older than ``[state] keep_days`` lose their personal data
(see ``StateStore.prune``). What `dvcsync db prune` runs, and what the scheduler can run daily."""

from __future__ import annotations

from dvcsync.config import Settings
from dvcsync.province.sink import db_error_text
from dvcsync.state import StateStore


def run_prune(settings: Settings, keep_days: float | None = None, now: float | None = None) -> dict[str, int]:
    """One prune, recorded in the runs table like the other jobs. ``keep_days`` overrides the
    setting (the command's ``--keep-days``); ``now`` is for tests."""
    days = settings.state.keep_days if keep_days is None else keep_days
    store = StateStore(settings.state.url)
    try:
        store.prepare()
        run_id = store.start_run("prune", now=now)
        try:
            counts = store.prune(days, now=now)
        except Exception as exc:
            store.finish_run(run_id, "failed", error=db_error_text(exc))
            raise
        store.finish_run(run_id, "ok", {**counts, "keep_days": days})
        return counts
    finally:
        store.close()
