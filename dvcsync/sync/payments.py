"""The payment job: INIT for dossiers that ask for payment, QUERY for attempts whose result never
came, GET_BILL for paid attempts without a saved receipt (payment-platform.md §1, §3).

Every attempt is written to the province (an attempt row, created) before INIT leaves, so a
crash never loses a reference; a paid QUERY answer goes through the same ``apply_paid`` as a paid
callback, so it is applied once whichever arrives first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from dvcsync.config import Settings
from dvcsync.contract import (
    VN_TZ,
    GetBillRequest,
    InitRequest,
    QueryReply,
    QueryRequest,
    format_wire_datetime,
    parse_init_reply,
    parse_local_iso,
)
from dvcsync.errors import TransientError
from dvcsync.mapping import MappingSet
from dvcsync.portal import ReplyTooLarge
from dvcsync.portal._http import describe, read_capped, tls_problem
from dvcsync.province.schema import load_schema
from dvcsync.province.source import SqlSource

from .job_config import PaymentConfig, receipts_dir
from .payment_inbound import BillError, build_bill
from .payment_ledger import CREATED, Attempt, Due, PaymentLedger, now_local_iso, wire_to_local_iso

log = logging.getLogger(__name__)

RECEIPT_MAPPING = "payment_receipt"
RECEIPT_AFTER_MAPPING = "payment_receipt_after"  # fees collected after processing (thu_sau)
SEND_TRIES = 3
PAID, PENDING, FAILED = "1", "3", "4"


class PaymentCallError(TransientError):
    """A platform call got no usable answer. ``sent`` False: it certainly never arrived."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


@dataclass(frozen=True)
class PlatformReply:
    """A platform answer read in full (under the reply cap): what the job reads of it."""

    status_code: int
    content: bytes | bytearray

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


@dataclass
class PaymentSummary:
    initiated: int = 0
    init_refused: int = 0
    init_unanswered: int = 0
    polled: int = 0
    paid: int = 0
    failed: int = 0
    pending: int = 0
    receipts: int = 0
    errors: int = 0
    problems: list[str] = field(default_factory=list)
    payment_urls: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PaymentJob:
    """The payment platform's cycle. ``config`` is what it reads of the configuration
    (``PaymentConfig``); a whole ``Settings`` is still accepted (older callers') and narrowed at
    once, never kept."""

    def __init__(
        self,
        config: PaymentConfig | Settings,
        mappings: MappingSet,
        engine: Engine,
        client: httpx.AsyncClient,
    ) -> None:
        self.config = config = PaymentConfig.from_settings(config) if isinstance(config, Settings) else config
        self.payment = config.payment
        self.secret = config.payment.secret.get_secret_value()
        self.ledger = PaymentLedger(engine, load_schema(mappings.folder))
        self.mapping = mappings.get(RECEIPT_MAPPING)
        # a mapping folder without the after-processing bill bills only what is owed up front
        self.mapping_after = (
            mappings.get(RECEIPT_AFTER_MAPPING) if RECEIPT_AFTER_MAPPING in mappings else None
        )
        spec = mappings.specs[RECEIPT_MAPPING].source
        if spec is None:
            raise ValueError(f"mapping {RECEIPT_MAPPING!r} needs a 'source' (the dossier table)")
        self.source = SqlSource(engine, spec)
        self.client = client
        self.receipts = config.receipts_dir
        self._loose_said = False  # a receipts folder others can list is said once per job

    async def run_cycle(self) -> PaymentSummary:
        summary = PaymentSummary()
        await self.initiate(summary)
        await self.poll(summary)
        await self.fetch_receipts(summary)
        return summary

    # ------------------------------------------------------------------ INIT

    async def initiate(self, summary: PaymentSummary) -> None:
        for due in await asyncio.to_thread(self.ledger.due, self.payment.init_retry_after_s):
            await self._init_one(due, summary)

    async def _init_one(self, due: Due, summary: PaymentSummary) -> None:
        mapping = self.mapping if due.stage == self.ledger.ahead else self.mapping_after
        if mapping is None:
            return  # no bill for fees after processing in these mappings: nothing is asked
        try:
            bill = await asyncio.to_thread(build_bill, mapping, self.source, due.dossier_key)
        except BillError as exc:
            summary.errors += 1
            summary.problems.append(f"{due.dossier_key}: receipt data: {exc}")
            return
        if bill is None:
            return
        if bill.total != due.amount:  # the mapping and the query disagree: never ask a wrong amount
            summary.errors += 1
            summary.problems.append(
                f"{due.dossier_key}: DSKhoanNop adds up to {bill.total}, fees to {due.amount}"
            )
            return
        now = datetime.now(VN_TZ).replace(microsecond=0)
        attempt = await asyncio.to_thread(
            self.ledger.create_attempt, due, now.replace(tzinfo=None).isoformat()
        )
        request = InitRequest(
            MaDoiTac=self.payment.partner_code,
            MaThamChieu=attempt.reference,
            SoTien=due.amount,
            ThongTinGiaoDich=f"Thanh toan phi le phi ho so {due.dossier_key}",
            ThoiGianGD=format_wire_datetime(now),
            Ip="127.0.0.1",
            ThongTinBienLai=bill,
        ).signed(self.secret)
        try:
            response = await self._post(self.payment.init_url, request.to_wire())
            result = parse_init_reply(response.json())
        except PaymentCallError as exc:
            if exc.sent:  # may have arrived: the poll settles it
                summary.init_unanswered += 1
                summary.problems.append(f"{attempt.reference}: INIT unanswered, left created: {exc}")
                return
            await self._refused(attempt, f"INIT not sent: {exc}", summary)
            return
        except ValueError as exc:
            await self._refused(attempt, f"INIT reply unreadable: {_reply_problem(exc)}", summary)
            return
        if result.MaLoi != "00":
            await self._refused(attempt, f"INIT refused: MaLoi {result.MaLoi} {result.MoTaLoi}", summary)
            return
        summary.initiated += 1
        summary.payment_urls[attempt.reference] = result.UrlThanhToan or ""
        log.info("payment %s created for %s: %s", attempt.reference, due.dossier_key, result.UrlThanhToan)

    async def _refused(self, attempt: Attempt, reason: str, summary: PaymentSummary) -> None:
        await asyncio.to_thread(self.ledger.mark_failed, attempt.reference)
        summary.init_refused += 1
        summary.problems.append(f"{attempt.reference}: {reason}")
        log.warning("payment %s failed: %s", attempt.reference, reason)

    # ------------------------------------------------------------------ QUERY

    async def poll(self, summary: PaymentSummary) -> None:
        """QUERY the attempts still ``created`` whose age lies in the configured window."""
        now = datetime.now(VN_TZ)
        for attempt in await asyncio.to_thread(self.ledger.attempts, CREATED):
            age = attempt.age_s(now)
            if not self.payment.poll_min_age_s <= age <= self.payment.poll_max_age_s:
                continue
            await self.query_one(attempt, summary)

    async def query_one(self, attempt: Attempt, summary: PaymentSummary) -> None:
        request = QueryRequest(
            MaDoiTac=self.payment.partner_code,
            MaThamChieu=attempt.reference,
            ThoiGianGD=format_wire_datetime(parse_local_iso(attempt.created)),
        ).signed(self.secret)
        summary.polled += 1
        try:
            response = await self._post(self.payment.query_url, request.to_wire())
            reply = QueryReply.model_validate(response.json())
        except (PaymentCallError, ValueError) as exc:
            summary.errors += 1
            summary.problems.append(f"{attempt.reference}: QUERY: {_reply_problem(exc)}")
            return
        if reply.MaLoi != "00":
            summary.errors += 1
            summary.problems.append(
                f"{attempt.reference}: QUERY refused: MaLoi {reply.MaLoi} {reply.MoTaLoi}"
            )
            return
        if reply.TrangThaiGD == PAID:
            if reply.SoTien is not None and reply.SoTien != attempt.amount:
                summary.errors += 1
                summary.problems.append(
                    f"{attempt.reference}: QUERY says paid {reply.SoTien},"
                    f" asked {attempt.amount}: not applied"
                )
                return
            when = wire_to_local_iso(reply.ThoiGianGD or "")
            await asyncio.to_thread(
                self.ledger.apply_paid,
                attempt.reference,
                reply.MaGiaoDich or "",
                reply.MaNganHang or "",
                when,
            )
            summary.paid += 1
        elif reply.TrangThaiGD == FAILED:
            await asyncio.to_thread(self.ledger.mark_failed, attempt.reference)
            summary.failed += 1
        else:
            summary.pending += 1

    # ------------------------------------------------------------------ GET_BILL

    async def fetch_receipts(self, summary: PaymentSummary) -> None:
        for attempt in await asyncio.to_thread(self.ledger.without_receipt):
            request = GetBillRequest(
                MaDoiTac=self.payment.partner_code,
                MaThamChieu=attempt.reference,
                ThoiGianGD=format_wire_datetime(parse_local_iso(attempt.created)),
            ).signed(self.secret)
            try:
                response = await self._post(self.payment.bill_url, request.to_wire())
            except PaymentCallError as exc:
                summary.errors += 1
                summary.problems.append(f"{attempt.reference}: GET_BILL: {exc}")
                continue
            if not response.content.startswith(b"%PDF"):
                summary.errors += 1
                summary.problems.append(f"{attempt.reference}: GET_BILL answered {response.text[:200]!r}")
                continue
            path = await asyncio.to_thread(self._save, attempt.reference, response.content)
            await asyncio.to_thread(self.ledger.record_receipt, attempt.reference, str(path))
            summary.receipts += 1

    def _save(self, ref: str, pdf: bytes | bytearray) -> Path:
        """Owner-only (0600 in a 0700 folder): a receipt names the citizen and what they paid.
        A folder that exists keeps its mode (it may be the operator's, shared on purpose): each
        receipt is 0600 anyway, and a warning says others can list the folder."""
        self.receipts.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self._loose_said and self.receipts.stat().st_mode & 0o077:  # an older version's, or by hand
            self._loose_said = True
            log.warning("receipts folder %s can be listed by others; each receipt is 0600", self.receipts)
        safe = "".join(c if c.isalnum() or c in ".-_" else "_" for c in ref)
        path = self.receipts / f"{safe}.pdf"
        tmp = path.with_suffix(".pdf.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # a stale temp file keeps its old mode through O_CREAT
            with os.fdopen(fd, "wb") as handle:
                fd = -1
                handle.write(pdf)
        finally:
            if fd != -1:
                os.close(fd)
        tmp.replace(path)  # never a half-written receipt under its real name
        return path

    # ------------------------------------------------------------------ transport

    async def _post(self, url: str, body: dict[str, Any]) -> PlatformReply:
        """POST with a few retries of what certainly did not arrive (not connected, 429, 502-504).
        A lost answer is not retried here: the caller knows whether re-sending is safe. The reply
        is read under ``[portal] max_reply_bytes``: a longer one is refused unread."""
        delay = 0.2
        limit = self.config.max_reply_bytes
        for attempt in range(1, SEND_TRIES + 1):
            try:
                async with self.client.stream("POST", url, json=body) as streamed:
                    response = PlatformReply(streamed.status_code, await read_capped(streamed, limit))
            except ReplyTooLarge as exc:
                raise PaymentCallError(str(exc), sent=True) from None
            except httpx.HTTPError as exc:
                tls = tls_problem(exc)
                if tls:  # refused by the TLS layer: never processed, and retrying will not help
                    raise PaymentCallError(tls, sent=False) from None
                if not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
                    raise PaymentCallError(f"no answer: {describe(exc)}", sent=True) from None
                if attempt == SEND_TRIES:
                    raise PaymentCallError(f"not sent: {describe(exc)}", sent=False) from None
            else:
                if response.status_code in (429, 502, 503, 504) and attempt < SEND_TRIES:
                    pass
                elif response.status_code >= 400:
                    raise PaymentCallError(f"HTTP {response.status_code}", sent=response.status_code >= 500)
                else:
                    return response
            await asyncio.sleep(delay)
            delay *= 2
        raise PaymentCallError("no answer after retries", sent=True)


def _reply_problem(exc: Exception) -> str:
    """One line naming the field of a wrongly typed reply (a ``ValidationError`` is a ``ValueError``
    and is handled as an unreadable reply, never left to end the cycle)."""
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "(reply)"
        return f"{exc.title} reply does not match the contract at {where}: {first.get('msg')}"
    return str(exc)


__all__ = ["PaymentCallError", "PaymentJob", "PaymentSummary", "now_local_iso", "receipts_dir"]
