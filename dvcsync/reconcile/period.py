"""What a report covers: dates in the province's local time, and optional filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from dvcsync.contract import VN_TZ


def local_now() -> datetime:
    """The province's wall clock, naive (the sample schema stores local times without a zone)."""
    return datetime.now(VN_TZ).replace(tzinfo=None, microsecond=0)


def local_iso(epoch: float | None) -> str | None:
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, VN_TZ).replace(tzinfo=None, microsecond=0).isoformat()


def older_than(now: datetime, moment: str, seconds: float, *, unknown: bool) -> bool:
    """An ISO local time lies more than ``seconds`` before ``now``; ``unknown`` for an unreadable one."""
    try:
        began = datetime.fromisoformat(moment)
    except ValueError:
        return unknown
    return (now - began.replace(tzinfo=None)).total_seconds() > seconds


def parse_day(value: str, option: str) -> date:
    """``YYYY-MM-DD`` or ``dd/mm/yyyy`` (how reconcilers write dates)."""
    text = value.strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ValueError(f"{option} {value!r}: expected a date as YYYY-MM-DD or dd/mm/yyyy")


@dataclass(frozen=True)
class Period:
    since: date
    until: date
    agency: str | None = None
    procedure: str | None = None

    def __post_init__(self) -> None:
        if self.until < self.since:
            raise ValueError(f"--until {self.until} is before --since {self.since}")

    @classmethod
    def last_days(cls, days: int, today: date | None = None, **filters: Any) -> Period:
        end = today or local_now().date()
        return cls(end - timedelta(days=days - 1), end, **filters)

    def contains(self, moment: str | None) -> bool:
        """An ISO local time (or date) falls on one of the period's days."""
        if not moment:
            return False
        day = str(moment)[:10]
        return self.since.isoformat() <= day <= self.until.isoformat()

    def days(self) -> list[date]:
        return [self.since + timedelta(days=n) for n in range((self.until - self.since).days + 1)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "agency": self.agency,
            "procedure": self.procedure,
        }


__all__ = ["Period", "local_iso", "local_now", "older_than", "parse_day"]
