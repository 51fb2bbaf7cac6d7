"""`dvcsync run`: the jobs on their schedules and the inbound server, in one process.

Every tenant (``[tenants.<code>]``; one tenant ``""`` without them) has its jobs on a scheduler
and an event loop in a thread of its own, with its own circuit breakers: one tenant's long
backlog (a cycle that maps and sends for an hour), dead portal or failing data never holds
another's event loop, so the others' cycles start on their schedule. The main thread's loop
serves the inbound requests of every tenant (``dvcsync.server``). Job ids are ``<tenant>:<job>``
(``<job>`` without tenants), and a tenant's log lines start with ``[<tenant>]``.

The process holds each served state's lock for its whole life (``dvcsync.sync.state_lock``):
on SQLite a second `dvcsync run`, or a `sync` command beside it, waits ``[state] lock_wait_s``
and exits 3; on PostgreSQL the lock is shared by replicas, and every job but ``push`` (whose
delivery runs on every replica, on claimed outbox entries) takes ``job_lock``, so it runs on one
replica at a time. A portal that cannot be reached opens a circuit breaker: push and pull skip
their cycles until its cool-down is over.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from datetime import datetime
from types import FrameType
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from dvcsync.config import SCHEDULE_EVERY, ConfigError, Settings
from dvcsync.contract import VN_TZ
from dvcsync.errors import TerminalError
from dvcsync.mapping import MappingSet, MappingSpecError, load_mappings
from dvcsync.metrics import current_tenant
from dvcsync.portal import UnreachableError
from dvcsync.portal.breaker import CircuitBreaker
from dvcsync.reconcile.job import run_reconcile_job
from dvcsync.server import (
    create_server_app,
    create_tenants_app,
    listen_problems,
    raise_open_files_limit,
    server_config,
)
from dvcsync.sync.catalogue import run_catalogue_pull
from dvcsync.sync.cycles import run_payments, run_pull, run_push
from dvcsync.sync.prune import run_prune
from dvcsync.sync.satisfaction import run_satisfaction
from dvcsync.sync.state_lock import holding_state, job_lock
from dvcsync.tenants import each_tenant, ensure_schema, for_tenant, tenant_codes

log = logging.getLogger(__name__)

DEFERRED = frozenset({"catalogue", "reconcile"})  # jobs whose first run is one interval after start-up
JOBS = ("push", "pull", "payments", "prune", "catalogue", "reconcile", "satisfaction")
UNLOCKED = frozenset({"push"})  # delivers on every replica; takes its own lock for the enqueue only
STOP_GRACE_S = 10.0  # a tenant's running cycles get this long to end once cancelled, at shutdown


class UnsafeToStart(TerminalError, RuntimeError):
    """The service cannot start as configured: the inbound server would expose the inbound
    paths without checking callers, its address cannot be bound (port in use), or a tenant's
    configuration or mappings are invalid."""


def runs_at_startup(name: str, schedule: str) -> bool:
    """Whether a job's first run is at start-up. Not for a DEFERRED job, nor for one on a calendar
    schedule: a cron expression naming days of the month, months or days of the week
    (``0 2 1 * *``, monthly; ``0 3 1 1 *``, yearly) runs on those days only, never because the
    service (re)started. Intervals (``every 5m``) and daily or finer cron expressions run at
    start-up too, so a restart does not wait a whole interval."""
    if name in DEFERRED:
        return False
    text = schedule.strip()
    if SCHEDULE_EVERY.match(text):
        return True
    fields = text.split()
    return len(fields) != 5 or all(field == "*" for field in fields[2:])


def trigger_for(schedule: str) -> BaseTrigger:
    """``every 60s`` / ``every 5m`` / ``every 24h``, or a 5-field cron expression (local time)."""
    match = SCHEDULE_EVERY.match(schedule.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return IntervalTrigger(**{{"s": "seconds", "m": "minutes", "h": "hours"}[unit]: amount})
    return CronTrigger.from_crontab(schedule, timezone=VN_TZ)


def _job(
    name: str,
    run: Callable[[], Awaitable[Any]],
    breaker: CircuitBreaker | None = None,
    *,
    lock: tuple[str, str] | None = None,
) -> Callable[[], Coroutine[Any, Any, None]]:
    """One scheduled cycle: skipped while the breaker is open; with ``lock`` (state URL, job
    key), skipped when another replica holds the job's lock."""

    async def wrapped() -> None:
        try:
            await _locked(name, run, breaker, lock)
        except asyncio.CancelledError:  # only the service's stop cancels a cycle (its run says so)
            log.info("%s: cycle cancelled, the service is stopping", name)

    return wrapped


async def _locked(
    name: str, run: Callable[[], Awaitable[Any]], breaker: CircuitBreaker | None, lock: tuple[str, str] | None
) -> None:
    if breaker is not None and not breaker.allow():
        log.info("%s: skipped, the portal was unreachable; next try in %.0f s", name, breaker.retry_in())
        return
    if lock is None:
        await _cycle(name, run, breaker)
        return
    try:
        with job_lock(*lock) as mine:
            if not mine:
                log.info("%s: running on another replica; skipped", name)
                return
            await _cycle(name, run, breaker)  # logs its own failures: what reaches the except is the lock's
    except Exception:  # the state cannot be reached for the lock: the next run tries again
        log.exception("%s: the job's lock could not be taken; skipped", name)


async def _cycle(name: str, run: Callable[[], Awaitable[Any]], breaker: CircuitBreaker | None) -> None:
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
    if isinstance(summary, dict):  # the cycles of dvcsync.sync.cycles log their own line
        log.info("%s cycle ok: %s", name, " ".join(f"{k}={v}" for k, v in summary.items()))


def _jobs(
    settings: Settings, mappings: MappingSet, portal: CircuitBreaker, payments: CircuitBreaker
) -> dict[str, tuple[Callable[[], Awaitable[Any]], CircuitBreaker | None]]:
    return {
        "push": (lambda: run_push(settings, mappings), portal),
        "pull": (lambda: run_pull(settings, mappings), portal),
        "payments": (lambda: run_payments(settings, mappings), payments),
        # personal data past [state] keep_days
        "prune": (lambda: asyncio.to_thread(run_prune, settings), None),
        # the national catalogue and the mismatch report: their first run waits a whole interval
        "catalogue": (lambda: run_catalogue_pull(settings, mappings), portal),
        "reconcile": (lambda: run_reconcile_job(settings, mappings), portal),
        # monthly figures: on their day only (see runs_at_startup), never because the service restarted
        "satisfaction": (lambda: run_satisfaction(settings, mappings), portal),
    }


class TenantJobs:
    """One tenant's jobs: an APScheduler on an event loop in a thread of its own, with the
    tenant's own circuit breakers. ``current_tenant`` is set in the thread, so the tenant's
    metrics and log lines name it."""

    def __init__(self, tenant: str, settings: Settings, mappings: MappingSet) -> None:
        self.tenant, self.settings, self.mappings = tenant, settings, mappings
        self.portal, self.payments = CircuitBreaker(), CircuitBreaker()
        self._thread = threading.Thread(
            target=self._run, name=f"dvcsync-jobs-{tenant}" if tenant else "dvcsync-jobs", daemon=True
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()

    def job_id(self, name: str) -> str:
        return f"{self.tenant}:{name}" if self.tenant else name

    @property
    def schedules(self) -> dict[str, str]:
        return {name: getattr(self.settings.schedule, name) for name in JOBS}

    def start(self, timeout_s: float = 30.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._stop is None:
            raise RuntimeError(f"the jobs of tenant {self.tenant!r} did not start")

    def stop(self) -> None:
        """Ask the loop to stop: no new cycle starts, running ones are cancelled."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with suppress(RuntimeError):  # the loop closed in between: nothing left to stop
                loop.call_soon_threadsafe(stop.set)

    def join(self, timeout_s: float) -> bool:
        """Wait for the thread to end; False if it is still running after ``timeout_s``."""
        if self._thread.ident is None:  # never started
            return True
        self._thread.join(max(0.0, timeout_s))
        return not self._thread.is_alive()

    def _run(self) -> None:
        current_tenant.set(self.tenant)
        try:
            asyncio.run(self._main())
        except BaseException:  # the thread's end must not go unsaid; the others keep running
            log.exception("the jobs' event loop stopped")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        scheduler = AsyncIOScheduler(timezone=VN_TZ, event_loop=loop)
        jobs = _jobs(self.settings, self.mappings, self.portal, self.payments)
        for name, (run, breaker) in jobs.items():
            key = self.job_id(name)
            lock = None if name in UNLOCKED else (self.settings.state.url, key)
            # APScheduler pauses a job given next_run_time=None: one not run at start-up leaves it out
            schedule = getattr(self.settings.schedule, name)
            first = {"next_run_time": datetime.now(VN_TZ)} if runs_at_startup(name, schedule) else {}
            scheduler.add_job(
                _job(name, run, breaker, lock=lock),
                trigger_for(schedule),
                id=key,
                name=key,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                **first,
            )
        self._stop = asyncio.Event()
        self._loop = loop
        scheduler.start()
        if self.tenant:
            log.info("jobs %s", self.schedules)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            # the cycles still running are cancelled: each records its run failed ("cancelled")
            running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in running:
                task.cancel()
            if running:
                _, late = await asyncio.wait(running, timeout=STOP_GRACE_S)
                if late:
                    log.warning("%d cycles did not end within %.0f s of the stop", len(late), STOP_GRACE_S)


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


def served_tenants(settings: Settings, tenants: list[str] | None = None) -> dict[str, Settings]:
    """The tenants this service runs: ``tenants`` (the ``--tenant`` options), else all of them;
    ``{"": settings}`` without tenants. UnsafeToStart naming the known codes for an unknown one."""
    if not tenants:
        return each_tenant(settings)
    try:
        return {code: for_tenant(settings, code) for code in sorted(set(tenants))}
    except ConfigError as exc:
        raise UnsafeToStart(str(exc)) from None


def _tenant_server_problems(code: str, own: Settings, settings: Settings) -> list[str]:
    """One server listens for every tenant: a tenant's table may set who calls its paths, not
    where the server listens; and its own caller rules must not leave its paths open."""
    where = ("host", "port", "tls_cert", "tls_key", "tls_client_ca")
    problems = [
        f"[tenants.{code}.server] {name}: one inbound server serves every tenant; set [server] {name}"
        for name in where
        if getattr(own.server, name) != getattr(settings.server, name)
    ]
    if not problems:
        problems = [f"[tenants.{code}] {p.removeprefix('[server] ')}" for p in listen_problems(own.server)]
        problems = [p for p in problems if "no such file" not in p]  # said once, for [server]
    return problems


def _tenant_mappings(
    served: Mapping[str, Settings], settings: Settings, mappings: MappingSet
) -> dict[str, MappingSet]:
    """Each tenant's mapping specs: the shared ones unless its [province] mappings names others."""
    loaded: dict[str, MappingSet] = {str(settings.province.mappings): mappings}
    out: dict[str, MappingSet] = {}
    for code, own in served.items():
        folder = str(own.province.mappings)
        if folder not in loaded:
            try:
                loaded[folder] = load_mappings(own.province.mappings)
            except MappingSpecError as exc:
                raise UnsafeToStart(f"tenant {code}: invalid mapping specs in {folder}\n{exc}") from None
        out[code] = loaded[folder]
    return out


async def run_service(settings: Settings, mappings: MappingSet, *, tenants: list[str] | None = None) -> None:
    """Serve until SIGINT or SIGTERM: every configured tenant (or only ``tenants``), each on its
    own jobs thread, and one inbound server for all of them."""
    served = served_tenants(settings, tenants)
    problems = listen_problems(settings.server)
    for code, own in served.items():
        if code:
            problems += _tenant_server_problems(code, own, settings)
    if problems:
        raise UnsafeToStart("\n".join(problems))
    mapping_sets = _tenant_mappings(served, settings, mappings)
    raise_open_files_limit()
    for own in served.values():
        ensure_schema(own.state.url)  # a tenant's PostgreSQL schema, before anything migrates it
    signals: list[int] = []
    with ExitStack() as held:
        for code, own in served.items():
            what = f"dvcsync run (tenant {code})" if code else "dvcsync run"
            held.enter_context(holding_state(own.state.url, wait_s=own.state.lock_wait_s, what=what))
        sock = _listen(settings)
        held.callback(sock.close)
        with _tenant_in_log_lines(bool(tenant_codes(settings))):
            signals = await _serve(settings, served, mapping_sets, sock)
    for sig in signals:  # as uvicorn would: a supervisor sees why the service stopped
        signal.raise_signal(sig)


async def _serve(
    settings: Settings,
    served: dict[str, Settings],
    mapping_sets: dict[str, MappingSet],
    sock: socket.socket,
) -> list[int]:
    """Run the tenants' jobs and the inbound server; the signals that stopped it, once every
    tenant's loop has stopped (or the bounded wait for them is over)."""
    if list(served) == [""]:
        app = create_server_app(settings, mapping_sets[""])
    else:
        app = create_tenants_app(settings, {c: (s, mapping_sets[c]) for c, s in served.items()})
    server = uvicorn.Server(server_config(app, settings.server))
    runners = [TenantJobs(code, own, mapping_sets[code]) for code, own in served.items()]
    try:
        with _signals_kept() as signals:
            for runner in runners:
                runner.start()
            where = f"{settings.server.host}:{settings.server.port}"
            if served.keys() == {""}:
                log.info("dvcsync running: inbound server on %s, jobs %s", where, runners[0].schedules)
            else:  # each tenant's thread has said its jobs
                log.info("dvcsync running: inbound server on %s, tenants %s", where, ", ".join(served))
            if not signals:  # a signal during start-up stops it before serving
                await server.serve(sockets=[sock])  # returns on SIGINT/SIGTERM
    finally:
        _stop_all(runners, STOP_GRACE_S + 5.0)
        for engine in app.state.engines:
            engine.dispose()
    return signals


def _stop_all(runners: list[TenantJobs], timeout_s: float) -> None:
    for runner in runners:
        runner.stop()
    deadline = time.monotonic() + timeout_s
    late = [r.tenant or "(default)" for r in runners if not r.join(deadline - time.monotonic())]
    if late:
        log.warning("the jobs of %s did not stop within %.0f s; leaving them", ", ".join(late), timeout_s)


@contextmanager
def _signals_kept() -> Iterator[list[int]]:
    """SIGINT and SIGTERM recorded rather than acted on while uvicorn serves: uvicorn stops on
    them and raises them again when it returns, which would end the process (SIGTERM) or cancel
    the main task (SIGINT) before the tenants' loops are stopped. The caller raises them once
    everything is stopped."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def keep(sig: int, frame: FrameType | None) -> None:
        caught.append(sig)

    previous = {sig: signal.signal(sig, keep) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _tenant_in_log_lines(enabled: bool) -> Iterator[None]:
    """With tenants, every log line made in a tenant's thread or request starts ``[<code>]``."""
    if not enabled:
        yield
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        tenant = current_tenant.get()
        if tenant:  # a code of [a-z0-9_-]: no % to disturb the message's own formatting
            record.msg = f"[{tenant}] {record.msg}"
        return record

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)
