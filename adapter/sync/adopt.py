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

Cost: one read per dossier in the period, no write; the next push writes only the differences.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Engine

from adapter.config import Settings
from adapter.mapping import MappingSet
from adapter.portal import PortalClient
from adapter.state import EnqueueCounts, MappedRecord, StateStore

from .first_contact import FirstContact, FirstContactCounts
from .push import ProgressFn, PushJob, PushOptions

log = logging.getLogger(__name__)

SCAN_CURSOR = "adopt:scan"
# the wire dates that place a dossier in a period, in order of preference
PERIOD_FIELDS = ("NgayTiepNhan", "NgayNopHoSo", "NgayXuLy")
ROUND_WAVES = 16  # a round of read-backs is this many waves of `concurrency` calls
RETRY_WAIT_S = 10.0  # read-backs that failed are tried again within the run for this long


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
    def __init__(
        self,
        settings: Settings,
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
        self.store = store
        self.client = client
        self.since, self.until = since, until
        self.progress = progress
        self.clock = clock
        self.push = PushJob(
            settings,
            mappings,
            store,
            client,
            source_engine,
            options=PushOptions(page_size=settings.push.page_size, parallel_enqueue=False),
            clock=clock,
        )
        self.concurrency = settings.portal.concurrency
        self.first_contact = FirstContact(
            store, client, asyncio.Semaphore(settings.portal.concurrency), clock, self.push.backoff
        )

    @property
    def _period(self) -> str:
        """The scan cursor's watermark: another period starts the scan again."""
        return f"{self.since or ''}..{self.until or ''}"

    async def run(self) -> AdoptSummary:
        started = self.clock()
        summary = AdoptSummary()
        await asyncio.to_thread(self._scan, summary)
        await self._read_back(summary)
        summary.found = self.first_contact.counts
        summary.calls = summary.found.read + summary.found.read_failed
        backlog = await asyncio.to_thread(self.store.backlog)
        summary.to_send = {k.split(":", 1)[1]: n for k, n in backlog.items() if k.startswith("pending:")}
        summary.elapsed_s = self.clock() - started
        return summary

    # ------------------------------------------------------------------ scan

    def _scan(self, summary: AdoptSummary) -> None:
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

    # ------------------------------------------------------------------ read back

    async def _read_back(self, summary: AdoptSummary) -> None:
        total = await asyncio.to_thread(self._waiting)
        done = 0
        limit = max(1, self.concurrency * ROUND_WAVES)
        deadline: float | None = None
        while True:
            progressed = False
            for kind in ("dossier", "status"):
                due = await asyncio.to_thread(
                    self.store.due, kind, limit, now=self.clock(), first_contact=True
                )
                if not due:
                    continue
                progressed = True
                await self.first_contact.settle(due, send=False)
                done += len(due)
                self._tick("read back", done, max(total, done))
            if progressed:
                deadline = None
                continue
            summary.unsettled = await asyncio.to_thread(self._waiting)
            if not summary.unsettled:
                return
            # read-backs that failed wait for their backoff: a short while within this run
            deadline = deadline if deadline is not None else self.clock() + RETRY_WAIT_S
            if self.clock() >= deadline:
                log.warning("adopt: %d dossiers could not be read back; run adopt again", summary.unsettled)
                return
            await asyncio.sleep(0.5)

    def _waiting(self) -> int:
        return self.store.count_first_contacts()

    def _tick(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(phase, done, total)


__all__ = ["AdoptJob", "AdoptSummary", "in_period"]
