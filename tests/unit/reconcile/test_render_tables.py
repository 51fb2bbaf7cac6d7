"""The XLSX workbook and the CSV a reconciler opens in Excel or LibreOffice, read back as they would."""

from __future__ import annotations

import csv
import zipfile
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from dvcsync.reconcile.categories import CATEGORIES, KEYS
from dvcsync.reconcile.render_tables import (
    CSV_COLUMNS,
    ITEM_HEADERS,
    RESOLVED_SHEET,
    SUMMARY_SHEET,
    sheet_name,
    write_csv,
    write_xlsx,
)
from dvcsync.reconcile.report import Item, Report

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "reconcile" / "sample-report.json"
ATTACK = "=cmd|' /C calc'!A0"


def _sample() -> Report:
    return Report.read_json(FIXTURE)


def _hostile() -> Report:
    """The sample with text a spreadsheet would run or refuse, in every kind of column."""
    base = _sample()
    items = list(base.items())
    items[0] = Item(
        category=items[0].category,
        ma_ho_so="@SUM(1+1)*cmd|' /C calc'!A0",
        province={"agency": ATTACK, "status": "processing"},
        state={ATTACK: "x"},
        portal={"note": "bell\x07 here"},
        since="2026-11-01T08:30:00+07:00",
        repair="-2+3",
    )
    items[1] = Item(category=items[1].category, ma_ho_so="#REF!", province={"agency": "+84 912"})
    return Report(
        period=base.period,
        counts=base.counts,
        items=lambda: iter(items),
        resolved_since_last=[{"category": "stale", "ma_ho_so": ATTACK}],
        new_since_last=base.new_since_last,
        by_agency={ATTACK: 1, **base.by_agency},
        by_age=base.by_age,
        previous=base.previous,
    )


@pytest.fixture
def sample_xlsx(tmp_path: Path) -> openpyxl.Workbook:
    path = tmp_path / "r.xlsx"
    write_xlsx(_sample(), path)
    return openpyxl.load_workbook(path)


def _rows(ws: Worksheet) -> list[tuple[Any, ...]]:
    return list(ws.iter_rows(values_only=True))


# --------------------------------------------------------------------------------------- XLSX


def test_xlsx_sheets_summary_then_one_per_category_then_resolved(sample_xlsx: openpyxl.Workbook) -> None:
    report = _sample()
    present = [key for key in KEYS if report.counts[key]]
    assert sample_xlsx.sheetnames == [SUMMARY_SHEET, *(sheet_name(k) for k in present), RESOLVED_SHEET]
    assert len(set(map(str.casefold, sample_xlsx.sheetnames))) == len(sample_xlsx.sheetnames)


def test_sheet_names_are_names_excel_accepts() -> None:
    for key in KEYS:
        name = sheet_name(key)
        assert 0 < len(name) <= 31
        assert not set(name) & set("[]:*?/\\")
    assert sheet_name("a/b:c" + "x" * 40) == ("a b c" + "x" * 40)[:31]


def test_xlsx_category_sheets_header_frozen_filtered_fitted(sample_xlsx: openpyxl.Workbook) -> None:
    report = _sample()
    for key in (k for k in KEYS if report.counts[k]):  # a category the sample has no finding of has no sheet
        ws = sample_xlsx[sheet_name(key)]
        rows = _rows(ws)
        assert rows[0] == ITEM_HEADERS
        assert ws["A1"].font.b and ws["A1"].fill.fill_type == "solid"
        assert ws.freeze_panes == "A2"
        assert len(rows) - 1 == report.counts[key]
        assert ws.auto_filter.ref == f"A1:J{report.counts[key] + 1}"
        widths = [ws.column_dimensions[c].width for c in "ABCDEFGHIJ"]
        assert all(8 <= w <= 60 for w in widths)
        assert widths[0] >= len("H40.20-261100-1000")  # the dossier code column fits its codes
        assert widths[2] == 60  # the province's evidence is longer: capped
        assert {r[0] for r in rows[1:]} <= {i.ma_ho_so for i in report.items() if i.category == key}


def test_xlsx_dates_are_dates_and_ages_numbers(sample_xlsx: openpyxl.Workbook) -> None:
    ws = sample_xlsx[sheet_name("missing_on_portal")]
    since, age = ws["F2"], ws["G2"]
    assert since.is_date and since.value == datetime(2026, 9, 1, 8, 30)
    assert since.number_format.startswith("dd/mm/yyyy")
    assert isinstance(age.value, int) and age.value == 89  # 2026-09-01 08:30 to 2026-11-30 07:00
    summary = {r[0]: r[1] for r in _rows(sample_xlsx[SUMMARY_SHEET]) if r[0]}
    assert summary["Từ ngày"] == datetime(2026, 11, 1)
    assert summary["Lập lúc"] == datetime(2026, 11, 30, 7, 0)
    cells = {c.value: c for c in sample_xlsx[SUMMARY_SHEET]["A"]}
    row = cells["Từ ngày"].row
    assert sample_xlsx[SUMMARY_SHEET].cell(row, 2).number_format == "dd/mm/yyyy"


def test_xlsx_marks_new_and_still_open(sample_xlsx: openpyxl.Workbook) -> None:
    rows = _rows(sample_xlsx[sheet_name("missing_on_portal")])[1:]
    seen = {r[0]: r[7] for r in rows}
    assert seen["H40.20-261100-1000"] == "Mới"  # in new_since_last
    assert seen["H40.20-261101-1001"] == "Còn mở"
    assert {r[8] for r in rows} == {CATEGORIES["missing_on_portal"].action_vi}


def test_xlsx_first_report_lists_everything_as_new(tmp_path: Path) -> None:
    report = _sample()
    report.previous = None
    report.new_since_last = []
    write_xlsx(report, tmp_path / "r.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "r.xlsx")
    seen = {r[7] for ws in wb.worksheets[1:-1] for r in _rows(ws)[1:]}
    assert seen == {"Mới"}
    summary = {r[0]: r[1] for r in _rows(wb[SUMMARY_SHEET]) if r[0]}
    assert summary["Mới so với lần trước"] == report.total
    assert summary["Báo cáo trước"].startswith("Không có")


def test_xlsx_summary_totals_categories_agencies_ages(sample_xlsx: openpyxl.Workbook) -> None:
    report = _sample()
    rows = _rows(sample_xlsx[SUMMARY_SHEET])
    first = {r[0]: r for r in rows if r[0]}
    assert first["Tổng số sai lệch"][1] == report.total == 28
    assert first["Mới so với lần trước"][1] == 1
    assert first["Còn mở từ lần trước"][1] == 27
    assert first["Đã khắc phục từ lần trước"][1] == 1
    for key in KEYS:
        cat = CATEGORIES[key]
        assert first[key][1:5] == (cat.label_vi, cat.label_en, report.counts[key], cat.action_vi)
    for agency, count in report.by_agency.items():
        assert first[agency][1] == count
    assert first["> 30 ngày"][1:3] == ("> 30 days", 12)


def test_xlsx_resolved_sheet(sample_xlsx: openpyxl.Workbook) -> None:
    ws = sample_xlsx[RESOLVED_SHEET]
    assert _rows(ws) == [
        ("Mã loại", "Loại sai lệch", "Mã hồ sơ"),
        ("stale", CATEGORIES["stale"].label_vi, "H40.20-261101-0999"),
    ]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:C2"


def test_xlsx_formula_like_text_is_stored_as_text(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    write_xlsx(_hostile(), path)
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in z.read(name) and b"<f " not in z.read(name), name
    wb = openpyxl.load_workbook(path)
    ws = wb[sheet_name(KEYS[0])]
    code, agency, _, state, portal, since, age = (c for c in ws[2][:7])
    assert code.value == "@SUM(1+1)*cmd|' /C calc'!A0" and code.data_type == "s" and code.quotePrefix
    assert agency.value == ATTACK and agency.data_type == "s" and agency.quotePrefix
    assert state.value == f"{ATTACK}: x" and state.data_type == "s"
    assert ws["J2"].value == "-2+3" and ws["J2"].data_type == "s"
    assert portal.value == "note: bell\ufffd here"  # XML cannot carry a BEL: replaced, row kept
    assert since.value == datetime(2026, 11, 1, 8, 30)  # the offset is dropped: local wall time
    assert age.value == 28
    assert ws["A3"].value == "#REF!" and ws["A3"].data_type == "s"  # not an error value
    assert wb[RESOLVED_SHEET]["C2"].value == ATTACK and wb[RESOLVED_SHEET]["C2"].data_type == "s"
    assert any(c.value == ATTACK and c.data_type == "s" for c in wb[SUMMARY_SHEET]["A"])


def test_xlsx_refuses_items_out_of_category_order(tmp_path: Path) -> None:
    base = _sample()
    items = list(base.items())
    items.append(items.pop(0))  # a missing_on_portal item after paid_twice
    report = Report(period=base.period, counts=base.counts, items=lambda: iter(items))
    path = tmp_path / "r.xlsx"
    path.write_bytes(b"previous")
    with pytest.raises(ValueError, match="not grouped by category"):
        write_xlsx(report, path)
    assert path.read_bytes() == b"previous"  # the earlier file stays; no partial file beside it
    assert [p.name for p in tmp_path.iterdir()] == ["r.xlsx"]


def test_xlsx_refuses_counts_that_disagree_with_items(tmp_path: Path) -> None:
    base = _sample()
    report = Report(period=base.period, counts={**base.counts, "stale": 2}, items=base.items)
    with pytest.raises(ValueError, match="'stale'"):
        write_xlsx(report, tmp_path / "r.xlsx")
    assert not list(tmp_path.iterdir())


def test_xlsx_notices_items_changing_between_passes(tmp_path: Path) -> None:
    base = _sample()
    items = list(base.items())
    calls = 0

    def changing() -> Iterator[Item]:
        nonlocal calls
        calls += 1
        return iter(items if calls == 1 else items[:-1])

    report = Report(period=base.period, counts=base.counts, items=changing)
    with pytest.raises(RuntimeError, match="changed between"):
        write_xlsx(report, tmp_path / "r.xlsx")


def test_xlsx_empty_report_has_summary_and_resolved_only(tmp_path: Path) -> None:
    base = _sample()
    report = Report(period=base.period, counts=dict.fromkeys(KEYS, 0), items=lambda: iter(()))
    write_xlsx(report, tmp_path / "r.xlsx")
    assert openpyxl.load_workbook(tmp_path / "r.xlsx").sheetnames == [SUMMARY_SHEET, RESOLVED_SHEET]


# --------------------------------------------------------------------------------------- CSV


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def test_csv_bom_header_every_item(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    write_csv(_sample(), path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf" + ",".join(CSV_COLUMNS).encode() + b"\r\n")
    rows = _read_csv(path)
    assert len(rows) == _sample().total == 28
    assert Counter(r["category"] for r in rows) == +Counter(_sample().counts)
    first = rows[0]
    assert first["category_label"] == "Thiếu trên Cổng DVCQG"
    assert first["agency"] == "000.00.20.H40 Sở Tư pháp"
    assert "Sở Tư pháp" in first["province"]
    assert (first["since"], first["since_vn"]) == ("2026-09-01 08:30:00", "01/09/2026")
    assert first["age_days"] == "89"
    assert (first["seen"], rows[1]["seen"]) == ("new", "open")
    assert first["repair"] == "dvcsync reconcile repair missing_on_portal"


def test_csv_defuses_formula_like_text(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    write_csv(_hostile(), path)
    rows = _read_csv(path)
    assert rows[0]["ma_ho_so"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert rows[0]["agency"] == "'" + ATTACK
    assert rows[0]["state"] == f"'{ATTACK}: x"
    assert rows[0]["repair"] == "'-2+3"
    assert rows[1]["agency"] == "'+84 912"
    assert rows[0]["age_days"] == "28"  # numbers are numbers, not defused text
    dangerous = ("=", "+", "-", "@", "\t", "\r")
    assert not [v for r in rows for v in r.values() if v.startswith(dangerous)]


# --------------------------------------------------------------------------------------- size


def test_thousands_of_items_stream_into_both(tmp_path: Path) -> None:
    """Every category's sheet and the CSV get every item of a generator read twice. The count is no
    bound (the writers' one is Excel's 1,048,576 rows, and memory is not measured here): 5,000
    items run every path 20,000 did, in a quarter of the time."""
    base = _sample()
    per = 5_000 // len(KEYS)

    def generated() -> Iterator[Item]:
        for n, key in enumerate(KEYS):
            for m in range(per):
                yield Item(
                    category=key,
                    ma_ho_so=f"H40.{n:02d}-261101-{m:06d}",
                    province={"agency": f"000.00.{m % 40:02d}.H40 UBND xã số {m % 40}", "status": "3"},
                    state={"on_portal": m % 2 == 0},
                    portal={"TrangThaiHoSo": "4"} if m % 3 else None,
                    since=f"2026-{1 + m % 11:02d}-{1 + m % 28:02d}T08:30:00",
                    repair=CATEGORIES[key].repair_command,
                )

    report = Report(period=base.period, counts=dict.fromkeys(KEYS, per), items=generated)
    write_xlsx(report, tmp_path / "big.xlsx")  # a hang is caught by pytest's timeout, not a clock
    write_csv(report, tmp_path / "big.csv")
    wb = openpyxl.load_workbook(tmp_path / "big.xlsx", read_only=True)
    for key in KEYS:
        assert wb[sheet_name(key)].max_row == per + 1
    wb.close()
    with (tmp_path / "big.csv").open(encoding="utf-8-sig", newline="") as f:
        assert sum(1 for _ in csv.reader(f)) == per * len(KEYS) + 1
