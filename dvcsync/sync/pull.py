"""The pull job: dossiers citizens submitted on the portal → the province.

Each listed dossier goes to the inbox (once, by ``MaHoSo``), is mapped by the inbound specs,
created in the province in one transaction, and only then acknowledged with ``XacNhanHoSo``.
A dossier the province could not take stays unacknowledged, so the portal lists it again; one
taken in but not acknowledged (the answer was lost) is found in the province and acknowledged.

Attachments that come with their content (``TaiLieuNop[].Base64``) are stored in the documents
folder before the dossier is written, and its document rows point at them
(``dvcsync.sync.attachments``); a refused one is recorded in the inbox and the rest is taken in.

Withdrawals are read back in two ways: dossiers the province pushed, one ``TraCuuHoSo`` each (a
rotating slice); dossiers submitted on the portal, which ``TraCuuHoSo`` does not return, from the
portal's listing of its own dossiers in status 7 (``DanhSachHoSo`` with ``trangthai``, a choice
the mock implements).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine

from dvcsync.config import Settings
from dvcsync.contract import LEGAL_MOVES
from dvcsync.mapping import MappingSet
from dvcsync.portal import AuthError, PortalClient, PortalError, UnreachableError
from dvcsync.province.schema import ProvinceSchema, load_schema
from dvcsync.province.sink import SinkError, SqlSink
from dvcsync.state import Inbox, StateStore
from dvcsync.sync.attachments import AttachmentStore
from dvcsync.sync.job_config import PullConfig
from dvcsync.sync.take_in import TakeIn

log = logging.getLogger(__name__)

WITHDRAWN = "7"
WITHDRAWAL_CURSOR = "pull:withdrawals"


@dataclass
class PullSummary:
    listed: int = 0
    created: int = 0
    already_in_province: int = 0
    acknowledged: int = 0
    rejected: int = 0  # could not be mapped: stays on the portal's list, reasons in the inbox
    failed: int = 0  # the province refused the write: not acknowledged, comes again
    ack_failed: int = 0
    checked_for_withdrawal: int = 0
    withdrawn: int = 0  # withdrawn on the portal, applied to the province
    conflicts: int = 0  # withdrawn on the portal after the province had moved on: for the reconciler
    attachments_stored: int = 0  # files written to the documents folder (not those already there)
    attachments_refused: int = 0  # newly refused (type, size, name): recorded in the inbox
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["elapsed_s"] = round(self.elapsed_s, 3)
        return data


class PullJob:
    """Portal → province. ``config`` is what it reads of the configuration (``PullConfig``); a
    whole ``Settings`` is still accepted (older callers') and narrowed at once, never kept."""

    def __init__(
        self,
        config: PullConfig | Settings,
        mappings: MappingSet,
        store: StateStore,
        client: PortalClient,
        sink_engine: Engine,
        *,
        page_size: int = 100,
        mapping: str = "inbound_dossier",
        withdrawal_batch: int = 500,
        clock: Callable[[], float] = time.time,
        attachments: AttachmentStore | None = None,
        schema: ProvinceSchema | None = None,
    ) -> None:
        self.config = config = PullConfig.from_settings(config) if isinstance(config, Settings) else config
        self.client = client
        self.store = store
        self.mappings = mappings
        self.inbox = Inbox(store)
        self.withdrawal_batch = withdrawal_batch
        self.schema = schema or load_schema(mappings.folder)
        # a portal dossier is found in the province by the portal's code
        self.sink = SqlSink(sink_engine, self.schema, key_column=self.schema.dossiers.portal_code)
        self.page_size = page_size
        self.clock = clock
        self.attachments = attachments or AttachmentStore(config.documents_dir)
        self.take_in = TakeIn(
            "portal_dossier", self.inbox, mappings.get(mapping), self.sink, self.attachments
        )
        self._semaphore = asyncio.Semaphore(config.limits.concurrency)

    async def run_cycle(self) -> PullSummary:
        started = self.clock()
        summary = PullSummary()
        listed = await self._list_all()
        summary.listed = len(listed)
        acks: list[tuple[int, str, str]] = []  # (inbox id, portal code, local key)
        for raw in listed:
            code = str(raw.get("MaHoSo") or "")
            if not code:
                summary.rejected += 1
                log.warning("a listed portal dossier has no MaHoSo; skipped")
                continue
            taken = self.take_in(code, raw)
            summary.attachments_stored += taken.attachments_stored
            summary.attachments_refused += taken.attachments_refused
            if taken.outcome == "created":
                summary.created += 1
            elif taken.outcome == "duplicate":
                summary.already_in_province += 1
            elif taken.outcome == "rejected":
                summary.rejected += 1
            else:  # failed, or another replica is taking it in: not acknowledged, comes again
                summary.failed += 1
            if taken.local_key is not None and taken.inbox_id is not None:
                acks.append((taken.inbox_id, code, taken.local_key))
        await asyncio.gather(*(self._acknowledge(*ack, summary) for ack in acks))
        if self.withdrawal_batch > 0:
            await self._withdrawals(summary)
            await self._portal_withdrawals(summary)
        summary.elapsed_s = self.clock() - started
        return summary

    # ------------------------------------------------------------------ withdrawals

    async def _withdrawals(self, summary: PullSummary) -> None:
        """Read back a slice of the dossiers the portal holds in a status a citizen may still
        withdraw from; a withdrawal there (status 7) is the portal's to decide, so it is applied
        to the province, unless the province has already moved on: then it is a conflict."""
        withdrawable = sorted(code for code, moves in LEGAL_MOVES.items() if WITHDRAWN in moves)
        last, _ = self.store.cursor(WITHDRAWAL_CURSOR)
        keys = self.store.on_portal_in(withdrawable, after=last, limit=self.withdrawal_batch)
        self.store.set_cursor(WITHDRAWAL_CURSOR, keys[-1] if len(keys) == self.withdrawal_batch else "")
        if not keys:
            return
        local_withdrawn, local_allowed = self._local_withdrawal()

        async def portal_status(key: str) -> tuple[str, str | None]:
            async with self._semaphore:
                try:
                    reply = await self.client.call("TraCuuHoSo", {"mahoso": key}, typed=False)
                except (AuthError, UnreachableError):
                    raise
                except PortalError:
                    return key, None  # checked again on a later cycle
            items = reply.result or []
            return key, (str(items[0].get("TrangThaiHoSo")) if items and isinstance(items[0], dict) else None)

        for key, status in await asyncio.gather(*(portal_status(k) for k in keys)):
            summary.checked_for_withdrawal += 1
            if status == WITHDRAWN:
                self._apply_withdrawal(key, local_withdrawn, local_allowed, summary)

    async def _portal_withdrawals(self, summary: PullSummary) -> None:
        """Dossiers submitted on the portal that the citizen withdrew there: the portal lists its
        own dossiers in status 7 (acknowledged or not); each is applied once, or is a conflict when
        the province has moved on. An item not marked 7 is ignored, so a portal that ignores the
        ``trangthai`` filter (and sends its ordinary listing) changes nothing."""
        local_withdrawn, local_allowed = self._local_withdrawal()
        page = 1
        while True:
            reply = await self.client.call(
                "DanhSachHoSo",
                {"trangthai": WITHDRAWN, "trang": str(page), "sobanghi": str(self.page_size)},
                typed=False,
            )
            if not reply.ok:  # a portal without this listing: pushed dossiers are still checked
                log.warning("withdrawn portal dossiers not listed: error_code %s", reply.error_code)
                return
            batch = [item for item in reply.result or [] if isinstance(item, dict)]
            for raw in batch:
                code = str(raw.get("MaHoSo") or "")
                if code and str(raw.get("TrangThaiHoSo")) == WITHDRAWN:
                    summary.checked_for_withdrawal += 1
                    self._apply_withdrawal(
                        code,
                        local_withdrawn,
                        local_allowed,
                        summary,
                        key_column=self.schema.dossiers.portal_code,
                    )
            if len(batch) < self.page_size:
                return
            page += 1

    def _local_withdrawal(self) -> tuple[str, frozenset[str]]:
        """The local status a withdrawal writes and those it may be applied from: the schema's
        when it names them, else the statuses code table's values of the national codes."""
        configured = self.schema.statuses
        withdrawable = sorted(code for code, moves in LEGAL_MOVES.items() if WITHDRAWN in moves)
        statuses = self.mappings.codes["statuses"]
        withdrawn = configured.withdrawn or statuses.reverse_lookup(WITHDRAWN)
        if configured.withdrawable is not None:
            return withdrawn, frozenset(configured.withdrawable)
        return withdrawn, frozenset(statuses.reverse_lookup(code) for code in withdrawable)

    def _apply_withdrawal(
        self,
        key: str,
        local_withdrawn: str,
        allowed: frozenset[str],
        summary: PullSummary,
        *,
        key_column: str | None = None,
    ) -> None:
        item = self.inbox.receive("withdrawal", key, {"MaHoSo": key, "TrangThaiHoSo": WITHDRAWN})
        if item.state in ("applied", "conflict"):
            return
        try:
            applied, before, step_id = self.sink.withdraw(
                key, allowed=allowed, status=local_withdrawn, key_column=key_column
            )
        except SinkError as exc:
            self.inbox.mark(item.id, "received", error=str(exc))
            return
        if not applied and before == local_withdrawn:  # withdrawn in the province too: nothing to do
            self.inbox.mark(item.id, "applied", local_key=key)
            return
        if not applied:
            summary.conflicts += 1
            self.store.record_conflict(
                key,
                "TrangThaiHoSo",
                before,
                WITHDRAWN,
                "withdrawn on the portal after the province had moved on; not applied",
            )
            self.inbox.mark(item.id, "conflict", error=f"province status {before!r}")
            return
        summary.withdrawn += 1
        self._remember_portal_step(key, step_id)
        self.inbox.mark(item.id, "applied", local_key=key)

    def _remember_portal_step(self, key: str, step_id: int | None) -> None:
        """The portal wrote its own history entry for the withdrawal: the province's step for it
        must not be pushed as a second one."""
        spec = self.mappings.specs.get("dossier")
        if step_id is None or spec is None or spec.source is None:
            return
        from dvcsync.province.source import SqlSource
        from dvcsync.state import payload_hash

        record = SqlSource(self.sink.engine, spec.source).get(key)
        steps = self.mappings.specs.get("step")
        if record is None or steps is None or steps.items_of is None:
            return
        child = spec.source.children[steps.items_of.child]
        for row in record.get(steps.items_of.child) or []:
            if row.get(child.key) == step_id:
                mapped = self.mappings.get("step").map(row, parent=record, record_key=key)
                if mapped.ok:
                    self.store.mark_steps_known(key, [(str(step_id), payload_hash(mapped.value.to_wire()))])

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

    async def _acknowledge(self, inbox_id: int, code: str, local: str, summary: PullSummary) -> None:
        async with self._semaphore:
            try:
                reply = await self.client.call("XacNhanHoSo", {"mahoso": code, "mahosodonvi": local})
            except (AuthError, UnreachableError):
                raise
            except PortalError as exc:
                summary.ack_failed += 1  # taken in already: the next cycle finds it and acknowledges again
                self.inbox.mark(inbox_id, "applied", error=f"acknowledgement failed: {exc}")
                return
        if reply.ok:
            summary.acknowledged += 1
            self.inbox.mark(inbox_id, "acknowledged")
        else:
            summary.ack_failed += 1
            self.inbox.mark(
                inbox_id, "applied", error=f"XacNhanHoSo error_code {reply.error_code}: {reply.message}"
            )
