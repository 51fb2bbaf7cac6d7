"""Source timestamps as instants: the change cursor, its look-back, ``until`` and every watermark
are compared as moments, never as text.

A one-stop system's change column (``updated_at``) is either a date-time type (PostgreSQL
``timestamp``/``timestamptz``, MariaDB ``DATETIME``: the driver returns datetimes) or text in any
ISO 8601 form: ``T`` or a space between date and time, with or without seconds and fraction,
with or without ``Z`` or an offset. Naive values are wall-clock times in the source's zone
(``[province] timezone``, default Asia/Ho_Chi_Minh). Comparing two such texts as strings is wrong
(``"2026-12-07 21:27:04" < "2026-12-07T21:22:04"``), which lost late commits in the look-back.

How a bound reaches the source's SQL (``SqlSource.iter_changed`` chooses per call):

- a date-time column gets a datetime of the kind it returns (``column_value``: naive in the
  source's zone, or aware); the database compares exactly;
- a text column whose values in the window are all naive with one separator gets the bound as
  the shortest text of the instant in that separator (``naive_text``). Such texts sort in time
  order, and the shortest text of an instant is a prefix of every other text of it, so a keyset
  over ``(updated_at, id)`` still runs on the index (no function on the column) and is a superset
  of the rows wanted; an exact filter on parsed instants drops the few extra rows at its edges;
- any other text column (``T`` and space mixed, offsets, ``Z``) has its window's ``(updated_at,
  id)`` pairs listed through the index (a text range a few days wider than the window,
  ``day_text``), parsed, sorted by instant, and its rows read by id: correct for any mix of
  forms, for the cost of one list of the window per cycle.

Text bounds rely on the ISO digits sorting like time, which holds under byte order and under the
usual locale collations (they compare the digits first). In a zone with clock changes a naive
value of the repeated hour is ambiguous; it is read as its first occurrence.

The cursor is stored as ``cursor_text`` (ISO 8601 with the offset, so it names one instant
whatever the zone setting later says); ``read_cursor`` also accepts the forms stored before
(the source's own text, naive).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dvcsync.errors import TerminalError

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


class InstantError(TerminalError, ValueError):
    """A value that is not a date-time; the message shows it."""


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; a clear error for an unknown one."""
    try:
        if not name or name != name.strip():
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}: expected an IANA name such as {DEFAULT_TIMEZONE!r}"
        ) from None


def parse_instant(value: object, tz: tzinfo) -> datetime:
    """A datetime, a date or ISO 8601 text → an aware datetime; naive values are in ``tz``."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InstantError(f"not an ISO 8601 date-time: {value!r}") from None
    else:
        raise InstantError(f"not a date-time: {type(value).__name__} {value!r}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def cursor_text(moment: datetime, tz: tzinfo) -> str:
    """The canonical stored form: local time in ``tz`` with its offset, fraction only when there
    is one (``2026-12-07T21:27:04+07:00``)."""
    local = moment.astimezone(tz)
    return local.isoformat(timespec="microseconds" if local.microsecond else "seconds")


def read_cursor(stored: str, tz: tzinfo) -> datetime | None:
    """A stored watermark (canonical or an older form) → its instant; ``""`` → None (no cursor)."""
    if not stored:
        return None
    return parse_instant(stored, tz)


def earlier(moment: datetime, seconds: float) -> datetime:
    """``seconds`` before ``moment`` in elapsed time (across a zone's clock changes too)."""
    return (moment.astimezone(UTC) - timedelta(seconds=seconds)).astimezone(moment.tzinfo)


def column_value(moment: datetime, tz: tzinfo, *, aware: bool) -> datetime:
    """The bind value for a date-time column: aware as it is, or naive wall-clock time in ``tz``."""
    return moment if aware else moment.astimezone(tz).replace(tzinfo=None)


def naive_text(moment: datetime, tz: tzinfo, separator: str) -> str:
    """The shortest naive ISO text of ``moment`` in ``tz``: seconds only when not zero (or when
    there is a fraction), the fraction without trailing zeros. It is a prefix of every other naive
    text of the same instant with that separator, and sorts before the text of any later one."""
    t = moment.astimezone(tz)
    out = f"{t.year:04d}-{t.month:02d}-{t.day:02d}{separator}{t.hour:02d}:{t.minute:02d}"
    if t.second or t.microsecond:
        out += f":{t.second:02d}"
    if t.microsecond:
        out += "." + f"{t.microsecond:06d}".rstrip("0")
    return out


def day_text(moment: datetime, tz: tzinfo, days: int) -> str:
    """``YYYY-MM-DD`` of ``moment``'s local date in ``tz`` moved by ``days``: a text bound that
    holds for any ISO form of a nearby instant (offsets move a local date by less than two days)."""
    return (moment.astimezone(tz).date() + timedelta(days=days)).isoformat()


def later(a: object, b: object, tz: tzinfo) -> bool:
    """``a`` is a later instant than ``b``. An empty ``b`` is the beginning of time; an empty or
    unreadable ``a`` is never later; an unreadable ``b`` falls back to comparing text (as before)."""
    if a in (None, ""):
        return False
    try:
        first = parse_instant(a, tz)
    except InstantError:
        return False
    if b in (None, ""):
        return True
    try:
        return first > parse_instant(b, tz)
    except InstantError:
        return str(a) > str(b)


__all__ = [
    "DEFAULT_TIMEZONE",
    "InstantError",
    "column_value",
    "cursor_text",
    "day_text",
    "earlier",
    "later",
    "naive_text",
    "parse_instant",
    "read_cursor",
    "zone",
]
