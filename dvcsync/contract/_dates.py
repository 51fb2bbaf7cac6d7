"""Wire date-times: ``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh, ``""`` when absent.

The portal and the payment platform both speak local time without an offset, so every conversion
goes through one zone object here; naive datetimes are taken to be local already.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dvcsync.errors import TerminalError

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
WIRE_FORMAT = "%Y%m%d%H%M%S"
_DIGITS = frozenset("0123456789")


class WireDateError(TerminalError, ValueError):
    """A wire date that is malformed or names an impossible moment (e.g. 31 February)."""


def parse_wire_datetime(value: str) -> datetime | None:
    """``"20191209093015"`` → aware datetime in Asia/Ho_Chi_Minh; ``""`` → None."""
    if value == "":
        return None
    if len(value) != 14 or not _DIGITS.issuperset(value):
        raise WireDateError(f"expected yyyyMMddHHmmss (14 digits), got {value!r}")
    try:  # slicing, not strptime: this runs for every date of every record
        return datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12]),
            int(value[12:14]),
            tzinfo=VN_TZ,
        )
    except ValueError as exc:  # e.g. month 13, 30 February, hour 24
        raise WireDateError(f"impossible date {value!r}: {exc}") from None


def format_wire_datetime(value: datetime | None) -> str:
    """Aware or naive-local datetime → ``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh; None → ``""``."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(VN_TZ)
    v = value
    return f"{v.year:04d}{v.month:02d}{v.day:02d}{v.hour:02d}{v.minute:02d}{v.second:02d}"


def validate_wire_datetime(value: str) -> str:
    """Check a wire date string and give it back unchanged (canonical form is the input)."""
    parse_wire_datetime(value)
    return value


def now_wire() -> str:
    return format_wire_datetime(datetime.now(UTC))


def parse_local_iso(value: str) -> datetime:
    """ISO 8601 text as stored by one-stop systems (usually naive local time) → aware datetime."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError as exc:
        raise WireDateError(f"not an ISO 8601 date-time: {value!r}") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=VN_TZ)
