"""The payment ledger as the sync jobs import it: the province side lives in
``dvcsync.province.payments`` (the only code that touches the province's payment tables); the
wire-time helper is the jobs' own."""

from __future__ import annotations

from dvcsync.contract import parse_wire_datetime
from dvcsync.province.payments import (
    CREATED,
    FAILED,
    PAID,
    Attempt,
    Due,
    PaymentLedger,
    now_local_iso,
    stage_of,
)


def wire_to_local_iso(value: str) -> str | None:
    """``yyyyMMddHHmmss`` → the province's ISO local form; None when empty or malformed."""
    try:
        parsed = parse_wire_datetime(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=None).isoformat() if parsed is not None else None


__all__ = [
    "CREATED",
    "FAILED",
    "PAID",
    "Attempt",
    "Due",
    "PaymentLedger",
    "now_local_iso",
    "stage_of",
    "wire_to_local_iso",
]
