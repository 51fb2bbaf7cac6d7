"""One cycle of each job, with its run recorded; what `dvcsync sync` and the scheduler call."""

from __future__ import annotations

from adapter.config import Settings
from adapter.mapping import MappingSet

from .payments import PaymentJob, PaymentSummary
from .pull import PullJob, PullSummary
from .push import ProgressFn, PushJob, PushSummary
from .runtime import open_runtime


async def run_push(
    settings: Settings, mappings: MappingSet, *, progress: ProgressFn | None = None
) -> PushSummary:
    async with open_runtime(settings, mappings) as rt:
        run_id = rt.store.start_run("push")
        try:
            summary = await PushJob(
                settings, mappings, rt.store, rt.client, rt.source, progress=progress
            ).run_cycle()
        except Exception as exc:
            rt.store.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        rt.store.finish_run(run_id, "ok" if summary.dead == 0 else "dead-letters", summary.as_dict())
        return summary


async def run_pull(settings: Settings, mappings: MappingSet) -> PullSummary:
    from adapter.province.source import make_engine

    async with open_runtime(settings, mappings) as rt:
        run_id = rt.store.start_run("pull")
        sink = make_engine(settings.province.effective_sink_url)
        try:
            summary = await PullJob(settings, mappings, rt.store, rt.client, sink).run_cycle()
        except Exception as exc:
            rt.store.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            sink.dispose()
        rt.store.finish_run(run_id, "ok" if summary.failed == 0 else "province-refused", summary.as_dict())
        return summary


async def run_payments(settings: Settings, mappings: MappingSet) -> PaymentSummary:
    """INIT what asks for payment, QUERY what stayed unanswered, save receipts of what was paid."""
    from adapter.province.source import make_engine

    async with open_runtime(settings, mappings) as rt:
        run_id = rt.store.start_run("payments")
        engine = make_engine(settings.province.effective_sink_url)
        try:
            summary = await PaymentJob(settings, rt.mappings, engine, rt.client.http).run_cycle()
        except Exception as exc:
            rt.store.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            engine.dispose()
        rt.store.finish_run(run_id, "ok" if summary.errors == 0 else "errors", summary.as_dict())
        return summary
