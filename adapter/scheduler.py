"""`dvcsync run`: the jobs on their schedules and the inbound server, in one process.

The process holds the state's writer lock for its whole life (``adapter.sync.state_lock``), so a
second `dvcsync run`, or a `sync` command beside it, waits ``[state] lock_wait_s`` and exits 3
(replicas that claim outbox entries with SKIP LOCKED are not built yet). A portal that cannot be
reached opens a circuit breaker: push and pull skip their cycles until its cool-down is over.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from adapter.config import SCHEDULE_EVERY, Settings
from adapter.contract import VN_TZ
from adapter.mapping import MappingSet
from adapter.portal import UnreachableError
from adapter.portal.breaker import CircuitBreaker
from adapter.reconcile.job import run_reconcile_job
from adapter.server import create_server_app, listen_problems, raise_open_files_limit, server_config
from adapter.sync.catalogue import run_catalogue_pull
from adapter.sync.cycles import run_payments, run_pull, run_push
from adapter.sync.prune import run_prune
from adapter.sync.satisfaction import run_satisfaction
from adapter.sync.state_lock import holding_state

log = logging.getLogger(__name__)

DEFERRED = frozenset({"catalogue", "reconcile"})  # jobs whose first run is one interval after start-up


class UnsafeToStart(RuntimeError):
    """The inbound server cannot start as configured: it would expose the inbound paths without
    checking callers, or its address cannot be bound (port in use)."""


def trigger_for(schedule: str) -> BaseTrigger:
    """``every 60s`` / ``every 5m`` / ``every 24h``, or a 5-field cron expression (local time)."""
    match = SCHEDULE_EVERY.match(schedule.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return IntervalTrigger(**{{"s": "seconds", "m": "minutes", "h": "hours"}[unit]: amount})
    return CronTrigger.from_crontab(schedule, timezone=VN_TZ)


def _job(
    name: str, run: Callable[[], Awaitable[Any]], breaker: CircuitBreaker | None = None
) -> Callable[[], Awaitable[None]]:
    async def wrapped() -> None:
        if breaker is not None and not breaker.allow():
            log.info("%s: skipped, the portal was unreachable; next try in %.0f s", name, breaker.retry_in())
            return
        try:
            summary = await run()
        except UnreachableError as exc:
            wait = breaker.failed() if breaker is not None else 0.0
            log.warning("%s: portal unreachable: %s; next try in %.0f s", name, exc.detail, wait)
            return
        except Exception:  # a failed cycle is logged and recorded; the next one runs on schedule
            log.exception("%s cycle failed", name)
            return
        if breaker is not None:
            breaker.succeeded()
        if isinstance(summary, dict):  # the cycles of adapter.sync.cycles log their own line
            log.info("%s cycle ok: %s", name, " ".join(f"{k}={v}" for k, v in summary.items()))

    return wrapped


def _listen(settings: Settings) -> socket.socket:
    """Bind before anything starts, so a port in use is one clear message, not a cancelled
    scheduler and runs left "running"."""
    host, port = settings.server.host, settings.server.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise UnsafeToStart(
            f"[server] cannot listen on {host}:{port}: {exc.strerror} (another process uses the port?"
            " set [server] port)"
        ) from None


async def run_service(settings: Settings, mappings: MappingSet) -> None:
    problems = listen_problems(settings.server)
    if problems:
        raise UnsafeToStart("\n".join(problems))
    raise_open_files_limit()
    with holding_state(settings.state.url, wait_s=settings.state.lock_wait_s, what="dvcsync run"):
        sock = _listen(settings)
        try:
            await _serve(settings, mappings, sock)
        finally:
            sock.close()


async def _serve(settings: Settings, mappings: MappingSet, sock: socket.socket) -> None:
    portal, payments = CircuitBreaker(), CircuitBreaker()
    scheduler = AsyncIOScheduler(timezone=VN_TZ)
    jobs: dict[str, tuple[Callable[[], Awaitable[Any]], CircuitBreaker | None]] = {
        "push": (lambda: run_push(settings, mappings), portal),
        "pull": (lambda: run_pull(settings, mappings), portal),
        "payments": (lambda: run_payments(settings, mappings), payments),
        # personal data past [state] keep_days
        "prune": (lambda: asyncio.to_thread(run_prune, settings), None),
        # the national catalogue and the mismatch report: their first run waits a whole interval
        "catalogue": (lambda: run_catalogue_pull(settings, mappings), portal),
        "reconcile": (lambda: run_reconcile_job(settings, mappings), portal),
        # monthly figures: at start-up too (sends nothing when up to date, catches up a missed month)
        "satisfaction": (lambda: run_satisfaction(settings, mappings), portal),
    }
    for name, (run, breaker) in jobs.items():
        # APScheduler pauses a job given next_run_time=None: a deferred one leaves it out instead
        first = {} if name in DEFERRED else {"next_run_time": datetime.now(VN_TZ)}
        scheduler.add_job(
            _job(name, run, breaker),
            trigger_for(getattr(settings.schedule, name)),
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            **first,
        )
    app = create_server_app(settings, mappings)
    server = uvicorn.Server(server_config(app, settings.server))
    scheduler.start()
    log.info(
        "dvcsync running: inbound server on %s:%s, jobs %s",
        settings.server.host,
        settings.server.port,
        {name: getattr(settings.schedule, name) for name in jobs},
    )
    try:
        await server.serve(sockets=[sock])  # returns on SIGINT/SIGTERM
    finally:
        scheduler.shutdown(wait=False)
        for engine in app.state.engines:
            engine.dispose()
        await asyncio.sleep(0)
