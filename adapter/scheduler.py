"""`dvcsync run`: the jobs on their schedules and the inbound server, in one process.

SQLite keeps its state in one file on one machine, so a second `dvcsync run` on the same state
is refused (a lock file held for the life of the process). PostgreSQL multi-replica operation
(advisory locks per job) is not built yet.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import make_url

from adapter.config import Settings
from adapter.contract import VN_TZ
from adapter.mapping import MappingSet
from adapter.server import create_server_app
from adapter.sync.cycles import run_payments, run_pull, run_push

log = logging.getLogger(__name__)
_EVERY = re.compile(r"^every\s+(\d+)\s*(s|m|h)$")


class AlreadyRunning(RuntimeError):
    """Another `dvcsync run` holds this state store."""


def trigger_for(schedule: str) -> BaseTrigger:
    """``every 60s`` / ``every 5m`` / ``every 24h``, or a 5-field cron expression (local time)."""
    match = _EVERY.match(schedule.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return IntervalTrigger(**{{"s": "seconds", "m": "minutes", "h": "hours"}[unit]: amount})
    return CronTrigger.from_crontab(schedule, timezone=VN_TZ)


def acquire_single_instance_lock(state_url: str) -> IO[str] | None:
    """Hold ``<state file>.lock`` for the life of the process (SQLite only)."""
    url = make_url(state_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path = Path(f"{url.database}.lock")
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise AlreadyRunning(
            f"{path} is held by {holder}: SQLite state allows one `dvcsync run` (use PostgreSQL for replicas)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def _job(name: str, run: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
    async def wrapped() -> None:
        try:
            summary = await run()
            log.info("%s: %s", name, getattr(summary, "as_dict", lambda: summary)())
        except Exception:  # a failed cycle is logged and recorded; the next one runs on schedule
            log.exception("%s cycle failed", name)

    return wrapped


async def run_service(settings: Settings, mappings: MappingSet) -> None:
    lock = acquire_single_instance_lock(settings.state.url)
    scheduler = AsyncIOScheduler(timezone=VN_TZ)
    jobs = {
        "push": lambda: run_push(settings, mappings),
        "pull": lambda: run_pull(settings, mappings),
        "payments": lambda: run_payments(settings, mappings),
    }
    for name, run in jobs.items():
        scheduler.add_job(
            _job(name, run),
            trigger_for(getattr(settings.schedule, name)),
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(VN_TZ),
        )
    app = create_server_app(settings, mappings)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.server.host, port=settings.server.port, log_level="warning", access_log=False
        )
    )
    scheduler.start()
    log.warning(
        "dvcsync running: inbound server on %s:%s, jobs %s",
        settings.server.host,
        settings.server.port,
        {name: getattr(settings.schedule, name) for name in jobs},
    )
    try:
        await server.serve()  # returns on SIGINT/SIGTERM
    finally:
        scheduler.shutdown(wait=False)
        for engine in app.state.engines:
            engine.dispose()
        if lock is not None:
            lock.close()
        await asyncio.sleep(0)
