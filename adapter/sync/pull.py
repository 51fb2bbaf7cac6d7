"""The pull job: dossiers citizens submitted on the portal → the province.

Each listed dossier goes to the inbox (once, by ``MaHoSo``), is mapped by the inbound specs,
created in the province in one transaction, and only then acknowledged with ``XacNhanHoSo``.
A dossier the province could not take stays unacknowledged, so the portal lists it again; one
taken in but not acknowledged (the answer was lost) is found in the province and acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine

from adapter.config import Settings
from adapter.mapping import MappingSet
from adapter.portal import AuthError, PortalError, RestPortalClient
from adapter.province.sink import SinkError, SqlSink
from adapter.state import Inbox, InboxItem, StateStore

log = logging.getLogger(__name__)


@dataclass
class PullSummary:
    listed: int = 0
    created: int = 0
    already_in_province: int = 0
    acknowledged: int = 0
    rejected: int = 0  # could not be mapped: stays on the portal's list, reasons in the inbox
    failed: int = 0  # the province refused the write: not acknowledged, comes again
    ack_failed: int = 0
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["elapsed_s"] = round(self.elapsed_s, 3)
        return data


class PullJob:
    def __init__(
        self,
        settings: Settings,
        mappings: MappingSet,
        store: StateStore,
        client: RestPortalClient,
        sink_engine: Engine,
        *,
        page_size: int = 100,
        mapping: str = "inbound_dossier",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.client = client
        self.inbox = Inbox(store)
        self.mapping = mappings.get(mapping)
        self.table = mappings.specs[mapping].output
        self.sink = SqlSink(sink_engine)
        self.page_size = page_size
        self.clock = clock
        self._semaphore = asyncio.Semaphore(settings.portal.concurrency)

    async def run_cycle(self) -> PullSummary:
        started = self.clock()
        summary = PullSummary()
        listed = await self._list_all()
        summary.listed = len(listed)
        acks: list[tuple[InboxItem, str]] = []
        for raw in listed:
            code = str(raw.get("MaHoSo") or "")
            if not code:
                summary.rejected += 1
                log.warning("a listed portal dossier has no MaHoSo; skipped")
                continue
            item = self.inbox.receive("portal_dossier", code, raw)
            local = self._take_in(item, raw, summary)
            if local is not None:
                acks.append((item, local))
        await asyncio.gather(*(self._acknowledge(item, local, summary) for item, local in acks))
        summary.elapsed_s = self.clock() - started
        return summary

    async def _list_all(self) -> list[dict[str, Any]]:
        """Every unacknowledged dossier, read page by page before any is acknowledged (an
        acknowledged dossier leaves the list, which would shift later pages)."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            reply = await self.client.call(
                "DanhSachHoSo", {"trang": str(page), "sobanghi": str(self.page_size)}, typed=False
            )
            if not reply.ok:
                raise PortalError("DanhSachHoSo", f"error_code {reply.error_code}: {reply.message}")
            batch = [item for item in reply.result or [] if isinstance(item, dict)]
            items.extend(batch)
            if len(batch) < self.page_size:
                return items
            page += 1

    def _take_in(self, item: InboxItem, raw: dict[str, Any], summary: PullSummary) -> str | None:
        """Create the dossier in the province (or find it there); the local key, or None."""
        result = self.mapping.map(raw)
        if not result.ok:
            summary.rejected += 1
            self.inbox.mark(item.id, "rejected", error="; ".join(str(e) for e in result.errors))
            return None
        row = result.value
        try:
            _, created = self.sink.create(self.table, row)
        except SinkError as exc:
            summary.failed += 1
            self.inbox.mark(item.id, "received", error=str(exc))
            log.warning("portal dossier %s not taken in: %s", item.natural_key, exc)
            return None
        local = str(row["so_ho_so"])
        if created:
            summary.created += 1
        else:
            summary.already_in_province += 1
        self.inbox.mark(item.id, "applied", local_key=local)
        return local

    async def _acknowledge(self, item: InboxItem, local: str, summary: PullSummary) -> None:
        async with self._semaphore:
            try:
                reply = await self.client.call(
                    "XacNhanHoSo", {"mahoso": item.natural_key, "mahosodonvi": local}
                )
            except AuthError:
                raise
            except PortalError as exc:
                summary.ack_failed += 1  # taken in already: the next cycle finds it and acknowledges again
                self.inbox.mark(item.id, "applied", error=f"acknowledgement failed: {exc}")
                return
        if reply.ok:
            summary.acknowledged += 1
            self.inbox.mark(item.id, "acknowledged")
        else:
            summary.ack_failed += 1
            self.inbox.mark(
                item.id, "applied", error=f"XacNhanHoSo error_code {reply.error_code}: {reply.message}"
            )
