"""Office calendar of the sample province: time as integer seconds, working days, ISO text.

The generator handles millions of timestamps, so times are plain ``int`` seconds since ``BASE``
(local time, no zone: the one-stop database stores local ISO 8601 text) and are turned into text
through precomputed day and minute strings, several times faster than ``datetime`` arithmetic.
Due dates count working days (no weekends, no public holidays), as the law counts them.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import date, datetime, timedelta

BASE = datetime(2023, 12, 1)
END = datetime(2028, 1, 1)  # planned events may run past the snapshot; they are cut, not shown
DAY = 86_400
OFFICE_OPEN = 7 * 3600 + 30 * 60  # 07:30
OFFICE_CLOSE = 17 * 3600  # 17:00
OFFICE_SPAN = OFFICE_CLOSE - OFFICE_OPEN

# Public holidays (Tết and fixed days) on which offices are closed.
_HOLIDAY_RANGES = (
    ("2024-01-01", "2024-01-01"),
    ("2024-02-08", "2024-02-14"),
    ("2024-04-18", "2024-04-18"),
    ("2024-04-29", "2024-05-01"),
    ("2024-09-02", "2024-09-03"),
    ("2025-01-01", "2025-01-01"),
    ("2025-01-25", "2025-02-02"),
    ("2025-04-07", "2025-04-07"),
    ("2025-04-30", "2025-05-01"),
    ("2025-09-01", "2025-09-02"),
    ("2026-01-01", "2026-01-01"),
    ("2026-02-14", "2026-02-22"),
    ("2026-04-27", "2026-04-27"),
    ("2026-04-30", "2026-05-01"),
    ("2026-08-31", "2026-09-02"),
    ("2027-01-01", "2027-01-01"),
    ("2027-02-05", "2027-02-10"),
    ("2027-04-16", "2027-04-16"),
    ("2027-04-30", "2027-05-03"),
    ("2027-09-02", "2027-09-03"),
)


def _holidays() -> set[date]:
    days: set[date] = set()
    for first, last in _HOLIDAY_RANGES:
        day, end = date.fromisoformat(first), date.fromisoformat(last)
        while day <= end:
            days.add(day)
            day += timedelta(days=1)
    return days


HOLIDAYS = frozenset(_holidays())
N_DAYS = (END - BASE).days
DAY_TEXT = tuple((BASE + timedelta(days=d)).strftime("%Y-%m-%dT") for d in range(N_DAYS))
DAY_YYMMDD = tuple((BASE + timedelta(days=d)).strftime("%y%m%d") for d in range(N_DAYS))
_MINUTE_TEXT = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440))
_SECOND_TEXT = tuple(f"{s:02d}" for s in range(60))
IS_WORKDAY = tuple(
    (BASE + timedelta(days=d)).weekday() < 5 and (BASE + timedelta(days=d)).date() not in HOLIDAYS
    for d in range(N_DAYS)
)
WORKDAYS = tuple(d for d in range(N_DAYS) if IS_WORKDAY[d])  # day numbers of working days
# For every day, the index in WORKDAYS of the first working day on or after it.
_NEXT_WORKDAY = tuple(bisect_left(WORKDAYS, d) for d in range(N_DAYS))
LAST = N_DAYS * DAY - 1


def day_number(day: date) -> int:
    return (day - BASE.date()).days


def to_seconds(moment: datetime) -> int:
    return int((moment - BASE).total_seconds())


def iso(ts: int) -> str:
    """``2025-03-04T09:15:00``: local time, seconds precision, no offset."""
    day, sod = divmod(ts, DAY)
    minute, second = divmod(sod, 60)
    return DAY_TEXT[day] + _MINUTE_TEXT[minute] + _SECOND_TEXT[second]


def iso_date(ts: int) -> str:
    return DAY_TEXT[ts // DAY][:-1]


def yymmdd(ts: int) -> str:
    return DAY_YYMMDD[ts // DAY]


def workday_index(ts: int) -> int:
    """Index in WORKDAYS of the working day ``ts`` falls on, or of the next one."""
    return _NEXT_WORKDAY[min(ts // DAY, N_DAYS - 1)]


def in_office(ts: int, jitter: int = 0) -> int:
    """``ts`` if the office is open then, else ``jitter`` seconds after the next opening time
    (so that events pushed past closing time do not all land on 07:30:00 sharp)."""
    day, sod = divmod(ts, DAY)
    if day < N_DAYS and IS_WORKDAY[day] and OFFICE_OPEN <= sod < OFFICE_CLOSE:
        return ts
    index = _NEXT_WORKDAY[min(day, N_DAYS - 1)]
    if index < len(WORKDAYS) and WORKDAYS[index] == day and sod < OFFICE_OPEN:
        return day * DAY + OFFICE_OPEN + jitter
    if index < len(WORKDAYS) and WORKDAYS[index] == day:
        index += 1
    return office_time(index, jitter)


def office_time(index: int, offset: int) -> int:
    """``offset`` seconds after opening on working day ``index`` (clamped to the calendar)."""
    index = min(index, len(WORKDAYS) - 1)
    return WORKDAYS[index] * DAY + OFFICE_OPEN + offset


def add_workdays(ts: int, days: int) -> int:
    """The same office time ``days`` working days later (the legal way to count a deadline)."""
    start = in_office(ts)
    index = workday_index(start)
    return office_time(index + days, start % DAY - OFFICE_OPEN)
