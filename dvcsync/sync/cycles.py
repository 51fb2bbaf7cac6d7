"""One cycle of each job, with its run recorded; what `dvcsync sync` and the scheduler call."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Any, Protocol, TypeVar

from dvcsync import metrics
from dvcsync.config import Settings
from dvcsync.mapping import MappingSet
from dvcsync.portal import UnreachableError
from dvcsync.province.sink import db_error_text
from dvcsync.province.source import make_engine

from .adopt import AdoptJob, AdoptSummary
from .payments import PaymentJob, PaymentSummary
from .pull import PullJob, PullSummary
from .push import ProgressFn, PushJob, PushSummary
from .runtime import Runtime, open_runtime

log = logging.getLogger(__name__)


class _Summary(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=_Summary)


async def _recorded(
    job: str,
    settings: Settings,
    mappings: MappingSet,
    cycle: Callable[[Runtime], Awaitable[S]],
    status: Callable[[S], str],
) -> S:
    """Run one cycle inside the runtime with its run recorded (failed, or its status and counts),
    its figures in the metrics and one INFO line with its counts (what an operator greps for)."""
    async with open_runtime(settings, mappings) as rt:
        run_id = rt.store.start_run(job)
        started = time.perf_counter()
        try:
            summary = await cycle(rt)
        except UnreachableError as exc:
            rt.store.finish_run(run_id, "failed", error=f"portal unreachable: {exc.detail}")
            metrics.cycle_finished(job, "failed", time.perf_counter() - started)
            raise
        except BaseException as exc:  # cancelled (Ctrl-C, SIGTERM) too: never left "running"
            reason = "cancelled" if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt) else None
            rt.store.finish_run(run_id, "failed", error=reason or db_error_text(exc))  # no SQL parameters
            metrics.cycle_finished(job, "failed", time.perf_counter() - started)
            raise
        outcome = status(summary)
        counts = summary.as_dict()
        rt.store.finish_run(run_id, outcome, counts)
        metrics.cycle_finished(job, outcome, time.perf_counter() - started)
        log.info("%s cycle %s: %s", job, outcome, " ".join(f"{k}={v}" for k, v in _flat(counts)))
        return summary


def _flat(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"enqueue": {"records": 3}}`` → ``[("enqueue.records", 3)]``: one ``key=value`` line."""
    pairs: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            pairs.extend(_flat(value, f"{prefix}{key}."))
        else:
            pairs.append((f"{prefix}{key}", value))
    return pairs


@asynccontextmanager
async def _sink(settings: Settings) -> AsyncIterator[Any]:
    engine = make_engine(settings.province.effective_sink_url)
    try:
        yield engine
    finally:
        engine.dispose()


async def run_push(
    settings: Settings, mappings: MappingSet, *, progress: ProgressFn | None = None
) -> PushSummary:
    async def cycle(rt: Runtime) -> PushSummary:
        return await PushJob(
            settings, mappings, rt.store, rt.client, rt.source, progress=progress
        ).run_cycle()

    return await _recorded(
        "push", settings, mappings, cycle, lambda s: "ok" if s.dead == 0 else "dead-letters"
    )


async def run_adopt(
    settings: Settings,
    mappings: MappingSet,
    *,
    since: date | None = None,
    until: date | None = None,
    progress: ProgressFn | None = None,
) -> AdoptSummary:
    """Read the portal back for the province's dossiers, seed the state, enqueue only what
    differs (``adopt``); nothing is written to the portal."""

    async def cycle(rt: Runtime) -> AdoptSummary:
        job = AdoptJob(
            settings, mappings, rt.store, rt.client, rt.source, since=since, until=until, progress=progress
        )
        return await job.run()

    return await _recorded(
        "adopt", settings, mappings, cycle, lambda s: "ok" if s.unsettled == 0 else "unsettled"
    )


async def run_pull(settings: Settings, mappings: MappingSet) -> PullSummary:
    async def cycle(rt: Runtime) -> PullSummary:
        async with _sink(settings) as sink:
            return await PullJob(settings, mappings, rt.store, rt.client, sink).run_cycle()

    return await _recorded(
        "pull", settings, mappings, cycle, lambda s: "ok" if s.failed == 0 else "province-refused"
    )


async def run_payments(settings: Settings, mappings: MappingSet) -> PaymentSummary:
    """INIT what asks for payment, QUERY what stayed unanswered, save receipts of what was paid."""

    async def cycle(rt: Runtime) -> PaymentSummary:
        async with _sink(settings) as engine:
            return await PaymentJob(settings, rt.mappings, engine, rt.payment_http).run_cycle()

    return await _recorded(
        "payments", settings, mappings, cycle, lambda s: "ok" if s.errors == 0 else "errors"
    )
