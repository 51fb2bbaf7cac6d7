"""The HTML report as a file: one self-contained page, nothing loaded from anywhere, every value
from the report escaped, figures and charts that agree with the report. (What a browser does with
it is tests/integration/reconcile/test_html_chromium.py.)"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from dvcsync.reconcile.categories import CATEGORIES, KEYS
from dvcsync.reconcile.render_html import PAGE_SIZE, write_html
from dvcsync.reconcile.report import AGE_BUCKETS, Item, Report, evidence_text

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "reconcile" / "sample-report.json"
EVIL = "<script>alert('x')</script>"


class Page(HTMLParser):
    """Every start tag with its attributes, and the text of <script> and <style> elements."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self._in: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag in self.raw:
            self._in = tag
            self.raw[tag].append("")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.raw[self._in][-1] += data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        want = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in want.items())]

    def bars(self, chart: str) -> list[dict[str, str]]:
        """The bars of one chart, in order (the SVG's rects with class "bar ...")."""
        out: list[dict[str, str]] = []
        inside = False
        for tag, a in self.tags:
            if tag == "svg":
                inside = a.get("data-chart") == chart
            elif inside and tag == "rect" and "bar" in a.get("class", "").split():
                out.append(a)
        return out

    def rows(self) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == "tr" and "data-cat" in a]


def _sample() -> Report:
    return Report.read_json(FIXTURE)


def _with_items(base: Report, items: list[Item], **changes: Any) -> Report:
    return dataclasses.replace(base, **{"items": lambda: iter(items), **changes})


def _render(tmp_path: Path, report: Report, **kwargs: int) -> str:
    path = tmp_path / "report.html"
    write_html(report, path, **kwargs)
    return path.read_text(encoding="utf-8")


def test_one_file_that_loads_nothing(tmp_path: Path) -> None:
    text = _render(tmp_path, _sample())
    page = Page(text)

    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert text.startswith("<!DOCTYPE html>")
    outside = ("http://", "https://", "//cdn", "<link", "<script src", "<iframe", "<img", "@import", "url(")
    for needle in outside:
        assert needle not in text.lower(), needle
    for _, attrs in page.tags:
        for name in ("src", "href", "action", "srcset", "data", "poster", "xlink:href"):
            assert name not in attrs or attrs[name].startswith("#"), (name, attrs)
    assert len(page.raw["script"]) == 1 and len(page.raw["style"]) == 1


def test_content_security_policy_allows_only_the_inlined_style_and_script(tmp_path: Path) -> None:
    """The browser refuses any load, and any script but ours: an escaping mistake could not run."""
    page = Page(_render(tmp_path, _sample()))
    (meta,) = page.find("meta", http_equiv="Content-Security-Policy")
    policy = meta["content"]

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert "default-src 'none'" in policy
    assert f"script-src {digest(page.raw['script'][0])}" in policy
    assert f"style-src {digest(page.raw['style'][0])}" in policy
    assert "unsafe" not in policy


def test_header_shows_the_period_filters_and_comparison(tmp_path: Path) -> None:
    report = _sample()
    report.period.update(agency="000.00.20.H40 Sở Tư pháp", procedure="1.001193", portal_check="sample:50")
    text = _render(tmp_path, report)

    assert '<h1 data-en="Reconciliation report">Báo cáo đối soát</h1>' in text
    assert "01/11/2026 – 30/11/2026" in text
    assert 'id="meta-agency">000.00.20.H40 Sở Tư pháp<' in text
    assert 'id="meta-procedure">1.001193<' in text
    assert "Kiểm tra mẫu 50 hồ sơ trên Cổng DVCQG" in text
    assert "30/11/2026 07:00" in text  # generated
    assert 'id="meta-previous">29/11/2026 07:00<' in text
    assert "2026-11-30T07:00" not in text.split("<tbody>")[0]  # no ISO dates in the header


def test_summary_figures(tmp_path: Path) -> None:
    report = _sample()
    page = Page(_render(tmp_path, report))
    figures = {a["data-figure"]: a["data-value"] for a in page.find("div") if "data-figure" in a}
    assert figures == {
        "total": str(report.total),
        "new": str(len(report.new_since_last)),
        "open": str(report.total - len(report.new_since_last)),
        "resolved": str(len(report.resolved_since_last)),
    }
    assert figures["total"] == "28"


def test_charts_are_svg_with_a_bar_per_figure(tmp_path: Path) -> None:
    report = _sample()
    page = Page(_render(tmp_path, report))

    for name in ("category", "agency", "age"):
        (svg,) = page.find("svg", data_chart=name)
        assert svg["role"] == "img" and svg["aria-labelledby"].startswith(f"chart-{name}-title")
        assert page.find("title", id=f"chart-{name}-title")
    category = page.bars("category")
    assert [b["data-key"] for b in category] == list(KEYS)
    assert [int(b["data-value"]) for b in category] == [report.counts[k] for k in KEYS]
    assert [b["data-label"] for b in category] == [CATEGORIES[k].label_vi for k in KEYS]
    agency = page.bars("agency")
    assert {b["data-label"]: int(b["data-value"]) for b in agency} == report.by_agency
    assert [int(b["data-value"]) for b in agency] == sorted(report.by_agency.values(), reverse=True)
    age = page.bars("age")
    assert [b["data-label"] for b in age] == [b[0] for b in AGE_BUCKETS]
    assert [int(b["data-value"]) for b in age] == report.by_age
    # bar length in proportion to the figure
    widths = {int(b["data-value"]): float(b["width"]) for b in age}
    assert widths[12] > widths[9] > widths[5] > widths[2] > 0
    assert widths[9] / widths[12] == pytest.approx(9 / 12, rel=0.01)


def test_agency_chart_keeps_the_top_15_and_sums_the_rest(tmp_path: Path) -> None:
    by_agency = {f"Cơ quan {n:02d}": 100 - n for n in range(20)}
    page = Page(_render(tmp_path, _with_items(_sample(), [], by_agency=by_agency)))
    bars = page.bars("agency")
    assert len(bars) == 16
    assert [b["data-label"] for b in bars[:15]] == [f"Cơ quan {n:02d}" for n in range(15)]
    assert bars[15]["data-label"] == "khác"
    assert int(bars[15]["data-value"]) == sum(100 - n for n in range(15, 20))


def test_table_rows(tmp_path: Path) -> None:
    report = _sample()
    items = list(report.items())
    text = _render(tmp_path, report)
    page = Page(text)
    rows = page.rows()

    assert [r["data-cat"] for r in rows] == [i.category for i in items]
    statuses = [r["data-status"] for r in rows]
    assert statuses.count("new") == 1 and statuses[0] == "new"  # the sample's one new item
    first = items[0]
    assert f'<td class="code">{first.ma_ho_so}</td>' in text
    assert f'<td class="ev">{evidence_text(first.province)}</td>' in text
    assert '<td data-sort="2026-09-01T08:30:00">01/09/2026</td>' in text
    assert '<td class="num" data-sort="89">89</td>' in text  # 01/09 08:30 to 30/11 07:00
    assert f"<code>{first.repair}</code>" in text
    no_repair = next(i for i in items if not i.repair)
    assert CATEGORIES[no_repair.category].action_vi in text
    for header in ("Loại sai lệch", "Mã hồ sơ", "Cơ quan", "Một cửa", "dvcsync", "Cổng DVCQG", "Từ ngày"):
        assert f">{header}</button></th>" in text
    assert "Số ngày" in text and "Mới/Còn mở" in text and "Cách xử lý" in text
    assert "Hiển thị" not in text  # not cut
    assert 'data-count="28"' in text


def test_legend_lists_every_category(tmp_path: Path) -> None:
    text = _render(tmp_path, _sample())
    legend = text[text.index('id="legend"') :]
    for c in CATEGORIES.values():
        for words in (c.label_vi, c.label_en, c.action_vi, c.action_en):
            assert words.replace("'", "&#39;") in legend, words


def test_evidence_is_escaped(tmp_path: Path) -> None:
    base = _sample()
    evil = Item(
        category="status_differs",
        ma_ho_so=f"H40{EVIL}",
        province={"agency": '"><img src=x onerror=alert(1)>', "note": EVIL},
        state={EVIL: "</td></tr></table>"},
        portal={"TrangThaiHoSo": "</script><script>alert(2)</script>"},
        since="2026-11-01T08:30:00",
        repair=EVIL,
    )
    items = [evil, *base.items()]
    text = _render(tmp_path, _with_items(base, items, by_agency={evil.agency: 1, **base.by_agency}))
    page = Page(text)

    assert "<script>" not in text.replace("<script>" + page.raw["script"][0], "", 1)
    assert text.count("<script") == 1 and "<img" not in text
    assert text.count("<table") == text.count("</table>") == 2  # the items and the legend
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in text
    assert len(page.rows()) == len(items)
    (row, *_) = page.rows()
    assert row["data-cat"] == "status_differs"
    assert any(o.get("value") == evil.agency for o in page.find("option"))


def test_max_rows_cuts_the_table_and_says_so(tmp_path: Path) -> None:
    report = _sample()
    text = _render(tmp_path, report, max_rows=5)
    page = Page(text)
    assert len(page.rows()) == 5
    assert "Hiển thị 5/28 dòng; toàn bộ trong tệp XLSX/CSV" in text
    (notice,) = page.find("p", id="cut-notice")
    assert (notice["data-shown"], notice["data-total"]) == ("5", "28")
    # the figures and charts still count every mismatch
    assert page.find("div", data_figure="total")[0]["data-value"] == "28"


def test_twenty_thousand_rows_read_once(tmp_path: Path) -> None:
    """25,000 items: the table has the first 20,000, the page shows one page of them at a time, and
    the items are read once (they may come from a database)."""
    base = _sample()
    calls = 0

    def items() -> Iterator[Item]:
        nonlocal calls
        calls += 1
        for n in range(25_000):
            yield Item(KEYS[n % 16], f"H40.{n:06d}", {"agency": f"Cơ quan {n % 30}"}, since="2026-11-01")

    text = _render(tmp_path, dataclasses.replace(base, items=items))
    assert calls == 1
    assert "Hiển thị 20.000/25.000 dòng; toàn bộ trong tệp XLSX/CSV" in text
    assert "Showing 20,000 of 25,000 rows" in text
    rows = re.findall(r"<tr data-cat=[^>]*>", text)  # (HTMLParser takes seconds on 15 MB)
    assert len(rows) == 20_000
    assert sum(not r.endswith(" hidden>") for r in rows) == PAGE_SIZE
    assert "Trang 1/100 · dòng 1–200" in text


def test_first_report_counts_everything_as_new(tmp_path: Path) -> None:
    base = _sample()
    report = _with_items(base, list(base.items()), previous=None, new_since_last=[], resolved_since_last=[])
    text = _render(tmp_path, report)
    page = Page(text)
    figures = {a["data-figure"]: a["data-value"] for a in page.find("div") if "data-figure" in a}
    assert figures == {"total": "28", "new": "28", "open": "0", "resolved": ""}
    assert {r["data-status"] for r in page.rows()} == {"new"}
    assert "Không có: đây là báo cáo đầu tiên" in text


def test_no_mismatch(tmp_path: Path) -> None:
    base = _sample()
    report = _with_items(base, [], counts=dict.fromkeys(KEYS, 0), by_agency={}, by_age=[0, 0, 0, 0])
    text = _render(tmp_path, report)
    assert "Không có sai lệch nào trong kỳ này." in text
    assert 'id="items-table"' not in text
    assert len(Page(text).bars("category")) == len(KEYS)


def test_odd_times_and_unknown_category(tmp_path: Path) -> None:
    """A since with a UTC offset (the generated time has none), an unreadable since, an unknown
    category key: the row is still shown."""
    base = _sample()
    items = [
        Item("stale", "A", since="2026-11-29T07:00:00+07:00"),
        Item("stale", "B", since="yesterday"),
        Item("made_up", "C"),
    ]
    text = _render(tmp_path, _with_items(base, items))
    since = '<td data-sort="2026-11-29T07:00:00+07:00">29/11/2026</td>'
    assert since + '<td class="num" data-sort="1">1</td>' in text
    assert '<td data-sort="yesterday">yesterday</td><td class="num" data-sort=""></td>' in text
    assert re.search(r'<tr data-cat="made_up"[^>]*><td data-en="made_up">made_up</td>', text)


def test_a_failed_render_leaves_no_file(tmp_path: Path) -> None:
    def items() -> Iterator[Item]:
        yield Item("stale", "A")
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError):
        write_html(dataclasses.replace(_sample(), items=items), tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []
