"""The report document every format is rendered from.

Items are not held in memory: a first reconciliation after an outage may find hundreds of
thousands of stale dossiers. ``Report.items()`` streams them (from the run's working database, or
from a JSON file read back), and the renderers take them one at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from .categories import CATEGORIES, KEYS

JSON_NAME = "reconcile.json"
FORMAT_VERSION = 1


@dataclass
class Item:
    """One mismatch of one dossier (or one dossier's payments), with the evidence of each side.

    ``since`` is when the mismatch began as far as anyone can tell (the oldest of: the evidence's
    own time, when an earlier report first listed it), ISO 8601 in the province's local time."""

    category: str
    ma_ho_so: str | None
    province: dict[str, Any] | None = None
    state: dict[str, Any] | None = None
    portal: dict[str, Any] | None = None
    since: str | None = None
    repair: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "ma_ho_so": self.ma_ho_so,
            "province": self.province,
            "state": self.state,
            "portal": self.portal,
            "since": self.since,
            "repair": self.repair,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Item:
        return cls(
            category=str(data["category"]),
            ma_ho_so=data.get("ma_ho_so"),
            province=data.get("province"),
            state=data.get("state"),
            portal=data.get("portal"),
            since=data.get("since"),
            repair=data.get("repair"),
        )

    @property
    def agency(self) -> str:
        """The processing agency, for the charts and filters (province evidence, else state's)."""
        for side in (self.province, self.state, self.portal):
            if side and side.get("agency"):
                return str(side["agency"])
        return ""

    def age_days(self, now: datetime) -> float | None:
        if not self.since:
            return None
        try:
            began = datetime.fromisoformat(self.since)
        except ValueError:
            return None
        # both as the province's wall clock: an offset on one side only must not raise
        return max(0.0, (now.replace(tzinfo=None) - began.replace(tzinfo=None)).total_seconds() / 86400)


AGE_BUCKETS: tuple[tuple[str, str, float], ...] = (
    ("< 1 ngày", "< 1 day", 1),
    ("1–7 ngày", "1–7 days", 7),
    ("7–30 ngày", "7–30 days", 30),
    ("> 30 ngày", "> 30 days", float("inf")),
)


def age_bucket(days: float | None) -> int:
    """Index into ``AGE_BUCKETS`` (an unknown age counts as the youngest)."""
    if days is None:
        return 0
    for n, (_, _, upper) in enumerate(AGE_BUCKETS):
        if days < upper:
            return n
    return len(AGE_BUCKETS) - 1


@dataclass
class Report:
    """A finished comparison. ``period`` says what was compared (dates, filters, portal check,
    generated_at); ``counts`` has every category key, zeros included."""

    period: dict[str, Any]
    counts: dict[str, int]
    items: Callable[[], Iterator[Item]]
    resolved_since_last: list[dict[str, str | None]] = field(default_factory=list)
    new_since_last: list[dict[str, str | None]] = field(default_factory=list)
    by_agency: dict[str, int] = field(default_factory=dict)
    by_age: list[int] = field(default_factory=lambda: [0] * len(AGE_BUCKETS))
    previous: str | None = None  # the report compared with (its generated_at), None for a first one

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def generated_at(self) -> datetime:
        return datetime.fromisoformat(str(self.period["generated_at"]))

    def new_keys(self) -> set[tuple[str, str | None]]:
        return {(d["category"] or "", d["ma_ho_so"]) for d in self.new_since_last}

    # ------------------------------------------------------------------ JSON

    def write_json(self, out: IO[str]) -> None:
        """The document of the issue: period, counts, items, resolved_since_last (plus the
        comparison's extras), streamed item by item."""
        head = {
            "format": FORMAT_VERSION,
            "period": self.period,
            "counts": self.counts,
            "total": self.total,
            "by_agency": self.by_agency,
            "by_age": dict(zip([b[1] for b in AGE_BUCKETS], self.by_age, strict=True)),
            "previous": self.previous,
            "resolved_since_last": self.resolved_since_last,
            "new_since_last": self.new_since_last,
        }
        text = json.dumps(head, ensure_ascii=False, indent=1)
        out.write(text[:-2] + ',\n "items": [')
        first = True
        for item in self.items():
            out.write("\n  " if first else ",\n  ")
            out.write(json.dumps(item.as_dict(), ensure_ascii=False, sort_keys=False))
            first = False
        out.write("\n ]\n}\n")

    @classmethod
    def read_json(cls, path: Path) -> Report:
        """A report written earlier (the previous one, or one to repair from)."""
        data = json.loads(path.read_text(encoding="utf-8"))
        items = [Item.from_dict(d) for d in data.get("items", [])]
        counts = {key: int(data.get("counts", {}).get(key, 0)) for key in KEYS}
        by_age_raw = data.get("by_age") or {}
        return cls(
            period=dict(data.get("period") or {}),
            counts=counts,
            items=lambda: iter(items),
            resolved_since_last=list(data.get("resolved_since_last") or []),
            new_since_last=list(data.get("new_since_last") or []),
            by_agency=dict(data.get("by_agency") or {}),
            by_age=[int(by_age_raw.get(b[1], 0)) for b in AGE_BUCKETS],
            previous=data.get("previous"),
        )


def evidence_text(side: dict[str, Any] | None) -> str:
    """One side's evidence as one line for tables (``key: value; ...``)."""
    if not side:
        return ""
    parts = []
    for key, value in side.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


def category_label(key: str) -> str:
    return CATEGORIES[key].label_vi if key in CATEGORIES else key


def iter_sorted(items: Iterable[Item]) -> Iterator[Item]:
    """Items as the report lists them: by category order, then dossier code."""
    order = {key: n for n, key in enumerate(KEYS)}
    yield from sorted(items, key=lambda i: (order.get(i.category, 99), i.ma_ho_so or ""))


__all__ = [
    "AGE_BUCKETS",
    "JSON_NAME",
    "Item",
    "Report",
    "age_bucket",
    "category_label",
    "evidence_text",
    "iter_sorted",
]
