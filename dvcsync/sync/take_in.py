"""Taking in a dossier that came from the portal, one way for every door it comes through.

The pull job (``DanhSachHoSo``) and the inbound server's promotion route (pushed by the portal)
both do the same: store the attachments (so a row only ever points at a whole file), map the
body, write it to the inbox once by its code, claim it there (replicas: one of them takes it in),
create it in the province through the boundary (``dvcsync.province.sink``, by the portal's code)
and mark the inbox. What each door answers its sender is left to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from dvcsync import metrics
from dvcsync.contract import escape_for_log
from dvcsync.mapping import CompiledMapping
from dvcsync.province.sink import SinkError, SqlSink
from dvcsync.state import Inbox

from .attachments import AttachmentStore, Refusal, without_content

log = logging.getLogger(__name__)

Outcome = Literal["created", "duplicate", "rejected", "failed", "busy"]


@dataclass(frozen=True)
class Taken:
    """What became of one dossier: ``created``, ``duplicate`` (taken in before), ``rejected``
    (cannot be mapped: ``reason``), ``failed`` (the province refused the write: comes again),
    ``busy`` (another replica is taking it in now)."""

    outcome: Outcome
    local_key: str | None = None
    reason: str = ""
    inbox_id: int | None = None
    attachments_stored: int = 0  # files written (not those already there)
    attachments_refused: int = 0  # refusals recorded for the first time


class TakeIn:
    def __init__(
        self,
        kind: str,
        inbox: Inbox,
        mapping: CompiledMapping,
        sink: SqlSink,
        attachments: AttachmentStore,
    ) -> None:
        self.kind = kind
        self.inbox = inbox
        self.mapping = mapping
        self.table = mapping.spec.output
        self.sink = sink
        self.attachments = attachments

    def __call__(
        self, code: str, body: dict[str, Any], *, refused_payload: dict[str, Any] | None = None
    ) -> Taken:
        """Take one dossier in. The inbox keeps the body without its files' content, or
        ``refused_payload`` (e.g. a digest) when the body cannot be mapped."""
        files = self.attachments.take(code, body.get("TaiLieuNop"))
        stored = sum(1 for f in files.stored if f.written)
        mapped_body = {**body, "TaiLieuNop": files.items} if files.stored or files.refused else body
        result = self.mapping.map(mapped_body)
        kept = without_content(body) if result.ok or refused_payload is None else refused_payload
        item = self.inbox.receive(self.kind, code, kept)
        if item.state in ("applied", "acknowledged"):
            return Taken("duplicate", item.local_key, inbox_id=item.id, attachments_stored=stored)
        with self.inbox.applying(item) as claimed:
            if claimed is None:
                return Taken("busy", inbox_id=item.id, attachments_stored=stored)
            if claimed.state in ("applied", "acknowledged"):
                return Taken("duplicate", claimed.local_key, inbox_id=item.id, attachments_stored=stored)
            refused = sum(self._record_refusal(r) for r in files.refused)
            if not result.ok:
                reason = "; ".join(str(e) for e in result.errors)
                self.inbox.mark(item.id, "rejected", error=reason[:1000])
                return Taken(
                    "rejected",
                    reason=reason,
                    inbox_id=item.id,
                    attachments_stored=stored,
                    attachments_refused=refused,
                )
            row = result.value
            try:
                _, created = self.sink.create(self.table, row)
            except SinkError as exc:
                self.inbox.mark(item.id, "received", error=str(exc))
                log.warning("portal dossier %s not taken in: %s", escape_for_log(code), exc)
                return Taken(
                    "failed",
                    reason=str(exc),
                    inbox_id=item.id,
                    attachments_stored=stored,
                    attachments_refused=refused,
                )
            local = self.sink.local_key(row)
            if created:
                metrics.RECORDS_PULLED.inc()
            self.inbox.mark(item.id, "applied", local_key=local)
            return Taken(
                "created" if created else "duplicate",
                local,
                inbox_id=item.id,
                attachments_stored=stored,
                attachments_refused=refused,
            )

    def _record_refusal(self, refusal: Refusal) -> bool:
        """One refused attachment, recorded once (a second delivery finds it): an inbox event of
        its own, rejected, whose error names the dossier, the file and the reason."""
        event = self.inbox.receive(
            "attachment",
            f"{refusal.dossier}#{refusal.index}",
            {"MaHoSo": refusal.dossier, "TenTepDinhKem": refusal.name, "LyDo": refusal.reason},
        )
        if event.state == "rejected":
            return False
        self.inbox.mark(event.id, "rejected", error=str(refusal)[:1000])
        log.warning("%s: attachment refused: %s", self.kind, escape_for_log(str(refusal)))
        return True


__all__ = ["TakeIn", "Taken"]
