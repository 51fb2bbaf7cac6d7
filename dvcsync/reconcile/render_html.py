"""The reconciliation report as one self-contained HTML file.

Provincial networks are often closed, and the file is mailed around: the page loads nothing from
anywhere (CSS, script and charts are inlined, the charts are SVG drawn here) and its Content
Security Policy forbids any load, so a mistake shows up as a console error rather than a silent
request. Rows are built here, not by script: the browser only hides, shows and reorders them, one
page of ``PAGE_SIZE`` at a time (Chromium took 17 s to lay out 20,000 wrapped rows shown at once,
and 10 s to show them again after a filter). Jinja2 autoescapes every value taken from the report.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from .categories import CATEGORIES, KEYS
from .report import AGE_BUCKETS, Item, Report, evidence_text

TOP_AGENCIES = 15
PAGE_SIZE = 200  # rows shown at a time
RESOLVED_SHOWN = 1_000  # the rest of the resolved list is in the JSON report

_PORTAL_CHECK = {
    "all": ("Đối chiếu toàn bộ với Cổng DVCQG", "Every dossier checked on the portal"),
    "none": ("Không đối chiếu với Cổng DVCQG", "Portal not checked"),
}

# Chart geometry, in SVG user units (the SVG scales to its box; text scales with it).
_CHART_W = 640
_SPAN = _CHART_W - 70  # the longest bar; its figure goes after it
_ROW_H = 38
_LABEL_CHARS = 80


@dataclass(frozen=True)
class Bar:
    key: str
    label_vi: str
    label_en: str
    value: int
    css: str  # colour class
    y: float = 0.0
    width: float = 0.0

    @property
    def label_y(self) -> float:
        return self.y + 13

    @property
    def bar_y(self) -> float:
        return self.y + 19


@dataclass(frozen=True)
class Chart:
    """A horizontal bar chart: label above each bar, the figure at the bar's end."""

    name: str  # data-chart, and the id prefix
    title_vi: str
    title_en: str
    bars: list[Bar]

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * _ROW_H + 4

    @property
    def width(self) -> int:
        return _CHART_W

    @property
    def span(self) -> int:
        return _SPAN

    @property
    def desc(self) -> str:
        return "; ".join(f"{b.label_vi}: {b.value}" for b in self.bars)


@dataclass(frozen=True)
class Row:
    category: str
    label_vi: str
    label_en: str
    ma_ho_so: str
    agency: str
    province: str
    state: str
    portal: str
    since_iso: str
    since: str
    age: int | None
    new: bool
    repair: str | None
    action_vi: str
    action_en: str


def write_html(report: Report, path: Path, *, max_rows: int = 20_000) -> None:
    """Write the report to ``path``; the table holds at most ``max_rows`` items (the page says so
    when it is cut: the XLSX and CSV hold every row)."""
    rows, total_rows = _rows(report, max_rows)
    css = _resource("report.css")
    script = _resource("report.js")
    context = _context(report, rows, total_rows)
    context.update(
        css=Markup(css),
        script=Markup(script),
        csp=(
            "default-src 'none'; "
            f"style-src '{_sha256(css)}'; script-src '{_sha256(script)}'; "
            "img-src data:; base-uri 'none'; form-action 'none'"
        ),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")  # a reader never sees half a report
    try:
        with partial.open("w", encoding="utf-8", newline="\n") as out:
            for chunk in _template().generate(**context):
                out.write(chunk)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------- building the rows


def _rows(report: Report, max_rows: int) -> tuple[list[Row], int]:
    """The first ``max_rows`` items as table rows, and how many items there are in all (the
    items are read once: they may be streamed from a database)."""
    now = report.generated_at
    new_keys = report.new_keys()
    first_report = report.previous is None
    rows: list[Row] = []
    total = 0
    for item in report.items():
        total += 1
        if len(rows) < max_rows:
            rows.append(_row(item, now, first_report or (item.category, item.ma_ho_so) in new_keys))
    return rows, total


def _row(item: Item, now: datetime, new: bool) -> Row:
    cat = CATEGORIES.get(item.category)
    days = _age_days(item, now)
    return Row(
        category=item.category,
        label_vi=cat.label_vi if cat else item.category,
        label_en=cat.label_en if cat else item.category,
        ma_ho_so=item.ma_ho_so or "",
        agency=item.agency,
        province=evidence_text(item.province),
        state=evidence_text(item.state),
        portal=evidence_text(item.portal),
        since_iso=item.since or "",
        since=_date(item.since),
        age=None if days is None else math.floor(days),
        new=new,
        repair=item.repair,
        action_vi=cat.action_vi if cat else "",
        action_en=cat.action_en if cat else "",
    )


def _age_days(item: Item, now: datetime) -> float | None:
    try:
        return item.age_days(now)
    except TypeError:  # one time has a UTC offset and the other not: both are the province's clock
        began = datetime.fromisoformat(str(item.since)).replace(tzinfo=None)
        return max(0.0, (now.replace(tzinfo=None) - began).total_seconds() / 86400)


# ---------------------------------------------------------------------------- the page's context


def _context(report: Report, rows: list[Row], total_rows: int) -> dict[str, Any]:
    period = report.period
    first_report = report.previous is None
    total = report.total
    new = total if first_report else len(report.new_since_last)
    check_vi, check_en = _portal_check(str(period.get("portal_check") or "all"))
    in_table = Counter(r.category for r in rows)
    pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
    return {
        "since": _date(period.get("since")),
        "until": _date(period.get("until")),
        "agency": period.get("agency") or "",
        "procedure": period.get("procedure") or "",
        "check_vi": check_vi,
        "check_en": check_en,
        "generated": _datetime(period.get("generated_at")),
        "timezone": period.get("timezone") or "",
        "previous": _datetime(report.previous) if report.previous else "",
        "figures": {
            "total": total,
            "new": new,
            "open": max(0, total - new),
            "resolved": None if first_report else len(report.resolved_since_last),
        },
        "charts": [_category_chart(report), _agency_chart(report), _age_chart(report)],
        "rows": rows,
        "total_rows": total_rows,
        "cut": total_rows > len(rows),
        "page_size": PAGE_SIZE,
        "page_info": f"Trang 1/{_num_vi(pages)} · dòng 1–{_num_vi(min(len(rows), PAGE_SIZE))}",
        "filter_categories": [
            (key, CATEGORIES[key].label_vi, CATEGORIES[key].label_en, in_table[key])
            for key in KEYS
            if in_table[key]
        ]
        + [(key, key, key, n) for key, n in sorted(in_table.items()) if key not in CATEGORIES],
        "filter_agencies": sorted({r.agency for r in rows if r.agency}, key=str.casefold),
        "categories": [(CATEGORIES[key], report.counts.get(key, 0)) for key in KEYS],
        "resolved": report.resolved_since_last[:RESOLVED_SHOWN],
        "resolved_more": max(0, len(report.resolved_since_last) - RESOLVED_SHOWN),
        "category_label": lambda key: CATEGORIES[key].label_vi if key in CATEGORIES else key or "",
        "category_label_en": lambda key: CATEGORIES[key].label_en if key in CATEGORIES else key or "",
        "num": _num_vi,
        "num_en": _num_en,
    }


def _category_chart(report: Report) -> Chart:
    bars = [
        Bar(key, c.label_vi, c.label_en, report.counts.get(key, 0), f"c-{c.side}")
        for key, c in CATEGORIES.items()
    ]
    return _laid_out(Chart("category", "Sai lệch theo loại", "Mismatches by category", bars))


def _agency_chart(report: Report) -> Chart:
    ranked = sorted(report.by_agency.items(), key=lambda kv: (-kv[1], kv[0]))
    bars = [Bar(name, name or "(không rõ)", name or "(unknown)", n, "c-agency") for name, n in ranked]
    if len(bars) > TOP_AGENCIES:
        rest = sum(n for _, n in ranked[TOP_AGENCIES:])
        bars = [*bars[:TOP_AGENCIES], Bar("", "khác", "other", rest, "c-other")]
    return _laid_out(Chart("agency", "Sai lệch theo cơ quan", "Mismatches by agency", bars))


def _age_chart(report: Report) -> Chart:
    bars = [
        Bar(str(n), vi, en, report.by_age[n] if n < len(report.by_age) else 0, f"c-age{n}")
        for n, (vi, en, _) in enumerate(AGE_BUCKETS)
    ]
    return _laid_out(Chart("age", "Sai lệch theo thời gian tồn tại", "Mismatches by age", bars))


def _laid_out(chart: Chart) -> Chart:
    """Bar positions and lengths; the longest bar leaves room for its figure."""
    top = max([b.value for b in chart.bars] + [1])
    bars = [
        Bar(
            b.key,
            _short(b.label_vi),
            _short(b.label_en),
            b.value,
            b.css,
            y=n * _ROW_H,
            width=round(_SPAN * b.value / top, 1),
        )
        for n, b in enumerate(chart.bars)
    ]
    return Chart(chart.name, chart.title_vi, chart.title_en, bars)


# ---------------------------------------------------------------------------- formats


def _date(value: Any) -> str:
    """dd/mm/yyyy, as the province writes dates; an unreadable value is shown as it is."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(str(value)).strftime("%d/%m/%Y")
    except ValueError:
        return str(value)


def _datetime(value: Any) -> str:
    if not value:
        return ""
    try:
        return datetime.fromisoformat(str(value)).strftime("%d/%m/%Y %H:%M")
    except ValueError:
        return str(value)


def _portal_check(mode: str) -> tuple[str, str]:
    if mode in _PORTAL_CHECK:
        return _PORTAL_CHECK[mode]
    if mode.startswith("sample:"):
        n = mode.split(":", 1)[1]
        return f"Kiểm tra mẫu {n} hồ sơ trên Cổng DVCQG", f"A sample of {n} dossiers checked on the portal"
    return mode, mode


def _num_vi(n: int) -> str:
    """20.000: Vietnamese groups thousands with dots."""
    return f"{n:,}".replace(",", ".")


def _num_en(n: int) -> str:
    return f"{n:,}"


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def _resource(name: str) -> str:
    return resources.files("dvcsync.reconcile").joinpath(name).read_text(encoding="utf-8")


def _template() -> jinja2.Template:
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.from_string(_resource("report.html"))


__all__ = ["write_html"]
