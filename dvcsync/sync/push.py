"""The push job: province → portal. Enqueue what changed (one transaction per page, cursor
included), then deliver the outbox in batches, several in flight, recording each answer.

Append-only history (``CapNhatTienDoHoSoMC``) is never re-sent blindly: entries are marked in
flight before they leave, and an entry whose answer was lost (or whose run died) is settled by
reading the portal back (``TraCuuHoSo``) and sending only what it lacks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from dvcsync import metrics
from dvcsync.config import Settings
from dvcsync.contract import VN_TZ, HoSoDaLuu
from dvcsync.errors import TransientError
from dvcsync.mapping import MappingSet
from dvcsync.portal import AmbiguousError, AuthError, Backoff, PortalClient, PortalError, UnreachableError
from dvcsync.province import instants
from dvcsync.province.source import Record, SqlSource
from dvcsync.state import DueEntry, EnqueueCounts, MappedRecord, Outcome, StateStore
from dvcsync.state.store import STEPS_PER_CALL, dumps
from dvcsync.sync._producer import EnqueueFailed, EnqueueProducer, can_fork
from dvcsync.sync.citizen_check import ID_FIELD, NAME_FIELD, CitizenCheck, CitizenCheckCounts
from dvcsync.sync.claim_keeper import ClaimKeeper
from dvcsync.sync.first_contact import FirstContact, FirstContactCounts
from dvcsync.sync.history_calls import pack_history
from dvcsync.sync.job_config import PushConfig
from dvcsync.sync.readback import history_fingerprint
from dvcsync.sync.state_lock import job_lock

log = logging.getLogger(__name__)

CURSOR = "push:dossier"
ENQUEUE_JOB = "push:enqueue"  # the job lock of the replica reading the source
ProgressFn = Callable[[str, int, int], None]
Send = Callable[[list["DueEntry"]], Coroutine[Any, Any, list["Outcome"]]]  # one call for these entries
CLAIM_POLL_S = 0.2
# A round is this many waves of `concurrency` calls: the calls of one round finish before the next
# round's start, so the last wave's idle slots cost at most 1/ROUND_WAVES of the time.
ROUND_WAVES = 8


class ClaimsLost(TransientError, RuntimeError):
    """This replica's claims may have passed to another (its lease could not be renewed)."""


@dataclass
class PushSummary:
    enqueue: EnqueueCounts = field(default_factory=EnqueueCounts)
    dossiers_pushed: int = 0
    steps_pushed: int = 0
    statuses_reported: int = 0  # DongBoTrangThaiHoSo of dossiers submitted on the portal
    switched: int = 0  # create answered "exists" (or replace "unknown"): re-sent the other way
    retried: int = 0
    dead: int = 0
    ambiguous_resolved: int = 0
    citizen: CitizenCheckCounts = field(default_factory=CitizenCheckCounts)  # [citizen_check]
    first_contact: FirstContactCounts = field(default_factory=FirstContactCounts)  # read-backs
    calls: int = 0
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["first_contact"] = self.first_contact.as_dict()
        data["elapsed_s"] = round(self.elapsed_s, 3)
        return data


@dataclass
class PushOptions:
    lookback_s: float = 300.0
    page_size: int = 500
    wait_for_retries_s: float = 10.0  # within one cycle, wait this long at most for retries that are due soon
    dossier_mapping: str = "dossier"
    step_mapping: str = "step"
    retry_base_s: float = 1.0  # outbox backoff once the client's own retries gave up
    retry_cap_s: float = 300.0
    parallel_enqueue: bool = True  # a backlog over one page is read and mapped by a forked producer


def local_iso(moment: float) -> str:
    """An epoch time as the sample schema's ``updated_at`` text (ISO 8601, Vietnam's wall clock,
    seconds). As a cycle's ``until`` it is read back in that zone, so it names the same
    instant whatever ``[province] timezone`` says."""
    return datetime.fromtimestamp(moment, VN_TZ).replace(tzinfo=None).isoformat(timespec="seconds")


def _lookback(watermark: datetime | None, seconds: float) -> datetime | None:
    """The instant ``seconds`` before the cursor (elapsed time); None without a cursor."""
    if watermark is None or seconds <= 0:
        return None
    return instants.earlier(watermark, seconds)


class PushJob:
    """Province → portal for one tenant. ``config`` is what it reads of the configuration
    (``PushConfig``); a whole ``Settings`` is still accepted (the CLI's and older callers') and
    narrowed at once by ``PushConfig.from_settings``: the job never keeps it."""

    def __init__(
        self,
        config: PushConfig | Settings,
        mappings: MappingSet,
        store: StateStore,
        client: PortalClient,
        source_engine: Engine,
        *,
        options: PushOptions | None = None,
        progress: ProgressFn | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config = PushConfig.from_settings(config) if isinstance(config, Settings) else config
        self.mappings = mappings
        self.store = store
        self.client = client
        self.options = options or PushOptions(
            lookback_s=config.push.lookback_s,
            page_size=config.push.page_size,
            parallel_enqueue=config.push.parallel_enqueue,
        )
        self.progress = progress
        self.clock = clock
        self.backoff = Backoff(base=self.options.retry_base_s, cap=self.options.retry_cap_s)
        spec = mappings.specs[self.options.dossier_mapping]
        if spec.source is None:
            raise ValueError(f"mapping {self.options.dossier_mapping!r} has no source")
        self.source = SqlSource(source_engine, spec.source)
        self._dossier = mappings.get(self.options.dossier_mapping)
        step_spec = mappings.specs.get(self.options.step_mapping)
        self._steps = (
            (
                mappings.get(self.options.step_mapping),
                step_spec.items_of.child,
                spec.source.children[step_spec.items_of.child].key,
            )
            if step_spec is not None and step_spec.items_of is not None
            else None
        )
        # A mapping whose "applies_to" test a record passes takes it instead (portal-submitted
        # dossiers: their status goes back with DongBoTrangThaiHoSo, not DongBoHoSoMC).
        self._status = next(
            ((mappings.get(name), s.applies_to) for name, s in mappings.specs.items() if s.applies_to),
            None,
        )
        self._semaphore = asyncio.Semaphore(config.limits.concurrency)
        self.first_contact = FirstContact(store, client, self._semaphore, clock, self.backoff)
        self._delivered = 0
        self._keeper: ClaimKeeper | None = None
        self._claimed_at: dict[int, int] = {}  # entry id -> the keeper's lapses when it was claimed
        self.citizen = (
            CitizenCheck(
                config.citizen_check,
                source_columns={
                    name: str(spec.fields[name].path)
                    for name in (ID_FIELD, NAME_FIELD)
                    if name in spec.fields and spec.fields[name].path
                },
            )
            if config.citizen_check is not None
            else None
        )

    # ------------------------------------------------------------------ cycle

    async def run_cycle(self) -> PushSummary:
        """Enqueue what changed, then deliver. A backlog larger than one page is read and mapped
        by a forked producer while this process delivers the pages already committed.

        Replicas (PostgreSQL): one at a time reads the source and moves the cursor (the
        ``push:enqueue`` job lock, held for the cycle); the others only deliver, each the
        dossiers it claims."""
        with job_lock(self.store.url, ENQUEUE_JOB) as enqueuing:
            if not enqueuing:
                log.info("push: another replica is reading the source; delivering only")
                return await self.deliver_only()
            return await self._enqueue_and_deliver()

    async def deliver_only(self) -> PushSummary:
        """Deliver what is due without reading the source (a replica beside the one enqueuing)."""
        started = self.clock()
        summary = PushSummary()
        await self.deliver(summary)
        summary.elapsed_s = self.clock() - started
        return summary

    async def _enqueue_and_deliver(self) -> PushSummary:
        started = self.clock()
        summary = PushSummary()
        until = local_iso(started)
        parallel = self.options.parallel_enqueue and can_fork(self.store.engine, self.source.engine)
        more = self._enqueue(summary.enqueue, until=until, lookback=True, max_pages=1 if parallel else None)
        producer = self._fork_producer(until) if more else None
        if more and producer is None:
            self._enqueue(summary.enqueue, until=until, lookback=False)
        try:
            await self.deliver(summary, producer=producer)
        finally:
            if producer is not None:
                producer.stop()
                summary.enqueue.add(producer.counts)
            metrics.QUARANTINED.inc(summary.enqueue.quarantined)  # the producer's pages included
            if self.citizen is not None:
                summary.citizen = self.citizen.observe()  # the producer's checks included
        if producer is not None and producer.error:
            raise EnqueueFailed(f"reading and mapping the source failed: {producer.error}")
        summary.elapsed_s = self.clock() - started
        return summary

    def map_record(self, record: Record) -> MappedRecord:
        assert self.source.spec.updated_at is not None
        if self._status is not None and self._status[1].matches(record):
            report = self._status[0].map(record)
            return MappedRecord(
                record_key=report.record,
                source_id=record.get(self.source.spec.key),
                source_updated_at=record.get(self.source.spec.updated_at),
                dossier=report.value.to_wire() if report.ok else None,
                errors=[e.as_dict() for e in report.errors],
                mapping=self._status[0].name,
                kind="status",
            )
        result = self._dossier.map(record)
        if result.skipped:  # no national equivalent, by a person's decision: not sent, counted
            return MappedRecord(
                record_key=result.record,
                source_id=record.get(self.source.spec.key),
                source_updated_at=record.get(self.source.spec.updated_at),
                dossier=None,
                skipped=result.skipped,
            )
        errors = [e.as_dict() for e in result.errors]
        steps: list[tuple[str, dict[str, Any]]] = []
        if self._steps is not None and result.ok:
            step_mapping, child, key = self._steps
            for item in record.get(child) or []:
                step = step_mapping.map(item, parent=record, record_key=result.record)
                if step.ok:
                    steps.append((str(item.get(key)), step.value.to_wire()))
                else:
                    errors.extend(e.as_dict() for e in step.errors)
        return MappedRecord(
            record_key=result.record,
            source_id=record.get(self.source.spec.key),
            source_updated_at=record.get(self.source.spec.updated_at),
            dossier=result.value.to_wire() if result.ok and not errors else None,
            steps=steps,
            errors=errors,
        )

    async def push_one(self, record_key: str) -> PushSummary:
        """Enqueue one dossier (without moving the cursor) and deliver only its entries."""
        started = self.clock()
        summary = PushSummary()
        record = self.source.get(record_key)
        if record is None:
            raise LookupError(f"no dossier {record_key!r} in the source")
        mapped = self._check_citizens([record], [self.map_record(record)])
        summary.enqueue = self.store.enqueue_page(mapped, cursor_name=None, watermark="", last_key=0)
        if self.citizen is not None:
            summary.citizen = self.citizen.observe()
        await self.deliver(summary, record_key=record_key)
        summary.elapsed_s = self.clock() - started
        return summary

    def _fork_producer(self, until: str) -> EnqueueProducer | None:
        try:
            return EnqueueProducer(self, until)
        except OSError as exc:  # no memory or process slot for a fork: do it here instead
            log.warning("cannot start the enqueue producer (%s): reading and mapping in this process", exc)
            return None

    def enqueue(self, *, until: str) -> EnqueueCounts:
        """Everything changed up to ``until``, in this process."""
        counts = EnqueueCounts()
        self._enqueue(counts, until=until, lookback=True)
        return counts

    def enqueue_rest(self, *, until: str, on_page: Callable[[EnqueueCounts], None]) -> EnqueueCounts:
        """What is left after the first page, from the cursor exactly (the first page read the
        look-back window); the producer process runs this."""
        counts = EnqueueCounts()
        self._enqueue(counts, until=until, lookback=False, on_page=on_page)
        return counts

    def _enqueue(
        self,
        counts: EnqueueCounts,
        *,
        until: str,
        lookback: bool,
        max_pages: int | None = None,
        on_page: Callable[[EnqueueCounts], None] | None = None,
    ) -> bool:
        """Enqueue pages into ``counts``; True when it stopped at ``max_pages`` with more to read.
        The cursor and ``until`` are instants (``dvcsync.province.instants``): the stored
        watermark is read in any form written before and written back in the canonical one."""
        zone = instants.zone(self.config.timezone)
        stored, last_key = self.store.cursor(CURSOR)
        try:
            watermark = instants.read_cursor(stored, zone)
        except instants.InstantError as exc:
            raise ValueError(f"the state's cursor {CURSOR!r} cannot be read: {exc}") from None
        pages = self.source.iter_changed(
            watermark,
            last_key,
            lookback=_lookback(watermark, self.options.lookback_s) if lookback else None,
            until=instants.parse_instant(until, VN_TZ),
            zone=zone,
            page_size=self.options.page_size,
        )
        try:
            for number, changed in enumerate(pages, start=1):
                page = changed.records
                mapped = self._check_citizens(page, [self.map_record(record) for record in page])
                # a look-back page lies before the cursor: the cursor never moves back
                if watermark is None or changed.last > (watermark, last_key):
                    watermark, last_key = changed.last[0], int(changed.last[1])
                stored = instants.cursor_text(watermark, zone)
                page_counts = self.store.enqueue_page(
                    mapped, cursor_name=CURSOR, watermark=stored, last_key=last_key
                )
                counts.add(page_counts)
                if on_page is not None:
                    on_page(counts)
                if self.progress:
                    self.progress("enqueue", counts.records, 0)
                if max_pages is not None and number >= max_pages:
                    return len(page) >= self.options.page_size
        finally:
            pages.close()
        return False

    def _check_citizens(self, page: list[Record], mapped: list[MappedRecord]) -> list[MappedRecord]:
        """``[citizen_check]``: after mapping, before enqueue, so that a mismatch is quarantined in
        the page's own transaction. Synchronous like the rest of the enqueue (it may run in the
        forked producer): the lookups run in a thread of their own (see ``citizen_check``)."""
        if self.citizen is None:
            return mapped
        return self.citizen.check_page(self.store.engine, page, mapped)

    # ------------------------------------------------------------------ delivery

    async def deliver(
        self,
        summary: PushSummary,
        record_key: str | None = None,
        producer: EnqueueProducer | None = None,
    ) -> None:
        """Deliver rounds until nothing is due, the producer (if any) has finished, and no retry
        falls due within ``wait_for_retries_s``. Dossiers go before history in every round.
        The dossiers this replica claimed are kept while it works (``ClaimKeeper``) and given
        back at the end, however it ends."""
        if not self.store.claims:
            await self._deliver(summary, record_key, producer)
            return
        with ClaimKeeper(self.store) as self._keeper:
            try:
                await self._deliver(summary, record_key, producer)
            finally:
                self._keeper = None

    async def _deliver(
        self, summary: PushSummary, record_key: str | None, producer: EnqueueProducer | None
    ) -> None:
        limits = self.config.limits
        # a round's size in entries, so that it is ROUND_WAVES waves of calls whatever the kind: a
        # dossier call carries batch_size entries, a status report one, a history call whole
        # outbox entries of up to STEPS_PER_CALL steps (a round of history counted like dossiers
        # was 65-80 waves: a replica read ahead two of them while the others found nothing due)
        per_call = {
            "dossier": limits.batch_size,
            "steps": max(1, self.config.history_batch_size // STEPS_PER_CALL),
            "status": 1,
        }
        deadline: float | None = None
        while True:
            if producer is not None and self.progress:
                producer.poll()
                self.progress("enqueue", summary.enqueue.records + producer.counts.records, 0)
            progressed = False
            for kind in ("dossier", "steps", "status"):
                limit = per_call[kind] * limits.concurrency * ROUND_WAVES
                progressed = await self._deliver_kind(kind, limit, summary, record_key) or progressed
            if progressed:
                deadline = None
                continue
            if producer is not None and producer.running:
                await producer.wait()  # nothing due yet: the producer's next page will bring some
                continue
            waits = [
                w for w in (self._next_retry_in(k, record_key) for k in ("dossier", "steps")) if w is not None
            ]
            if not waits:
                return
            deadline = deadline if deadline is not None else self.clock() + self.options.wait_for_retries_s
            if self.clock() + min(waits) > deadline:
                return
            # replicas: what is due may be another's for a moment (claimed, about to be released)
            await asyncio.sleep(max(min(waits), CLAIM_POLL_S if self.store.claims else 0.0))

    def _next_retry_in(self, kind: str, record_key: str | None = None) -> float | None:
        earliest = self.store.next_attempt_at(kind, record_key)
        return None if earliest is None else max(0.0, earliest - self.clock())

    async def _deliver_kind(
        self, kind: str, limit: int, summary: PushSummary, record_key: str | None
    ) -> bool:
        """Rounds of ``kind`` until none is due; False when none was. A round's calls are in
        flight while the round before is recorded and the round after is read, both in threads,
        so the database never stalls the calls: at real latencies the portal is kept as busy as
        by a loop that does nothing else. An entry is never in two rounds (the next is read
        without the ids still in flight or unrecorded), and a dossier's next history entry is
        not due before the one before is recorded, so each dossier's order holds."""
        busy: set[int] = set()
        due = await self._due(kind, limit, record_key, busy)
        if not due:
            return False
        recording: asyncio.Future[None] | None = None
        try:
            while due:
                ids = {e.id for e in due}
                busy |= ids
                upcoming = asyncio.ensure_future(self._due(kind, limit, record_key, set(busy)))
                try:
                    outcomes, failure = await self._send(kind, due, summary)
                except BaseException:
                    await _abandon(upcoming)
                    raise
                if recording is not None:
                    await recording  # answers are recorded in the order their rounds went out
                recording = asyncio.ensure_future(self._record(outcomes, ids, busy))
                if failure is not None:
                    await _abandon(upcoming)
                    raise failure
                due = await upcoming
        finally:
            if recording is not None:
                await recording
        return True

    async def _due(self, kind: str, limit: int, record_key: str | None, busy: set[int]) -> list[DueEntry]:
        lapses = self._keeper.lapses if self._keeper is not None else 0  # before the claims are taken
        due = await asyncio.to_thread(
            self.store.due, kind, limit, now=self.clock(), record_key=record_key, exclude=busy
        )
        for entry in due:
            self._claimed_at[entry.id] = lapses
        return due

    async def _fence(self, entries: list[DueEntry]) -> list[DueEntry]:
        """Replicas: the entries of dossiers this replica surely holds at this moment, checked
        just before their call leaves. While its lease has not lapsed since the claims were
        taken, all of them; after a lapse (a pause longer than the lease: a frozen VM or
        container, a long GC, the state unreachable) each call's dossiers are re-proven in the
        state first, and those another replica took over meanwhile are not sent (it settles
        them, reading the portal back). Only a call already on the wire when the lease lapsed
        stays ambiguous, and that is settled by read-back too."""
        keeper = self._keeper
        if keeper is None or not entries:
            return entries
        taken = min(self._claimed_at.get(e.id, -1) for e in entries)
        if keeper.holding() and taken == keeper.lapses:
            return entries
        try:
            mine = await asyncio.to_thread(keeper.reprove, {e.record_key for e in entries})
        except Exception as exc:  # the state unreachable: nothing is sent that may not be ours
            raise ClaimsLost(
                "this replica could not re-prove its claims after its lease lapsed ([state]"
                f" claim_lease_s): stopped before sending what another replica may have taken over ({exc})"
            ) from exc
        kept = [e for e in entries if e.record_key in mine]
        if len(kept) < len(entries):
            log.warning(
                "%d entries not sent: their dossiers were taken over by another replica while this one"
                " could not renew its lease (paused?); the new holder settles them",
                len(entries) - len(kept),
            )
        for entry in kept:
            self._claimed_at[entry.id] = keeper.lapses
        return kept

    async def _record(self, outcomes: list[Outcome], ids: set[int], busy: set[int]) -> None:
        await asyncio.to_thread(self.store.record_outcomes, outcomes, now=self.clock())
        busy -= ids
        for entry_id in ids:
            self._claimed_at.pop(entry_id, None)
        _observe(outcomes)
        if self.progress:
            self._delivered += len(outcomes)
            self.progress("deliver", self._delivered, 0)

    async def _send(
        self, kind: str, due: list[DueEntry], summary: PushSummary
    ) -> tuple[list[Outcome], BaseException | None]:
        """One round's calls, ``concurrency`` in flight; every answer that came back, and the
        first hard failure (an unreachable portal), raised once the answers are recorded."""
        first = [e for e in due if e.verify_first and kind in ("dossier", "status")]
        if first:  # met for the first time: read the portal's copy back before sending anything
            summary.calls += len({e.record_key for e in first})
            due = [e for e in due if not e.verify_first] + await self.first_contact.settle(first, send=True)
            summary.first_contact = self.first_contact.counts
        calls: list[tuple[list[DueEntry], Send]]
        if kind == "dossier":
            size = self.config.limits.batch_size
            batches: list[list[DueEntry]] = []
            for updating in (False, True):
                group = [e for e in due if e.on_portal is updating]
                batches.extend(group[i : i + size] for i in range(0, len(group), size))
            calls = [(batch, lambda b: self._push_dossier_batch(b, summary)) for batch in batches]
        elif kind == "steps":
            calls = await self._steps_calls(due, summary)
        else:
            calls = [([entry], lambda es: self._report_status(es[0], summary)) for entry in due]

        async def bounded(entries: list[DueEntry], send: Send) -> list[Outcome]:
            async with self._semaphore:
                kept = await self._fence(entries)  # the claims checked as the call leaves
                return await send(kept) if kept else []

        results = await asyncio.gather(*(bounded(e, s) for e, s in calls), return_exceptions=True)
        outcomes = [o for r in results if isinstance(r, list) for o in r]
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        return outcomes, failure

    async def _push_dossier_batch(self, batch: list[DueEntry], summary: PushSummary) -> list[Outcome]:
        updating = batch[0].on_portal
        data = "[" + ",".join(e.raw for e in batch) + "]"  # stored wire JSON, joined as is
        summary.calls += 1
        try:
            reply = await self.client.call(
                "DongBoHoSoMC", {"isUpdating": "True" if updating else "False"}, raw_fields={"data": data}
            )
        except (AuthError, UnreachableError):
            raise  # the cycle stops: no record's attempt is used
        except PortalError as exc:
            return self._failures(batch, str(exc), summary)
        by_key = {
            str(getattr(item, "MaHoSo", "")): item for item in (reply.result or []) if hasattr(item, "MaHoSo")
        }
        outcomes = []
        for entry in batch:
            item = by_key.get(entry.record_key)
            code = item.error_code if item is not None else reply.error_code
            message = item.message if item is not None else reply.message
            if code == 0:
                summary.dossiers_pushed += 1
                outcomes.append(
                    Outcome(entry.id, entry.record_key, "dossier", "done", payload_hash=entry.payload_hash)
                )
            elif not updating and _says_exists(message):
                summary.switched += 1
                outcomes.append(
                    Outcome(entry.id, entry.record_key, "dossier", "resend", error=message, on_portal=True)
                )
            elif updating and _says_unknown(message):
                summary.switched += 1
                outcomes.append(
                    Outcome(entry.id, entry.record_key, "dossier", "resend", error=message, on_portal=False)
                )
            else:
                summary.dead += 1
                outcomes.append(
                    Outcome(
                        entry.id, entry.record_key, "dossier", "dead", error=f"error_code {code}: {message}"
                    )
                )
        return outcomes

    def _failures(
        self, batch: list[DueEntry], error: str, summary: PushSummary, *, verify_first: bool | None = None
    ) -> list[Outcome]:
        now = self.clock()
        outcomes = []
        # [portal] give_up_after counts from an entry's first failure, not its enqueueing: adopt
        # enqueues days before the first push, and a backlog may wait behind an outage
        since = self.store.failing_since([e.id for e in batch])
        retry = self.config.retry
        give_up = retry.give_up_after_s
        for entry in batch:
            failing_for = now - since.get(entry.id, now)
            if entry.attempts + 1 >= retry.max_attempts or failing_for >= give_up:
                summary.dead += 1
                outcomes.append(
                    Outcome(
                        entry.id, entry.record_key, entry.kind, "dead", error=error, verify_first=verify_first
                    )
                )
            else:
                summary.retried += 1
                delay = self.backoff.delay(entry.attempts + 1)
                outcomes.append(
                    Outcome(
                        entry.id,
                        entry.record_key,
                        entry.kind,
                        "retry",
                        error=error,
                        next_attempt_at=now + delay,
                        verify_first=verify_first,
                    )
                )
        return outcomes

    async def _report_status(self, entry: DueEntry, summary: PushSummary) -> list[Outcome]:
        """One DongBoTrangThaiHoSo (its data is one object). Re-sending the same status after a
        lost answer only repeats a report of the same state, so it is simply retried."""
        summary.calls += 1
        try:
            reply = await self.client.call(
                "DongBoTrangThaiHoSo", {"type": "2"}, raw_fields={"data": entry.raw}, idempotent=True
            )
        except (AuthError, UnreachableError):
            raise  # the cycle stops: no record's attempt is used
        except PortalError as exc:
            return self._failures([entry], str(exc), summary)
        if reply.ok:
            summary.statuses_reported += 1
            return [Outcome(entry.id, entry.record_key, "status", "done", payload_hash=entry.payload_hash)]
        summary.dead += 1
        return [
            Outcome(
                entry.id,
                entry.record_key,
                "status",
                "dead",
                error=f"error_code {reply.error_code}: {reply.message}",
            )
        ]

    async def _steps_calls(
        self, due: list[DueEntry], summary: PushSummary
    ) -> list[tuple[list[DueEntry], Send]]:
        if any(e.verify_first for e in due):
            due = await self._settle_from_portal(due, summary)
        calls = pack_history(due, self.config.history_batch_size)
        # Write-ahead, one transaction for the round: if we die before the answers are recorded,
        # the next run reads the portal back instead of appending these entries a second time.
        await asyncio.to_thread(self.store.mark_in_flight, [e.id for e in due], now=self.clock())
        return [(call, lambda es: self._push_steps_call(es, summary)) for call in calls]

    async def _push_steps_call(self, entries: list[DueEntry], summary: PushSummary) -> list[Outcome]:
        data = "[" + ",".join(e.history[1] for e in entries) + "]"  # stored JSON, joined as is
        count = sum(len(e.history[0]) for e in entries)
        summary.calls += 1
        try:
            reply = await self.client.call("CapNhatTienDoHoSoMC", {}, raw_fields={"data": data})
        except (AuthError, UnreachableError):
            raise  # the cycle stops: no record's attempt is used
        except AmbiguousError as exc:
            # It may have been stored: the in-flight mark stays; the next round reads back first.
            log.info("history for %d dossiers unanswered (%s): will read back", len(entries), exc.detail)
            return self._failures(entries, str(exc), summary, verify_first=True)
        except PortalError as exc:
            # refused before processing (throttled, unavailable, not sent): nothing was stored
            return self._failures(entries, str(exc), summary, verify_first=False)
        if reply.ok:
            summary.steps_pushed += count
            return [Outcome(e.id, e.record_key, "steps", "done", step_keys=e.history[0]) for e in entries]
        summary.dead += len(entries)
        error = f"error_code {reply.error_code}: {reply.message}"
        return [
            Outcome(e.id, e.record_key, "steps", "dead", error=error, verify_first=False) for e in entries
        ]

    async def _settle_from_portal(self, entries: list[DueEntry], summary: PushSummary) -> list[DueEntry]:
        """Read back the dossiers of entries that may already be on the portal; mark what is there
        done and keep only what is missing. Entries whose read-back fails wait for a later round."""
        keep: list[DueEntry] = []
        outcomes: list[Outcome] = []
        keys = sorted({e.record_key for e in entries if e.verify_first})

        async def read(key: str) -> Counter[tuple[str, ...]] | None:
            async with self._semaphore:
                return await self._portal_history(key)

        stored = dict(zip(keys, await asyncio.gather(*(read(k) for k in keys)), strict=True))
        for entry in entries:
            if not entry.verify_first:
                keep.append(entry)
                continue
            history = stored[entry.record_key]
            if history is None:
                outcomes.append(
                    Outcome(
                        entry.id,
                        entry.record_key,
                        "steps",
                        "retry",
                        error="read-back failed",
                        next_attempt_at=self.clock() + self.backoff.delay(entry.attempts + 1),
                    )
                )
                continue
            missing_keys, missing_entries = [], []
            for key, item in zip(entry.payload["keys"], entry.payload["entries"], strict=True):
                mark = history_fingerprint(item)
                if history[mark] > 0:
                    history[mark] -= 1  # this one is on the portal
                else:
                    missing_keys.append(key)
                    missing_entries.append(item)
            summary.ambiguous_resolved += 1
            if not missing_entries:
                outcomes.append(
                    Outcome(
                        entry.id,
                        entry.record_key,
                        "steps",
                        "done",
                        step_keys=entry.payload["keys"],
                        count_attempt=False,
                    )
                )
                continue
            payload = {"keys": missing_keys, "entries": missing_entries}
            outcomes.append(
                Outcome(
                    entry.id,
                    entry.record_key,
                    "steps",
                    "resend",
                    new_payload=payload,
                    verify_first=False,
                    count_attempt=False,
                )
            )
            keep.append(
                DueEntry(
                    entry.id,
                    "steps",
                    entry.record_key,
                    dumps(payload),
                    entry.payload_hash,
                    entry.attempts,
                    True,
                )
            )
        await asyncio.to_thread(self.store.record_outcomes, outcomes, now=self.clock())
        return keep

    async def _portal_history(self, record_key: str) -> Counter[tuple[str, ...]] | None:
        try:
            reply = await self.client.call("TraCuuHoSo", {"mahoso": record_key})
        except (AuthError, UnreachableError):
            raise  # the cycle stops: no record's attempt is used
        except PortalError as exc:
            log.warning("read-back of %s failed: %s", record_key, exc)
            return None
        items = reply.result or []
        if not items:
            return Counter()
        first = items[0]
        stored = first if isinstance(first, HoSoDaLuu) else HoSoDaLuu.model_validate(first)
        return Counter(history_fingerprint(entry.to_wire()) for entry in stored.QuaTrinhXuLy)


def _observe(outcomes: list[Outcome]) -> None:
    """Count what a round settled, once recorded; a dead letter is one WARNING naming the
    dossier, so an operator finds it without querying the state."""
    for outcome in outcomes:
        if outcome.result == "done":
            metrics.RECORDS_PUSHED.labels(outcome.kind).inc(
                len(outcome.step_keys) if outcome.kind == "steps" else 1
            )
        elif outcome.result == "dead":
            metrics.DEAD_LETTERS.labels(outcome.kind).inc()
            log.warning("dead letter: %s %s: %s", outcome.kind, outcome.record_key, outcome.error)


async def _abandon(future: asyncio.Future[Any]) -> None:
    """Wait out a round read ahead that will not be sent (a thread cannot be cancelled): its
    claims are then given back with the rest when the delivery ends, not taken after that."""
    await asyncio.gather(future, return_exceptions=True)


def _says_exists(message: str) -> bool:
    text = message.lower()
    return "đã tồn tại" in text or "already exists" in text


def _says_unknown(message: str) -> bool:
    text = message.lower()
    return any(p in text for p in ("không tồn tại", "chưa tồn tại", "not found", "không tìm thấy"))
