"""Which jobs run at start-up (issue 20 item 10): a job scheduled monthly or yearly (a cron
expression naming days of the month, months or days of the week) runs on its days only, never
because the service started; intervals and daily cron expressions run at start-up as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dvcsync import scheduler as scheduler_module
from dvcsync.config import ScheduleSettings, Settings
from dvcsync.scheduler import TenantJobs, runs_at_startup


@pytest.mark.parametrize(
    ("name", "schedule", "expected"),
    [
        ("push", "every 60s", True),
        ("prune", "every 24h", True),
        ("prune", "0 3 * * *", True),  # daily
        ("pull", "*/5 * * * *", True),
        ("satisfaction", "0 2 1 * *", False),  # monthly: the default
        ("pull", "0 4 1 * *", False),
        ("prune", "0 3 1 1 *", False),  # yearly
        ("prune", "0 3 * 6 *", False),  # in June only
        ("prune", "0 3 * * 0", False),  # Sundays only
        ("catalogue", "every 24h", False),  # deferred
        ("reconcile", "0 1 * * *", False),
    ],
)
def test_runs_at_startup(name: str, schedule: str, expected: bool) -> None:
    assert runs_at_startup(name, schedule) is expected


def test_the_service_gives_a_start_up_run_only_to_the_jobs_that_have_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # whatever a job might write lands here
    added: dict[str, dict[str, Any]] = {}

    class Recording(scheduler_module.AsyncIOScheduler):  # type: ignore[misc]
        def add_job(self, func: Any, trigger: Any = None, **kwargs: Any) -> Any:
            added[kwargs["id"]] = kwargs
            return super().add_job(func, trigger, **kwargs)

    async def nothing() -> None:  # a job must not reach a portal or a database here
        return None

    monkeypatch.setattr(scheduler_module, "AsyncIOScheduler", Recording)
    monkeypatch.setattr(scheduler_module, "UNLOCKED", frozenset(scheduler_module.JOBS))  # no state lock
    monkeypatch.setattr(
        scheduler_module, "_jobs", lambda *a: {name: (nothing, None) for name in scheduler_module.JOBS}
    )
    schedule = ScheduleSettings(
        satisfaction="0 2 1 * *", pull="0 4 1 * *", prune="0 3 1 1 *", push="every 60s"
    )
    settings = Settings().model_copy(update={"schedule": schedule})
    jobs = TenantJobs("", settings, None)  # type: ignore[arg-type]
    jobs.start()
    try:
        assert set(added) == set(scheduler_module.JOBS)
        at_start = {name for name, kwargs in added.items() if "next_run_time" in kwargs}
        assert at_start == {"push", "payments"}
    finally:
        jobs.stop()
        assert jobs.join(30)
