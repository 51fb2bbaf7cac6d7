"""``dvcsync reconcile repair CATEGORY``: act on a report's items through the ordinary outbox.

Every repair is a normal enqueue followed by a normal delivery, so it inherits the push's
guarantees: history entries go out marked read-back-first (the deliverer asks the portal what it
holds and sends only what it lacks), a dossier is replaced rather than appended, a payment is
applied only when QUERY says it was paid and only once (the ledger's guarded update). Repairs are
keyed by the report they answer: repairing the same report twice enqueues nothing the second time.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dvcsync.errors import TerminalError
from dvcsync.portal import AuthError, PortalError, UnreachableError
from dvcsync.province.source import make_engine
from dvcsync.state import MappedRecord, payload_hash
from dvcsync.sync.payments import PaymentJob, PaymentSummary
from dvcsync.sync.push import PushJob, PushSummary
from dvcsync.sync.runtime import Runtime

from .categories import CATEGORIES, category
from .report import Item, Report

log = logging.getLogger(__name__)

RESEND = ("status_differs", "dates_differ", "fees_differ")


class NotRepairable(TerminalError, ValueError):
    """The entry cannot be repaired as asked; the message says which and why."""


@dataclass
class RepairOutcome:
    ma_ho_so: str | None
    action: str  # what was (or, in a dry run, would be) done
    done: bool


@dataclass
class RepairResult:
    category: str
    report: Path
    dry_run: bool
    outcomes: list[RepairOutcome] = field(default_factory=list)
    push: dict[str, Any] | None = None
    payments: dict[str, Any] | None = None

    @property
    def acted(self) -> int:
        return sum(1 for o in self.outcomes if o.done)


def report_tag(report: Report) -> str:
    return hashlib.sha256(str(report.period.get("generated_at")).encode()).hexdigest()[:10]


async def repair(
    runtime: Runtime,
    key: str,
    report_path: Path,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RepairResult:
    cat = category(key)
    if not cat.repairable:
        raise NotRepairable(f"{key} is not repaired by dvcsync: {cat.action_en} ({cat.action_vi})")
    report = Report.read_json(report_path)
    items = [i for i in report.items() if i.category == key]
    result = RepairResult(key, report_path, dry_run)
    if key in ("paid_on_platform_only",):
        await _repair_payments(runtime, items, result, dry_run)
        return result
    tag = f"{report_tag(report)}:{key}"
    job = PushJob(runtime.settings, runtime.mappings, runtime.store, runtime.client, runtime.source)
    for n, item in enumerate(items, 1):
        result.outcomes.append(await _repair_dossier(runtime, job, item, tag, dry_run))
        if progress is not None:
            progress(n, len(items))
    if not dry_run and result.acted:
        summary = PushSummary()
        await job.deliver(summary)
        result.push = summary.as_dict()
    return result


async def _repair_dossier(
    runtime: Runtime, job: PushJob, item: Item, tag: str, dry_run: bool
) -> RepairOutcome:
    key = item.ma_ho_so or ""
    local = (item.province or {}).get("local_key") or key
    record = job.source.get(str(local))
    if record is None:
        return RepairOutcome(key, "no longer in the province's database", False)
    mapped = job.map_record(record)
    if mapped.errors or mapped.dossier is None:
        fields = ", ".join(sorted({str(e.get("field")) for e in mapped.errors}))
        return RepairOutcome(key, f"does not map ({fields}): fix the data first", False)
    if item.category == "dead_letter":
        return _repair_dead(runtime, key, mapped, dry_run)
    if item.category == "missing_on_portal":
        return await _repair_missing(runtime, job, key, mapped, tag, dry_run)
    if item.category == "history_missing":
        if dry_run:
            return RepairOutcome(key, "would read the portal's history and send the entries it lacks", False)
        counts = runtime.store.enqueue_repair(mapped, tag=tag, steps_checked=True)
        return _enqueued(key, counts, "missing history entries sent")
    if item.category in RESEND:
        if dry_run:
            return RepairOutcome(key, "would send the dossier again (replace)", False)
        counts = runtime.store.enqueue_repair(mapped, tag=tag, resend_dossier=True)
        return _enqueued(key, counts, "dossier sent again (replace)")
    if item.category == "stale":
        return _repair_stale(runtime, key, mapped, dry_run)
    raise NotRepairable(item.category)


async def _repair_missing(
    runtime: Runtime, job: PushJob, key: str, mapped: MappedRecord, tag: str, dry_run: bool
) -> RepairOutcome:
    """A dossier the portal lost is sent as new, with its whole history (unless it is back)."""
    if await _on_portal(job, key):
        return RepairOutcome(key, "already on the portal again", False)
    if dry_run:
        return RepairOutcome(key, f"would send as new with {len(mapped.steps)} history entries", False)
    counts = runtime.store.enqueue_repair(mapped, tag=tag, as_new=True, steps_checked=True)
    return _enqueued(key, counts, "sent as new")


def _repair_stale(runtime: Runtime, key: str, mapped: MappedRecord, dry_run: bool) -> RepairOutcome:
    """A dossier whose changes were not sent is read again and its changes enqueued."""
    if dry_run:
        return RepairOutcome(key, "would re-read and enqueue the dossier's changes", False)
    enq = runtime.store.enqueue_page([mapped], cursor_name=None, watermark="", last_key=0)
    if enq.dossiers_enqueued or enq.steps_enqueued:
        return RepairOutcome(
            key, f"enqueued: {enq.dossiers_enqueued} dossier, {enq.steps_enqueued} entries", True
        )
    if any(e["state"] == "pending" for e in runtime.store.entries_of(key)):
        return RepairOutcome(key, "already in the outbox: delivered now", True)
    return RepairOutcome(key, "already in step: nothing to send", False)


def _repair_dead(runtime: Runtime, key: str, mapped: MappedRecord, dry_run: bool) -> RepairOutcome:
    """A dead dossier entry that no longer matches the province (its cause was fixed there) is
    set aside and the dossier's current version enqueued; one that still matches, and dead
    history entries, are sent again (history read back first)."""
    assert mapped.dossier is not None
    dead = [e for e in runtime.store.entries_of(key) if e["state"] == "dead"]
    if not dead:
        return RepairOutcome(key, "no dead letter left", False)
    digest = payload_hash(mapped.dossier)
    outdated = [e["id"] for e in dead if e["kind"] in ("dossier", "status") and e["payload_hash"] != digest]
    again = [e["id"] for e in dead if e["id"] not in outdated]
    if dry_run:
        return RepairOutcome(
            key, f"would send again {len(again)} and replace {len(outdated)} outdated dead entr(ies)", False
        )
    if outdated:
        runtime.store.discard_dead(outdated)
        runtime.store.enqueue_page([mapped], cursor_name=None, watermark="", last_key=0)
    if again:
        runtime.store.requeue_dead(again)
    return RepairOutcome(
        key, f"sent again: {len(again)}; replaced by the current version: {len(outdated)}", True
    )


def _enqueued(key: str, counts: dict[str, int], what: str) -> RepairOutcome:
    if not counts["dossiers"] and not counts["steps"]:
        return RepairOutcome(key, "already repaired from this report", False)
    return RepairOutcome(key, f"{what} ({counts['dossiers']} dossier, {counts['steps']} entries)", True)


async def _on_portal(job: PushJob, key: str) -> bool:
    try:
        reply = await job.client.call("TraCuuHoSo", {"mahoso": key}, typed=False)
    except (AuthError, UnreachableError):
        raise
    except PortalError:
        return False
    return bool(reply.ok and reply.result)


async def _repair_payments(runtime: Runtime, items: list[Item], result: RepairResult, dry_run: bool) -> None:
    engine = make_engine(runtime.settings.province.effective_sink_url)
    try:
        job = PaymentJob(runtime.settings, runtime.mappings, engine, runtime.payment_http)
        summary = PaymentSummary()
        for item in items:
            ref = str(
                (item.portal or {}).get("MaThamChieu") or (item.province or {}).get("MaThamChieu") or ""
            )
            attempt = job.ledger.attempt(ref) if ref else None
            if attempt is None:
                result.outcomes.append(
                    RepairOutcome(item.ma_ho_so, f"{ref or '?'}: no such attempt in the province", False)
                )
                continue
            if attempt.state == "paid":
                result.outcomes.append(RepairOutcome(item.ma_ho_so, f"{ref}: already paid", False))
                continue
            if dry_run:
                result.outcomes.append(
                    RepairOutcome(item.ma_ho_so, f"{ref}: would QUERY and apply a paid result", False)
                )
                continue
            before = summary.paid
            await job.query_one(attempt, summary)
            paid = summary.paid > before
            result.outcomes.append(
                RepairOutcome(
                    item.ma_ho_so,
                    f"{ref}: paid result applied" if paid else f"{ref}: QUERY did not confirm a payment",
                    paid,
                )
            )
        result.payments = summary.as_dict()
    finally:
        engine.dispose()


def repairable() -> list[str]:
    return [c.key for c in CATEGORIES.values() if c.repairable]


__all__ = ["NotRepairable", "RepairOutcome", "RepairResult", "repair", "repairable"]
