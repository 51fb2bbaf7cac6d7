"""``dvcsync adopt``: bring a province onto dvcsync when its dossiers are already on the portal.

Its previous integration pushed years of dossiers and history, and the portal never removes a
history entry, so nothing may be sent before the portal's copy is known. Adoption is two steps,
both resumable (each commits as it goes):

1. **scan**: read every province dossier (in ``--since``/``--until`` by the day it was received,
   else submitted), map it as the push does and enqueue it in the state: dossiers the state never
   met are marked for a read-back (``verify_first``). Re-scanning is harmless: an enqueued
   dossier compares equal and adds nothing; the ``adopt:scan`` cursor skips pages already done.
2. **read back**: one ``TraCuuHoSo`` per dossier (within ``[portal] rate_limit`` and
   ``concurrency``), settled by ``first_contact.FirstContact`` without sending: identical
   dossiers and history already there are acknowledged (the state is seeded), what differs or is
   missing stays in the outbox for the next ``dvcsync sync push``, entries only the portal has
   become conflicts for the reconciler.

The two overlap: on Linux the scan runs in a forked process (as the push's enqueue producer,
``_producer``) and commits page by page while this process reads back what is committed (the
reads mostly wait for the portal). In one process the scan's mapping would take turns with the
reads under the GIL; so an adoption takes about as long as its reads alone (bench/adopt.py).

Cost: one read per dossier in the period, no write; the next push writes only the differences.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy import Engine

from dvcsync._gc import tune_gc
from dvcsync.config import Settings
from dvcsync.errors import DvcsyncError
from dvcsync.mapping import MappingSet
from dvcsync.portal import PortalClient
from dvcsync.state import DueEntry, EnqueueCounts, MappedRecord, StateStore

from ._producer import _die_with, _fresh, _quiet_signals, can_fork
from .first_contact import FirstContact, FirstContactCounts
from .job_config import PushConfig
from .push import ProgressFn, PushJob, PushOptions

log = logging.getLogger(__name__)

SCAN_CURSOR = "adopt:scan"
# the wire dates that place a dossier in a period, in order of preference
PERIOD_FIELDS = ("NgayTiepNhan", "NgayNopHoSo", "NgayXuLy")
ROUND_WAVES = 16  # a round of read-backs is this many waves of `concurrency` calls
ROUNDS_IN_FLIGHT = 2  # the next round's reads go out while the last one is being recorded
RETRY_WAIT_S = 10.0  # read-backs that failed are tried again within the run for this long
PageFn = Callable[["AdoptSummary", int], None]  # (the summary so far, the source's total): after each page


class ScanFailed(DvcsyncError, RuntimeError):
    """The scan process stopped with an error: what it committed stays; run adopt again."""


@dataclass
class AdoptSummary:
    scanned: int = 0  # province records read
    in_period: int = 0
    enqueue: EnqueueCounts = field(default_factory=EnqueueCounts)
    found: FirstContactCounts = field(default_factory=FirstContactCounts)
    unsettled: int = 0  # dossiers still to read back (read failures): run adopt again
    to_send: dict[str, int] = field(default_factory=dict)  # the outbox the next push delivers
    calls: int = 0
    elapsed_s: float = 0.0

    def scan_counts(self) -> dict[str, Any]:
        """What the scan counted (sent by the scan process page by page)."""
        return {"scanned": self.scanned, "in_period": self.in_period, "enqueue": asdict(self.enqueue)}

    def take_scan_counts(self, data: dict[str, Any]) -> None:
        self.scanned, self.in_period = int(data["scanned"]), int(data["in_period"])
        self.enqueue = EnqueueCounts(**data["enqueue"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "in_period": self.in_period,
            "enqueue": {name: getattr(self.enqueue, name) for name in self.enqueue.__dataclass_fields__},
            "found": self.found.as_dict(),
            "unsettled": self.unsettled,
            "to_send": self.to_send,
            "calls": self.calls,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def in_period(record: MappedRecord, since: date | None, until: date | None) -> bool:
    """The dossier's day (received, else submitted, else processed: wire ``yyyyMMdd…``) within
    ``[since, until]``; a dossier with none of them is in any period (it must not be missed)."""
    if since is None and until is None:
        return True
    payload = record.dossier or {}
    day = next((str(payload[k])[:8] for k in PERIOD_FIELDS if payload.get(k)), "")
    if len(day) != 8 or not day.isdigit():
        return True
    if since is not None and day < since.strftime("%Y%m%d"):
        return False
    return not (until is not None and day > until.strftime("%Y%m%d"))


class AdoptJob:
    """The first contact with a province's history. It builds a ``PushJob`` and reads only what
    that reads, so ``config`` is a ``PushConfig``; a whole ``Settings`` is still accepted (older
    callers') and narrowed at once, never kept."""

    def __init__(
        self,
        config: PushConfig | Settings,
        mappings: MappingSet,
        store: StateStore,
        client: PortalClient,
        source_engine: Engine,
        *,
        since: date | None = None,
        until: date | None = None,
        progress: ProgressFn | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        config = PushConfig.from_settings(config) if isinstance(config, Settings) else config
        self.store = store
        self.client = client
        self.since, self.until = since, until
        self.progress = progress
        self.clock = clock
        self.push = PushJob(
            config,
            mappings,
            store,
            client,
            source_engine,
            options=PushOptions(page_size=config.push.page_size, parallel_enqueue=False),
            clock=clock,
        )
        self.concurrency = config.limits.concurrency
        self.first_contact = FirstContact(
            store, client, asyncio.Semaphore(config.limits.concurrency), clock, self.push.backoff
        )

    @property
    def _period(self) -> str:
        """The scan cursor's watermark: another period starts the scan again."""
        return f"{self.since or ''}..{self.until or ''}"

    async def run(self) -> AdoptSummary:
        started = self.clock()
        summary = AdoptSummary()
        scanner = self._fork_scan() if can_fork(self.store.engine, self.push.source.engine) else None
        if scanner is None:
            await asyncio.to_thread(self._scan, summary)
        try:
            await self._read_back(summary, scanner)
        finally:
            if scanner is not None:
                scanner.stop()  # waits for a finished scan; ends one still running (the run failed)
        if scanner is not None and scanner.error:
            raise ScanFailed(f"reading and mapping the province failed: {scanner.error}")
        summary.found = self.first_contact.counts
        summary.calls = summary.found.read + summary.found.read_failed
        backlog = await asyncio.to_thread(self.store.backlog)
        summary.to_send = {k.split(":", 1)[1]: n for k, n in backlog.items() if k.startswith("pending:")}
        summary.elapsed_s = self.clock() - started
        return summary

    # ------------------------------------------------------------------ scan

    def _fork_scan(self) -> _ScanProcess | None:
        try:
            return _ScanProcess(self)
        except OSError as exc:  # no memory or process slot for a fork: scan here, then read back
            log.warning("cannot start the scan process (%s): scanning in this process first", exc)
            return None

    def _scan(self, summary: AdoptSummary, on_page: PageFn | None = None) -> None:
        source = self.push.source
        key = source.spec.key
        watermark, done_key = self.store.cursor(SCAN_CURSOR)
        if watermark != self._period:
            done_key = 0
        total = source.count()
        for page in source.iter_pages(self.push.options.page_size):
            summary.scanned += len(page)
            last = page[-1][key]
            if isinstance(last, int) and last <= done_key:
                self._tick("scan", summary.scanned, total)
                if on_page is not None:
                    on_page(summary, total)
                continue  # enqueued by an earlier run of the same adoption
            mapped = self.push._check_citizens(page, [self.push.map_record(r) for r in page])
            chosen = [m for m in mapped if in_period(m, self.since, self.until)]
            summary.in_period += len(chosen)
            counts = self.store.enqueue_page(
                chosen,
                cursor_name=SCAN_CURSOR,
                watermark=self._period,
                last_key=int(last) if isinstance(last, int) else 0,
            )
            summary.enqueue.add(counts)
            self._tick("scan", summary.scanned, total)
            if on_page is not None:
                on_page(summary, total)

    # ------------------------------------------------------------------ read back

    async def _read_back(self, summary: AdoptSummary, scanner: _ScanProcess | None) -> None:
        """Settle what the scan has committed, round after round, until the scan is over and
        nothing is left (or only reads that keep failing: run adopt again)."""
        done = 0
        total: int | None = None  # known once the scan is over; until then, what it found so far
        limit = max(1, self.concurrency * ROUND_WAVES)
        deadline: float | None = None
        rounds: _Rounds = {}  # in flight: their outbox ids
        try:
            while True:
                scanning = False
                if scanner is not None:
                    scanner.poll(summary, self._tick)
                    scanning = not scanner.finished
                    if scanner.error:
                        return  # run() raises it
                if total is None and not scanning:
                    total = done + await asyncio.to_thread(self._waiting)
                await self._launch(rounds, limit)
                if rounds:
                    done += await _collect(rounds)
                    self._tick("read back", done, max(done, summary.in_period if total is None else total))
                    deadline = None
                    continue
                if scanning and scanner is not None:
                    await scanner.wait()  # its next page, or its end
                    continue
                summary.unsettled = await asyncio.to_thread(self._waiting)
                if not summary.unsettled:
                    return
                # read-backs that failed wait for their backoff: a short while within this run
                deadline = deadline if deadline is not None else self.clock() + RETRY_WAIT_S
                if self.clock() >= deadline:
                    log.warning(
                        "adopt: %d dossiers could not be read back; run adopt again", summary.unsettled
                    )
                    return
                await asyncio.sleep(0.5)
        finally:
            for task in rounds:
                task.cancel()
            await asyncio.gather(*rounds, return_exceptions=True)

    async def _launch(self, rounds: _Rounds, limit: int) -> None:
        """Start rounds of read-backs, up to ``ROUNDS_IN_FLIGHT``, while any are due."""
        while len(rounds) < ROUNDS_IN_FLIGHT:
            busy = [i for ids in rounds.values() for i in ids]
            due = await asyncio.to_thread(self._due, limit, busy)
            if not due:
                break
            task = asyncio.ensure_future(self.first_contact.settle(due, send=False))
            rounds[task] = [e.id for e in due]

    def _due(self, limit: int, busy: list[int]) -> list[DueEntry]:
        """The next round: dossiers waiting for a read-back, else status reports; not those of
        the rounds in flight (still waiting until recorded)."""
        for kind in ("dossier", "status"):
            due = self.store.due(kind, limit, now=self.clock(), exclude=busy, first_contact=True)
            if due:
                return due
        return []

    def _waiting(self) -> int:
        return self.store.count_first_contacts()

    def _tick(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(phase, done, total)


# Rounds of read-backs in flight, with the outbox ids of each.
_Rounds = dict[asyncio.Task[list[DueEntry]], list[int]]


async def _collect(rounds: _Rounds) -> int:
    """Wait for a round (or more) to finish; how many entries they settled."""
    finished, _ = await asyncio.wait(rounds, return_when=asyncio.FIRST_COMPLETED)
    settled = 0
    for task in finished:
        task.result()  # the portal unreachable, the state refused: the run stops
        settled += len(rounds.pop(task))
    return settled


class _ScanProcess:
    """The scan in a forked process; the parent's handle takes in its counts page by page."""

    def __init__(self, job: AdoptJob) -> None:
        # no database connection may cross the fork (see _producer.EnqueueProducer)
        job.store.engine.dispose()
        job.push.source.engine.dispose()
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        self.error: str | None = None
        self.finished = False
        self._conn = receive
        self._process = context.Process(
            target=_scan_child, args=(job, send, os.getpid()), name="dvcsync-adopt-scan", daemon=True
        )
        self._process.start()
        send.close()

    def poll(self, summary: AdoptSummary, tick: Callable[[str, int, int], None]) -> None:
        """Take in what the scan reported so far, without waiting."""
        self._drain(summary, tick)
        if not self.finished and not self._process.is_alive():
            self._process.join()
            self._drain(summary, tick)  # what it sent between the look above and its end
            if not self.finished:
                self.finished = True
                self.error = f"the scan process ended without finishing (exit code {self._process.exitcode})"

    def _drain(self, summary: AdoptSummary, tick: Callable[[str, int, int], None]) -> None:
        while not self.finished and self._conn.poll():
            try:
                kind, data = self._conn.recv()
            except (EOFError, OSError):
                return
            if kind == "page":
                counts, total = data
                summary.take_scan_counts(counts)
                tick("scan", summary.scanned, total)
            elif kind == "done":
                self.finished = True
            elif kind == "error":
                self.error, self.finished = str(data), True

    async def wait(self, timeout: float = 1.0) -> None:
        """Until the scan reports (a page, its end; its death closes the pipe) or ``timeout``."""
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        fd = self._conn.fileno()
        loop.add_reader(fd, ready.set)
        try:
            await asyncio.wait_for(ready.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(fd)

    def stop(self) -> None:
        """Wait for a finished scan; end one still running (its open page rolls back; what it
        committed stays, and the next adopt skips it)."""
        if self._process.is_alive() and not self.finished:
            self._process.terminate()
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()


def _scan_child(job: AdoptJob, conn: Connection, parent: int) -> None:
    status = 1
    try:
        _quiet_signals()
        _die_with(parent)
        logging.disable(logging.CRITICAL)  # it reports through the pipe (a lock held at the fork)
        tune_gc()
        job.store = job.push.store = StateStore(job.store.url)
        job.push.source.engine = _fresh(job.push.source.engine)
        job.progress = None

        def on_page(summary: AdoptSummary, total: int) -> None:
            if os.getppid() != parent:  # orphaned: the adoption that wanted these pages is gone
                raise SystemExit(1)
            conn.send(("page", (summary.scan_counts(), total)))

        job._scan(AdoptSummary(), on_page)
        conn.send(("done", None))
        status = 0
    except BaseException as exc:  # everything goes back to the parent, then out
        with contextlib.suppress(Exception):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        with contextlib.suppress(Exception):
            conn.close()
        os._exit(status)  # never the parent's atexit handlers, finalizers or event loop


__all__ = ["AdoptJob", "AdoptSummary", "ScanFailed", "in_period"]
