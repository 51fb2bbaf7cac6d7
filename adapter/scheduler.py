"""`dvcsync run`: the jobs on their schedules and the inbound server, in one process.

A second `dvcsync run` on the same state is refused: with SQLite by a lock file held for the life
of the process, with PostgreSQL by a session advisory lock (the outbox is not yet claimed with
SKIP LOCKED, so replicas sharing one state would deliver the same entries). Several replicas
with per-job locks (DESIGN, "Running at scale") are not built yet.
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
from typing import Any, Protocol

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import NullPool

from adapter.config import Settings
from adapter.contract import VN_TZ
from adapter.mapping import MappingSet
from adapter.server import create_server_app, listen_problems, raise_open_files_limit, server_config
from adapter.sync.cycles import run_payments, run_pull, run_push
from adapter.sync.prune import run_prune

log = logging.getLogger(__name__)
_EVERY = re.compile(r"^every\s+(\d+)\s*(s|m|h)$")


class AlreadyRunning(RuntimeError):
    """Another `dvcsync run` holds this state store."""


class UnsafeToStart(RuntimeError):
    """The configuration would expose the inbound server without checking its callers."""


def trigger_for(schedule: str) -> BaseTrigger:
    """``every 60s`` / ``every 5m`` / ``every 24h``, or a 5-field cron expression (local time)."""
    match = _EVERY.match(schedule.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return IntervalTrigger(**{{"s": "seconds", "m": "minutes", "h": "hours"}[unit]: amount})
    return CronTrigger.from_crontab(schedule, timezone=VN_TZ)


class _Closeable(Protocol):
    def close(self) -> None: ...


# pg_try_advisory_lock key: "dvcsync" in ASCII, so other applications' locks are unlikely to clash
_ADVISORY_KEY = int.from_bytes(b"dvcsync", "big")


def acquire_single_instance_lock(state_url: str) -> _Closeable | None:
    """Hold ``<state file>.lock`` (SQLite) or a session advisory lock (PostgreSQL) for the life
    of the process; ``close()`` releases it."""
    url = make_url(state_url)
    if url.get_backend_name() == "postgresql":
        return _postgres_lock(state_url)
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


class _AdvisoryLock:
    """A connection kept open for the life of the process: the lock goes with the session, so a
    killed process releases it too."""

    def __init__(self, engine: Engine, conn: Connection) -> None:
        self._engine, self._conn = engine, conn

    def close(self) -> None:
        self._conn.close()
        self._engine.dispose()


def _postgres_lock(state_url: str) -> _AdvisoryLock:
    engine = create_engine(state_url, poolclass=NullPool, isolation_level="AUTOCOMMIT", hide_parameters=True)
    conn = engine.connect()
    held = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _ADVISORY_KEY}).scalar_one()
    if not held:
        conn.close()
        engine.dispose()
        raise AlreadyRunning(
            f"{make_url(state_url).render_as_string(hide_password=True)} is in use by another"
            " `dvcsync run` (PostgreSQL advisory lock): one service per state until replicas are built"
        )
    return _AdvisoryLock(engine, conn)


async def run_service(settings: Settings, mappings: MappingSet) -> None:
    problems = listen_problems(settings.server)
    if problems:
        raise UnsafeToStart("\n".join(problems))
    raise_open_files_limit()
    lock = acquire_single_instance_lock(settings.state.url)
    scheduler = AsyncIOScheduler(timezone=VN_TZ)
    jobs = {
        "push": lambda: run_push(settings, mappings),
        "pull": lambda: run_pull(settings, mappings),
        "payments": lambda: run_payments(settings, mappings),
        "prune": lambda: asyncio.to_thread(run_prune, settings),  # personal data past [state] keep_days
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
    server = uvicorn.Server(server_config(app, settings.server))
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
