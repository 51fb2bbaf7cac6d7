"""The reconciliation report as an XLSX workbook and as one CSV, for reconcilers who open them in
Excel or LibreOffice and filter, sort and hand rows out to the agencies.

Both are streamed: a report may hold hundreds of thousands of items, so neither keeps them in
memory. The workbook is written with openpyxl's write-only mode (each sheet spooled to a temporary
file), the CSV row by row. Either file appears under its final name only once complete.

Text that came from the province, the state or the portal is data, never a formula: every cell
goes through ``dvcsync.spreadsheet_safe``, the one writer every file a person opens uses.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from dvcsync.spreadsheet_safe import defuse_csv, xlsx_value

from .categories import CATEGORIES, KEYS
from .report import AGE_BUCKETS, Item, Report, evidence_text

SUMMARY_SHEET = "Tổng hợp"
RESOLVED_SHEET = "Đã khắc phục"

# Sheet tabs hold 31 characters and most Vietnamese labels are longer; these short names are what a
# reconciler sees on the tabs (the full label heads the summary's table).
SHEET_NAMES: dict[str, str] = {
    "missing_on_portal": "Thiếu trên Cổng DVCQG",
    "unknown_to_province": "Không có ở một cửa",
    "status_differs": "Trạng thái khác nhau",
    "dates_differ": "Ngày tháng khác nhau",
    "fees_differ": "Phí, lệ phí khác nhau",
    "history_missing": "Thiếu bước xử lý trên Cổng",
    "history_duplicated": "Bước xử lý ghi trùng",
    "history_portal_only": "Bước chỉ có trên Cổng",
    "stale": "Chưa đồng bộ",
    "quarantined": "Dữ liệu không hợp lệ",
    "dead_letter": "Gửi thất bại",
    "portal_dossier_not_taken_in": "Nộp trên Cổng chưa tiếp nhận",
    "withdrawal_conflict": "Xung đột rút hồ sơ",
    "paid_on_platform_only": "Một cửa chưa ghi thanh toán",
    "paid_in_province_only": "Nền tảng chưa thanh toán",
    "amount_differs": "Số tiền khác nhau",
    "paid_twice": "Thanh toán hai lần",
}

ITEM_HEADERS = (
    "Mã hồ sơ",
    "Cơ quan",
    "Một cửa",
    "dvcsync",
    "Cổng DVCQG",
    "Từ ngày",
    "Số ngày",
    "Mới/Còn mở",
    "Cách xử lý",
    "Lệnh khắc phục",
)
CSV_COLUMNS = (
    "category",
    "category_label",
    "ma_ho_so",
    "agency",
    "province",
    "state",
    "portal",
    "since",
    "since_vn",
    "age_days",
    "seen",
    "repair",
)

NEW_VI, OPEN_VI = "Mới", "Còn mở"
MAX_WIDTH = 60
MIN_WIDTH = 8
EXCEL_MAX_ROWS = 1_048_576
DATE_FORMAT = "dd/mm/yyyy"
DATETIME_FORMAT = "dd/mm/yyyy hh:mm"
_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill(fill_type="solid", fgColor="DDEBF7")
_TITLE_FONT = Font(bold=True, size=13)


class _Row(NamedTuple):
    """One item as both formats show it (computed once per item and pass)."""

    category: str
    ma_ho_so: str
    agency: str
    province: str
    state: str
    portal: str
    since: datetime | None
    since_raw: str
    timed: bool  # ``since`` carried a time of day (shown as dd/mm/yyyy hh:mm)
    age: int | None  # whole days from ``since`` to when the report was generated
    new: bool
    repair: str


def _naive(moment: datetime) -> datetime:
    """Local wall time without an offset: Excel has no time zones, and the report's times are all
    the province's local time already (a mix of aware and naive values must not raise)."""
    return moment.replace(tzinfo=None)


def _parse_since(text: str | None) -> tuple[datetime | None, bool]:
    if not text:
        return None, False
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None, False
    return _naive(moment), "T" in text or " " in text.strip()


class _Rows:
    """Turns items into ``_Row``s relative to the report's generation time and previous report."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.now = _naive(report.generated_at)
        # A first report has nothing to compare with: every item is new to its readers.
        self.first = report.previous is None
        self.new_keys = set() if self.first else report.new_keys()

    def row(self, item: Item) -> _Row:
        since, timed = _parse_since(item.since)
        age = None if since is None else max(0, int((self.now - since).total_seconds() // 86400))
        code = item.ma_ho_so or ""
        return _Row(
            category=item.category,
            ma_ho_so=code,
            agency=item.agency,
            province=evidence_text(item.province),
            state=evidence_text(item.state),
            portal=evidence_text(item.portal),
            since=since,
            since_raw=item.since or "",
            timed=timed,
            age=age,
            new=self.first or (item.category, item.ma_ho_so) in self.new_keys,
            repair=item.repair or "",
        )

    def __call__(self) -> Iterator[_Row]:
        return (self.row(item) for item in self.report.items())


# --------------------------------------------------------------------------------------- safety


def _xl_text(ws: WriteOnlyWorksheet, text: str) -> str | WriteOnlyCell:
    """Text for a workbook cell, made safe by the one writer every spreadsheet file uses."""
    return xlsx_value(ws, text)


def _date_cell(ws: WriteOnlyWorksheet, moment: date, timed: bool) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=moment)
    cell.number_format = DATETIME_FORMAT if timed else DATE_FORMAT
    return cell


def _header_cells(ws: WriteOnlyWorksheet, titles: Sequence[str]) -> list[WriteOnlyCell]:
    cells = []
    for title in titles:
        cell = WriteOnlyCell(ws, value=title)
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(vertical="center")
        cells.append(cell)
    return cells


def _fit(width: int) -> float:
    return float(min(MAX_WIDTH, max(MIN_WIDTH, width + 2)))


def _set_widths(ws: WriteOnlyWorksheet, widths: Sequence[int]) -> None:
    """Column widths from the longest content; write-only mode writes them ahead of the rows."""
    for n, width in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(n)].width = _fit(width)


def _widths_of(rows: Sequence[Sequence[Any]]) -> list[int]:
    widths: list[int] = []
    for row in rows:
        for n, value in enumerate(row):
            size = 16 if isinstance(value, datetime) else 10 if isinstance(value, date) else len(str(value))
            if n == len(widths):
                widths.append(0)
            widths[n] = max(widths[n], 0 if value is None else size)
    return widths


def sheet_name(key: str) -> str:
    """A tab name Excel accepts: 31 characters at most, none of ``[]:*?/\\``."""
    name = SHEET_NAMES.get(key) or key
    for char in "[]:*?/\\":
        name = name.replace(char, " ")
    return name.strip()[:31] or "?"


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary sibling that becomes ``path`` only when writing succeeded: a reader never opens
    a half-written report, and a failed run leaves the previous file in place."""
    tmp = path.with_name(f".{path.name}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------- XLSX


@dataclass
class _Tally:
    """What the first pass learns about one category's items."""

    count: int = 0
    new: int = 0
    written: int = 0  # by the second pass
    widths: list[int] = field(default_factory=lambda: [len(h) + 3 for h in ITEM_HEADERS])


def _scan(rows: Callable[[], Iterator[_Row]], report: Report) -> dict[str, _Tally]:
    """First pass: check the order the sheets rely on, count, and measure column widths.

    Why two passes over ``report.items()``: write-only mode writes a sheet's column widths before
    its first row, so they must be known before the rows are, and memory must not grow with the
    items. The producer lists items grouped by category in ``KEYS`` order (checked here, loudly,
    before anything is written), so the second pass fills one sheet after another; this pass
    keeps a few integers per category. A spool (a temporary SQLite file of the rows) would do it in
    one read, but it copies every item to disk once more when they already sit in the run's
    working database (or in the JSON read back): ``items()`` starts afresh on each call, so
    reading twice costs time only (about a third of the total; openpyxl's cell writing is the
    rest)."""
    order = {key: n for n, key in enumerate(KEYS)}
    tallies: dict[str, _Tally] = {}
    last = -1
    for row in rows():
        place = order.get(row.category)
        if place is None:
            raise ValueError(f"item {row.ma_ho_so!r} has an unknown category {row.category!r}")
        if place < last:
            raise ValueError(
                f"items are not grouped by category in report order: {row.category!r} "
                f"({row.ma_ho_so!r}) comes after {KEYS[last]!r}"
            )
        last = place
        tally = tallies.setdefault(row.category, _Tally())
        tally.count += 1
        tally.new += row.new
        widths = tally.widths
        sizes = (
            len(row.ma_ho_so),
            len(row.agency),
            len(row.province),
            len(row.state),
            len(row.portal),
            16 if row.timed else 10,
            0 if row.age is None else len(str(row.age)),
            len(OPEN_VI),
            len(CATEGORIES[row.category].action_vi),
            len(row.repair),
        )
        for n, size in enumerate(sizes):
            if size > widths[n]:
                widths[n] = size
    for key in KEYS:
        got = tallies[key].count if key in tallies else 0
        if got != report.counts.get(key, 0):
            raise ValueError(f"report counts {report.counts.get(key, 0)} {key!r} items but lists {got}")
        if got >= EXCEL_MAX_ROWS:
            raise ValueError(f"{got} {key!r} items do not fit one sheet ({EXCEL_MAX_ROWS - 1}); use the CSV")
    return tallies


def _portal_check_vi(value: Any) -> str:
    text = str(value or "")
    if text == "all":
        return "Tất cả hồ sơ (all)"
    if text == "none":
        return "Không đối chiếu với Cổng (none)"
    if text.startswith("sample:"):
        return f"Lấy mẫu {text.removeprefix('sample:')} hồ sơ ({text})"
    return text


_PERIOD_LABELS = {
    "since": "Từ ngày",
    "until": "Đến ngày",
    "agency": "Cơ quan (lọc)",
    "procedure": "Thủ tục (lọc)",
    "portal_check": "Đối chiếu với Cổng",
    "generated_at": "Lập lúc",
    "timezone": "Múi giờ",
}


def _period_value(key: str, value: Any) -> Any:
    if key in ("agency", "procedure") and not value:
        return "Tất cả"
    if key == "portal_check":
        return _portal_check_vi(value)
    if key in ("since", "until", "generated_at") and isinstance(value, str):
        moment, timed = _parse_since(value)
        if moment is not None:
            return moment if timed else moment.date()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


_Line = tuple[str, tuple[Any, ...]]  # ("title" | "head" | "row", values); () values: a blank line


def _summary_lines(report: Report, tallies: dict[str, _Tally]) -> list[_Line]:
    """The summary sheet's lines (a few hundred at most: one per agency)."""
    new = sum(t.new for t in tallies.values())
    lines: list[_Line] = [
        ("title", ("Báo cáo đối soát hồ sơ: hệ thống một cửa, dvcsync và Cổng DVCQG",)),
        ("row", ()),
        ("head", ("Kỳ đối soát", "")),
    ]
    for key, label in _PERIOD_LABELS.items():
        if key in report.period:
            lines.append(("row", (label, _period_value(key, report.period[key]))))
    for key, value in report.period.items():
        if key not in _PERIOD_LABELS:
            lines.append(("row", (key, _period_value(key, value))))
    previous, timed = _parse_since(report.previous)
    if report.previous:
        lines.append(("row", ("Báo cáo trước", previous if previous and timed else report.previous)))
    else:
        lines.append(("row", ("Báo cáo trước", "Không có (báo cáo đầu tiên)")))
    lines += [
        ("row", ()),
        ("head", ("Tổng số", "Số lượng")),
        ("row", ("Tổng số sai lệch", report.total)),
        ("row", ("Mới so với lần trước", new)),
        ("row", ("Còn mở từ lần trước", report.total - new)),
        ("row", ("Đã khắc phục từ lần trước", len(report.resolved_since_last))),
        ("row", ()),
        ("head", ("Mã loại", "Loại sai lệch", "Category", "Số lượng", "Cách xử lý", "Lệnh khắc phục")),
    ]
    for key in KEYS:
        cat = CATEGORIES[key]
        values = (
            key,
            cat.label_vi,
            cat.label_en,
            report.counts.get(key, 0),
            cat.action_vi,
            cat.repair_command or "",
        )
        lines.append(("row", values))
    lines += [("row", ("Tổng cộng", "", "", report.total)), ("row", ()), ("head", ("Cơ quan", "Số lượng"))]
    lines += [("row", kv) for kv in sorted(report.by_agency.items(), key=lambda kv: (-kv[1], kv[0]))]
    lines += [("row", ()), ("head", ("Thời gian tồn tại", "Age", "Số lượng"))]
    lines += [("row", (vi, en, n)) for (vi, en, _), n in zip(AGE_BUCKETS, report.by_age, strict=True)]
    return lines


def _write_summary(wb: Workbook, report: Report, tallies: dict[str, _Tally]) -> None:
    ws = wb.create_sheet(SUMMARY_SHEET)
    lines = _summary_lines(report, tallies)
    _set_widths(ws, _widths_of([values for kind, values in lines if kind != "title"]))
    for kind, values in lines:
        if kind == "title":
            title = WriteOnlyCell(ws, value=values[0])
            title.font = _TITLE_FONT
            ws.append([title])
        elif kind == "head":
            ws.append(_header_cells(ws, values))
        else:
            ws.append([_summary_cell(ws, v) for v in values])


def _summary_cell(ws: WriteOnlyWorksheet, value: Any) -> Any:
    if isinstance(value, datetime):
        return _date_cell(ws, value, True)
    if isinstance(value, date):
        return _date_cell(ws, value, False)
    if isinstance(value, str):
        return _xl_text(ws, value)
    return value


def _open_item_sheet(wb: Workbook, key: str, tally: _Tally) -> WriteOnlyWorksheet:
    ws = wb.create_sheet(sheet_name(key))
    ws.freeze_panes = "A2"  # before any row: write-only mode writes the sheet view first
    _set_widths(ws, tally.widths)
    used = f"A1:{get_column_letter(len(ITEM_HEADERS))}{tally.count + 1}"
    ws.auto_filter.ref = used
    _declare_dimension(ws, used)
    ws.append(_header_cells(ws, ITEM_HEADERS))
    return ws


def _declare_dimension(ws: WriteOnlyWorksheet, used: str) -> None:
    """The sheet's used range in its <dimension> element, which write-only sheets leave out:
    streaming readers (openpyxl read-only, pandas) size the sheet from it. openpyxl writes it from
    ``calculate_dimension`` when the sheet has one; without it the file is just as valid."""
    ws.calculate_dimension = lambda: used


def _item_cells(ws: WriteOnlyWorksheet, row: _Row, action: str) -> list[Any]:
    return [
        _xl_text(ws, row.ma_ho_so),
        _xl_text(ws, row.agency),
        _xl_text(ws, row.province),
        _xl_text(ws, row.state),
        _xl_text(ws, row.portal),
        None if row.since is None else _date_cell(ws, row.since, row.timed),
        row.age,
        NEW_VI if row.new else OPEN_VI,
        action,
        _xl_text(ws, row.repair),
    ]


def _write_resolved(wb: Workbook, report: Report) -> None:
    ws = wb.create_sheet(RESOLVED_SHEET)
    headers = ("Mã loại", "Loại sai lệch", "Mã hồ sơ")
    rows = []
    for done in report.resolved_since_last:
        key = str(done.get("category") or "")
        label = CATEGORIES[key].label_vi if key in CATEGORIES else ""
        rows.append((key, label, str(done.get("ma_ho_so") or "")))
    ws.freeze_panes = "A2"
    _set_widths(ws, [max(a, len(h) + 3) for a, h in zip(_widths_of([headers, *rows]), headers, strict=True)])
    ws.auto_filter.ref = f"A1:C{len(rows) + 1}"
    _declare_dimension(ws, ws.auto_filter.ref)
    ws.append(_header_cells(ws, headers))
    for row in rows:
        ws.append([_xl_text(ws, v) for v in row])


def write_xlsx(report: Report, path: Path) -> None:
    """The workbook: "Tổng hợp", one sheet per category that has items, "Đã khắc phục".

    Memory stays bounded by the number of categories, not items (see ``_scan``). Raises
    ``ValueError`` before writing anything when the items are not grouped in category order or do
    not match the report's counts, ``RuntimeError`` when the second pass differs from the first."""
    rows = _Rows(report)
    tallies = _scan(rows, report)
    wb = Workbook(write_only=True)
    with _replacing(path) as tmp:
        try:
            _write_summary(wb, report, tallies)
            _write_items(wb, rows, tallies)
            _write_resolved(wb, report)
        except BaseException:
            # Saving closes every sheet's spool (an abandoned one complains when collected and
            # keeps its temporary file until exit); the half-written file is removed at once.
            with suppress(Exception):
                wb.save(tmp)
            raise
        wb.save(tmp)


def _write_items(wb: Workbook, rows: _Rows, tallies: dict[str, _Tally]) -> None:
    """Second pass: one sheet per category, each written in one go as the items arrive."""
    expected = iter(tallies.items())
    key: str | None = None
    tally = _Tally()
    ws: WriteOnlyWorksheet | None = None
    action = ""
    for row in rows():
        if row.category != key:
            if key is not None and tally.written != tally.count:
                _changed(key)
            key, tally = next(expected, (None, _Tally()))
            if key != row.category:
                _changed(row.category)
            ws, action = _open_item_sheet(wb, row.category, tally), CATEGORIES[row.category].action_vi
        assert ws is not None
        ws.append(_item_cells(ws, row, action))
        tally.written += 1
    if key is not None and tally.written != tally.count:
        _changed(key)
    if (rest := next(expected, None)) is not None:
        _changed(rest[0])


def _changed(key: str) -> NoReturn:
    """The second pass must list what the first one counted: a database changed under a report
    would otherwise give sheets that disagree with the summary and their own filter ranges."""
    raise RuntimeError(f"the report's items changed between the two passes over them ({key!r}); run it again")


# --------------------------------------------------------------------------------------- CSV


def write_csv(report: Report, path: Path) -> None:
    """Every item in one CSV: UTF-8 with a BOM (Excel then reads Vietnamese correctly), commas,
    CRLF line ends (RFC 4180; Excel and LibreOffice read LF as well), a header of stable English
    column names for scripts. ``since`` is ISO (``yyyy-mm-dd HH:MM:SS``) for machines,
    ``since_vn`` dd/mm/yyyy for people; ``seen`` is ``new`` or ``open``."""
    rows = _Rows(report)
    with _replacing(path) as tmp, tmp.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for row in rows():
            label = CATEGORIES[row.category].label_vi if row.category in CATEGORIES else row.category
            writer.writerow(
                (
                    defuse_csv(row.category),
                    defuse_csv(label),
                    defuse_csv(row.ma_ho_so),
                    defuse_csv(row.agency),
                    defuse_csv(row.province),
                    defuse_csv(row.state),
                    defuse_csv(row.portal),
                    row.since.strftime("%Y-%m-%d %H:%M:%S") if row.since else defuse_csv(row.since_raw),
                    row.since.strftime("%d/%m/%Y") if row.since else "",
                    "" if row.age is None else row.age,
                    "new" if row.new else "open",
                    defuse_csv(row.repair),
                )
            )


__all__ = [
    "CSV_COLUMNS",
    "ITEM_HEADERS",
    "RESOLVED_SHEET",
    "SHEET_NAMES",
    "SUMMARY_SHEET",
    "defuse_csv",
    "sheet_name",
    "write_csv",
    "write_xlsx",
]
