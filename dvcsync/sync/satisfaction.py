"""The satisfaction job: citizens' ratings of returned dossiers, aggregated per month, national
procedure and agency into the figures of ``DongBoDanhGia`` (national-portal.md §2.4), each sent once.

- **Which months**: the last complete months (12 by default), never the current one: its figures
  would change every day, and the portal's figures are monthly.
- **Figures**: ``TongSoNguoiDanhGia`` is the number of ratings, the three percentages are whole
  percents written as the contract writes them (``"40%"``), rounded by largest remainder so the
  three always add up to ``100%`` (naive rounding gives 99 % or 101 % for a third each).
- **Once**: the state remembers, per (month, procedure, agency), the hash of the figures the portal
  accepted. A re-run sends nothing; figures that differ (a rating added or changed later for a month
  already sent) are re-sent, and the portal replaces what it held under the same key.
- **What cannot be sent**: ratings of a procedure without a national code (or marked "no national
  equivalent"), or of an agency the code table cannot resolve for the month, are counted, not sent.

``run_satisfaction(settings, mappings)`` is one recorded cycle (run ``satisfaction``), for
``dvcsync sync satisfaction`` and the scheduler alike.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine

from dvcsync.catalogue.local import mapped_code
from dvcsync.config import Settings
from dvcsync.contract import VN_TZ, DanhGia
from dvcsync.mapping import CodeLookupError, MappingSet
from dvcsync.province.ratings import ratings_between
from dvcsync.province.schema import ProvinceSchema, load_schema
from dvcsync.state import StateStore
from dvcsync.state import satisfaction as state_sent

from .cycles import _recorded
from .runtime import Runtime

log = logging.getLogger(__name__)

SERVICE = "DongBoDanhGia"
DEFAULT_MONTHS = 12

# The contract's three levels, best first, as the province writes them (province.yaml's ratings.levels;
# these are the shipped defaults).
LEVELS: tuple[str, str, str] = ProvinceSchema().ratings.levels

Month = tuple[int, int]  # (year, month)
Counts = tuple[int, int, int]  # ratings per level, in LEVELS order


@dataclass(frozen=True)
class Rating:
    """One citizen's rating, as read: local codes, the level keyword and the ISO local time."""

    procedure: str
    agency: str
    level: str
    moment: str


@dataclass
class Tally:
    """Ratings counted per (month, national procedure, national agency), and what was left out."""

    counts: dict[tuple[Month, str, str], list[int]] = field(default_factory=dict)
    names: dict[tuple[str, str], str] = field(default_factory=dict)  # ("p"|"a", code) → name
    ratings: int = 0
    unknown_level: int = 0
    no_procedure: int = 0  # no national code (or "no national equivalent")
    no_agency: int = 0


@dataclass
class SatisfactionSummary:
    months: list[str] = field(default_factory=list)
    ratings: int = 0
    figures: int = 0
    sent: int = 0  # first sends
    resent: int = 0  # corrections, replacing what the portal held
    unchanged: int = 0
    failed: int = 0
    vanished: int = 0  # sent before, no rating left now: left on the portal (nothing to replace it with)
    skipped: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "months": self.months,
            "ratings": self.ratings,
            "figures": self.figures,
            "sent": self.sent,
            "resent": self.resent,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "vanished": self.vanished,
            "skipped": self.skipped,
            "calls": self.calls,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 3),
        }


# ---------------------------------------------------------------- pure parts


def complete_months(count: int = DEFAULT_MONTHS, today: date | None = None) -> list[Month]:
    """The ``count`` months before the current one (Vietnam time), oldest first."""
    if count < 1:
        raise ValueError(f"months must be >= 1, got {count}")
    today = today or datetime.now(VN_TZ).date()
    index = today.year * 12 + today.month - 1  # the current month: excluded
    return [(i // 12, i % 12 + 1) for i in range(index - count, index)]


def month_label(month: Month) -> str:
    """``NgayTongHop``: ``M-YYYY``, no leading zero."""
    return f"{month[1]}-{month[0]}"


def month_key(month: Month) -> str:
    """The state's month: ``YYYY-MM``, sortable."""
    return f"{month[0]:04d}-{month[1]:02d}"


def month_start(month: Month) -> date:
    return date(month[0], month[1], 1)


def next_month_start(month: Month) -> date:
    return date(month[0] + 1, 1, 1) if month[1] == 12 else date(month[0], month[1] + 1, 1)


def month_end(month: Month) -> date:
    """The month's last day: agencies are resolved as of then (after a merger, its successor)."""
    return date.fromordinal(next_month_start(month).toordinal() - 1)


def percentages(counts: Counts) -> tuple[str, str, str]:
    """Whole percents by largest remainder (ties to the better level), so they add up to 100%."""
    total = sum(counts)
    if total == 0:
        return ("0%", "0%", "0%")
    floors = [c * 100 // total for c in counts]
    remainders = [c * 100 % total for c in counts]
    for i in sorted(range(3), key=lambda k: (-remainders[k], k))[: 100 - sum(floors)]:
        floors[i] += 1
    return (f"{floors[0]}%", f"{floors[1]}%", f"{floors[2]}%")


def tally(
    ratings: Iterable[Rating],
    procedure_of: Callable[[str], tuple[str, str] | None],
    agency_of: Callable[[str, date], tuple[str, str] | None],
    levels: Sequence[str] = LEVELS,
) -> Tally:
    """Count ratings per month (of the rating), national procedure and national agency.

    ``procedure_of(local)`` and ``agency_of(local, as_of)`` give ``(national code, name)`` or None
    when the code cannot be sent; those ratings are counted apart, never guessed."""
    out = Tally()
    procedures: dict[str, tuple[str, str] | None] = {}
    agencies: dict[tuple[str, date], tuple[str, str] | None] = {}
    for rating in ratings:
        out.ratings += 1
        if rating.level not in levels:
            out.unknown_level += 1
            continue
        month = (int(rating.moment[0:4]), int(rating.moment[5:7]))
        if rating.procedure not in procedures:
            procedures[rating.procedure] = procedure_of(rating.procedure)
        procedure = procedures[rating.procedure]
        if procedure is None:
            out.no_procedure += 1
            continue
        as_of = month_end(month)
        if (rating.agency, as_of) not in agencies:
            agencies[(rating.agency, as_of)] = agency_of(rating.agency, as_of)
        agency = agencies[(rating.agency, as_of)]
        if agency is None:
            out.no_agency += 1
            continue
        out.names[("p", procedure[0])] = procedure[1]
        out.names[("a", agency[0])] = agency[1]
        out.counts.setdefault((month, procedure[0], agency[0]), [0, 0, 0])[levels.index(rating.level)] += 1
    return out


def figures_of(counted: Tally) -> dict[tuple[str, str, str], dict[str, str]]:
    """The wire items, keyed by (state month, MaThuTuc, Madonvi), validated against the contract."""
    out = {}
    for (month, procedure, agency), counts in sorted(counted.counts.items()):
        very, good, not_yet = percentages((counts[0], counts[1], counts[2]))
        item = DanhGia(
            NgayTongHop=month_label(month),
            TongSoNguoiDanhGia=str(sum(counts)),
            PhanTramDanhGiaRatHaiLong=very,
            PhanTramDanhGiaHaiLong=good,
            PhanTramDanhGiaChuaHaiLong=not_yet,
            MaThuTuc=procedure,
            NoiDung=counted.names.get(("p", procedure)) or None,
            Madonvi=agency,
            TenDonVi=counted.names.get(("a", agency)) or None,
        )
        out[(month_key(month), procedure, agency)] = item.model_dump(exclude_none=True)
    return out


def figures_hash(item: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(item, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


# ---------------------------------------------------------------- reading the province and the mapping


def read_ratings(
    engine: Engine, start: date, end: date, schema: ProvinceSchema | None = None
) -> list[Rating]:
    """Ratings made from ``start`` (included) to ``end`` (excluded), with their dossier's codes."""
    return [Rating(*row) for row in ratings_between(engine, start, end, schema)]


def procedure_resolver(mappings: MappingSet) -> Callable[[str], tuple[str, str] | None]:
    """Local procedure → (national code, national name), as the push maps it; None: not sent."""
    table = mappings.codes.get("procedures")

    def resolve(local: str) -> tuple[str, str] | None:
        code = mapped_code(mappings, local).code
        if code is None:
            return None
        name = ""
        if table is not None:
            try:
                value = table.lookup(local)
            except CodeLookupError:
                value = None
            if isinstance(value, dict):
                name = str(value.get("ten_tthc") or "")
        return code, name

    return resolve


def agency_resolver(
    mappings: MappingSet, table_name: str = "agencies"
) -> Callable[[str, date], tuple[str, str] | None]:
    """Local agency → (national code, name) as of a day: an agency abolished by then gives its
    successor (the figures belong to whoever answers for the procedure that month)."""
    table = mappings.codes.get(table_name)

    def resolve(local: str, as_of: date) -> tuple[str, str] | None:
        if table is None:
            return None
        try:
            value = table.lookup(local, as_of)
        except CodeLookupError:
            return None
        if isinstance(value, dict):
            code = value.get("ma")
            return (str(code), str(value.get("ten") or "")) if code else None
        return (str(value), "") if value else None

    return resolve


# ---------------------------------------------------------------- the state


def sent_hashes(store: StateStore, months: list[str]) -> dict[tuple[str, str, str], str]:
    return state_sent.sent_hashes(store, months)


def record_sent(store: StateStore, items: list[tuple[tuple[str, str, str], dict[str, str]]]) -> None:
    """Remember what the portal accepted, in one transaction (a crash before it: sent again, and
    the portal replaces it by the same figures)."""
    now = time.time()
    rows = [
        {
            "month": m,
            "procedure": p,
            "agency": a,
            "figures_hash": figures_hash(item),
            "figures": json.dumps(item, ensure_ascii=False, sort_keys=True),
            "sends": 1,
            "sent_at": now,
        }
        for (m, p, a), item in items
    ]
    state_sent.upsert_sent(store, rows)


# ---------------------------------------------------------------- the cycle


async def send_figures(rt: Runtime, months: list[Month]) -> SatisfactionSummary:
    """Aggregate the months and send the figures that are new or differ from what was sent."""
    started = time.perf_counter()
    summary = SatisfactionSummary(months=[month_label(m) for m in months])
    schema = load_schema(rt.mappings.folder)
    ratings = read_ratings(rt.source, month_start(months[0]), next_month_start(months[-1]), schema)
    counted = tally(
        ratings, procedure_resolver(rt.mappings), agency_resolver(rt.mappings), schema.ratings.levels
    )
    figures = figures_of(counted)
    summary.ratings, summary.figures = counted.ratings, len(figures)
    summary.skipped = {
        "unknown_level": counted.unknown_level,
        "no_national_procedure": counted.no_procedure,
        "no_national_agency": counted.no_agency,
    }
    known = sent_hashes(rt.store, [month_key(m) for m in months])
    summary.vanished = len(set(known) - set(figures))
    pending = []
    for key, item in figures.items():
        previous = known.get(key)
        if previous == figures_hash(item):
            summary.unchanged += 1
        else:
            pending.append((key, item, previous is not None))
    size = max(1, rt.settings.portal.batch_size)
    for start in range(0, len(pending), size):
        batch = pending[start : start + size]
        # Safe to repeat: the portal keys figures by month, procedure and agency and replaces them.
        reply = await rt.client.call(SERVICE, {"data": [item for _, item, _ in batch]}, idempotent=True)
        summary.calls += 1
        if not reply.ok:
            summary.failed += len(batch)
            summary.errors.append(f"{reply.error_code}: {reply.message}")
            log.warning("%s refused %d figures: %s %s", SERVICE, len(batch), reply.error_code, reply.message)
            continue
        record_sent(rt.store, [(key, item) for key, item, _ in batch])
        summary.resent += sum(1 for *_, again in batch if again)
        summary.sent += sum(1 for *_, again in batch if not again)
    summary.elapsed_s = time.perf_counter() - started
    return summary


async def run_satisfaction(
    settings: Settings, mappings: MappingSet, *, months: int | None = None, today: date | None = None
) -> SatisfactionSummary:
    """One satisfaction cycle over the last ``months`` complete months (12 by default), recorded as
    run ``satisfaction`` (status ``ok``, or ``errors`` when the portal refused figures): what
    ``dvcsync sync satisfaction`` and the scheduler's ``[schedule] satisfaction`` job call."""
    chosen = complete_months(months or DEFAULT_MONTHS, today)

    async def cycle(rt: Runtime) -> SatisfactionSummary:
        return await send_figures(rt, chosen)

    return await _recorded(
        "satisfaction", settings, mappings, cycle, lambda s: "ok" if s.failed == 0 else "errors"
    )
