"""What the payment platform calls on the province: the result callback and the bill look-up.

Plain synchronous functions over the ledger and the inbox (the server runs them off the event loop),
so they are testable without HTTP and the server stays a thin shell. The callback scheme has no
nonce and no time window, so safety rests here: constant-time signature check, partner code,
amount against the attempt, and a paid result applied at most once per ``MaThamChieu``.

A refused callback is counted, not stored: one ``inbound_refusal`` row per caller and reason
(``dvcsync.state.refusals``), and its log line is rate-limited, so a flood of distinct forged
callbacks grows neither the state nor the log.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from dvcsync.config import PaymentSettings
from dvcsync.contract import (
    VN_TZ,
    BienLai,
    BillLookupReply,
    BillLookupRequest,
    CallbackReply,
    PaymentCallback,
    UntrustedInput,
    check_strings,
    escape_for_log,
    format_wire_datetime,
    now_wire,
    parse_json,
)
from dvcsync.errors import TerminalError
from dvcsync.mapping import CompiledMapping
from dvcsync.province.source import SqlSource
from dvcsync.state import Inbox
from dvcsync.state.refusals import Refusals, caller_key, sample_of

from .payment_ledger import PAID, PaymentLedger, wire_to_local_iso

log = logging.getLogger(__name__)

KIND = "payment_result"
ACCEPTED = "00"
REFUSED = "99"
# Why a callback was refused, as counted in ``inbound_refusal`` (the reply says it in full).
MALFORMED, BAD_SIGNATURE, WRONG_PARTNER = "malformed", "bad_signature", "wrong_partner"
UNKNOWN_REFERENCE, WRONG_AMOUNT = "unknown_reference", "wrong_amount"
_LOG_BURST, _LOG_WINDOW_S = 20, 10.0


class BillError(TerminalError, ValueError):
    """The dossier's bill cannot be built from the mapping (the message names record and field)."""


def build_bill(mapping: CompiledMapping, source: SqlSource, dossier_key: str) -> BienLai | None:
    """The ``payment_receipt`` mapping applied to the dossier with its fees; None when unknown."""
    record = source.get(dossier_key)
    if record is None:
        return None
    result = mapping.map(record)
    if not result.ok:
        raise BillError("; ".join(str(e) for e in result.errors))
    value = result.value
    return value if isinstance(value, BienLai) else BienLai.model_validate(value)


def handle_callback(
    raw: bytes,
    payment: PaymentSettings,
    ledger: PaymentLedger,
    inbox: Inbox,
    max_depth: int = 32,
    caller: str | None = None,
) -> dict[str, Any]:
    """Check and apply one result callback; the reply body (always a ``CallbackReply``).
    ``caller`` (the address the access guard admitted) is what refusals are counted by."""
    refuse = _Refuser(inbox, raw, caller)
    try:
        body = parse_json(raw, max_depth=max_depth)
    except UntrustedInput as exc:
        return refuse(None, MALFORMED, f"nội dung không hợp lệ: {exc}")
    if not isinstance(body, dict):
        return refuse(body, MALFORMED, "nội dung phải là một đối tượng JSON")
    try:
        check_strings(body)
        callback = PaymentCallback.model_validate(body)
    except UntrustedInput as exc:
        return refuse(body, MALFORMED, f"thông báo kết quả không hợp lệ: {exc}")
    except ValidationError as exc:
        fields = ", ".join(sorted({".".join(str(p) for p in e["loc"]) or "?" for e in exc.errors()}))
        return refuse(body, MALFORMED, f"thông báo kết quả không hợp lệ (trường: {fields})")

    secret = payment.secret.get_secret_value()
    if not callback.has_valid_signature(secret):
        return refuse(body, BAD_SIGNATURE, "sai mã xác thực (MaXacThuc)", callback)
    if callback.MaDoiTac != payment.partner_code:
        return refuse(body, WRONG_PARTNER, f"MaDoiTac {callback.MaDoiTac!r} không phải của tỉnh", callback)
    attempt = ledger.attempt(callback.MaThamChieu)
    if attempt is None:
        return refuse(
            body, UNKNOWN_REFERENCE, f"không có giao dịch MaThamChieu {callback.MaThamChieu}", callback
        )
    if callback.SoTien != attempt.amount:
        return refuse(
            body,
            WRONG_AMOUNT,
            f"SoTien {callback.SoTien} khác số tiền yêu cầu {attempt.amount}"
            f" (MaThamChieu {attempt.reference})",
            callback,
        )

    item = inbox.receive(KIND, callback.MaThamChieu, body)
    when = wire_to_local_iso(callback.ThoiGianGD)
    if callback.paid:
        applied = ledger.apply_paid(callback.MaThamChieu, callback.MaGiaoDich, callback.MaNganHang, when)
        inbox.mark(item.id, "applied", local_key=attempt.dossier_key)
        log.info("payment %s paid (%s)", callback.MaThamChieu, "applied" if applied else "already applied")
        return _reply(ACCEPTED, "Đã ghi nhận thanh toán" if applied else "Đã ghi nhận trước đó", callback)
    changed = ledger.mark_failed(callback.MaThamChieu, when)
    inbox.mark(item.id, "applied", local_key=attempt.dossier_key)
    current = ledger.attempt(callback.MaThamChieu)
    if not changed and current is not None and current.state == PAID:
        # The platform owns the result, but a paid attempt is never unpaid silently: the reconciler decides.
        inbox.store.record_conflict(
            attempt.dossier_key,
            f"{ledger.schema.payments.table}[{callback.MaThamChieu}].{ledger.schema.payments.state}",
            "paid",
            f"failed (MaLoi {callback.MaLoi})",
            "the platform reported a failure for an attempt the province holds as paid; not applied",
        )
    log.info(
        "payment %s failed on the platform (MaLoi %s, %s)",
        callback.MaThamChieu,
        callback.MaLoi,
        "recorded" if changed else "no change",
    )
    return _reply(ACCEPTED, "Đã ghi nhận giao dịch không thành công", callback)


class _Refuser:
    """Counts a refused callback in ``inbound_refusal`` (never in the inbox, so it never shadows
    the genuine one and a flood of distinct ones adds no rows), logs it within the rate limit and
    answers 99."""

    def __init__(self, inbox: Inbox, raw: bytes, caller: str | None) -> None:
        self.inbox, self.raw, self.caller = inbox, raw, caller_key(caller)

    def __call__(
        self, body: Any, reason: str, message: str, callback: PaymentCallback | None = None
    ) -> dict[str, Any]:
        now = time.time()
        count = Refusals(self.inbox.store).record(
            KIND, self.caller, reason, message, sample_of(self.raw, body, now), now=now
        )
        ref = body.get("MaThamChieu") if isinstance(body, dict) else None
        ref_text = escape_for_log(ref if isinstance(ref, str) else "?", limit=64)
        _log_limited(
            count == 1,
            "payment callback refused for %s from %s (%s, %d so far): %s",
            ref_text,
            self.caller,
            reason,
            count,
            escape_for_log(message, limit=300),
        )
        return _reply(REFUSED, message, callback, body if isinstance(body, dict) else None)


_log_lock = threading.Lock()
_log_window = [0.0, 0, 0]  # window start, lines in it, lines suppressed


def _log_limited(first: bool, message: str, *args: object) -> None:
    """One warning, at most ``_LOG_BURST`` per ``_LOG_WINDOW_S`` in the process (the first refusal
    of a caller and reason always): a flood of refused callbacks must not flood the log."""
    with _log_lock:
        now = time.monotonic()
        if now - _log_window[0] > _LOG_WINDOW_S:
            _log_window[0], _log_window[1] = now, 0
        if _log_window[1] >= _LOG_BURST and not first:
            _log_window[2] += 1
            return
        _log_window[1] += 1
        more, _log_window[2] = int(_log_window[2]), 0
    log.warning(message + (f" ({more} more refusals not logged)" if more else ""), *args)


def _reply(
    code: str, reason: str, callback: PaymentCallback | None, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    source: dict[str, Any] = body or {}
    mac = callback.MaXacThuc if callback is not None else source.get("MaXacThuc")
    return CallbackReply(
        MaLoi=code,
        MoTaLoi=reason,
        MaDoiTac=callback.MaDoiTac if callback is not None else _text(source.get("MaDoiTac")),
        MaThamChieu=callback.MaThamChieu if callback is not None else _text(source.get("MaThamChieu")),
        ThoiGianGD=now_wire(),
        MaXacThuc=mac if isinstance(mac, str) else None,
    ).to_wire()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def handle_bill_lookup(
    raw: bytes,
    ledger: PaymentLedger,
    mapping: CompiledMapping,
    source: SqlSource,
    max_depth: int = 32,
    after: CompiledMapping | None = None,
) -> dict[str, Any]:
    """1 with the bill of what is owed now (up front first, then after processing with the
    ``after`` mapping), 0 nothing to pay, -1 unknown dossier."""
    try:
        body = parse_json(raw, max_depth=max_depth)
        check_strings(body)
        request = BillLookupRequest.model_validate(body)
    except (UntrustedInput, ValidationError):
        return BillLookupReply(error_code=-1, message=[]).to_wire()
    owed = ledger.owed(request.MaHoSo)
    if owed is None:
        return BillLookupReply(error_code=-1, message=[]).to_wire()
    stage, amount = owed
    chosen = mapping if stage == ledger.ahead else after
    if amount <= 0 or chosen is None:
        return BillLookupReply(error_code=0, message=[]).to_wire()
    bill = build_bill(chosen, source, request.MaHoSo)
    if bill is None:  # deleted between the two reads
        return BillLookupReply(error_code=-1, message=[]).to_wire()
    stamp = format_wire_datetime(datetime.now(VN_TZ))
    bill = bill.model_copy(update={"MaTraCuuTT": f"{request.MaHoSo}{stamp}"})
    return BillLookupReply(error_code=1, message=bill).to_wire()
