"""One cycle of each job, with its run recorded; what `dvcsync sync` and the scheduler call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from adapter.config import Settings
from adapter.mapping import MappingSet
from adapter.portal import UnreachableError
from adapter.province.sink import db_error_text
from adapter.province.source import make_engine

from .payments import PaymentJob, PaymentSummary
from .pull import PullJob, PullSummary
from .push import ProgressFn, PushJob, PushSummary
from .runtime import Runtime, open_runtime


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
    """Run one cycle inside the runtime with its run recorded (failed, or its status and counts)."""
    async with open_runtime(settings, mappings) as rt:
        run_id = rt.store.start_run(job)
        try:
            summary = await cycle(rt)
        except UnreachableError as exc:
            rt.store.finish_run(run_id, "failed", error=f"portal unreachable: {exc.detail}")
            raise
        except BaseException as exc:  # cancelled (Ctrl-C, SIGTERM) too: never left "running"
            reason = "cancelled" if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt) else None
            rt.store.finish_run(run_id, "failed", error=reason or db_error_text(exc))  # no SQL parameters
            raise
        rt.store.finish_run(run_id, status(summary), summary.as_dict())
        return summary


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
