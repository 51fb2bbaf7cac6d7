"""One spreadsheet-safe writer for every file a person opens in Excel or LibreOffice (the
reconcile reports, the catalogue review file, exports).

Text that came from the province, the state or the portal is data, never a formula (OWASP "CSV
injection"): a value starting with ``= + - @``, a tab or a CR (or their full-width forms, which
some spreadsheet locales read as the ASCII ones) gets a leading apostrophe in CSV, and in a
workbook becomes a text cell with Excel's quote prefix, so it reads exactly as received yet is
never evaluated, not even after the cell is edited. An error literal (``#REF!``) stays text too.
Characters XML cannot carry are replaced (openpyxl would refuse the whole row).

``undefuse_csv`` takes the apostrophe back off when dvcsync reads its own CSV (a review file's
codes must come back as written).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
EXCEL_MAX_TEXT = 32_767


def formula_like(text: str) -> bool:
    """Whether a spreadsheet would run ``text`` as a formula (or show it as an error)."""
    return text.startswith(FORMULA_START) or text in ERROR_CODES


def defuse_csv(text: str) -> str:
    """A leading apostrophe on text a spreadsheet would otherwise run as a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def undefuse_csv(text: str) -> str:
    """The text ``defuse_csv`` was given (an apostrophe before a formula start taken off)."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def csv_row(values: Iterable[Any]) -> list[Any]:
    """A CSV row with every text value defused (numbers, dates and None as they are)."""
    return [defuse_csv(v) if isinstance(v, str) else v for v in values]


def xlsx_clean(text: str) -> str:
    """Text a workbook cell can hold: XML-illegal characters replaced, Excel's length cap kept."""
    if ILLEGAL_CHARACTERS_RE.search(text):
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)
    return text[:EXCEL_MAX_TEXT]


def xlsx_value(ws: WriteOnlyWorksheet, text: str) -> str | WriteOnlyCell:
    """A write-only sheet's cell for ``text``: the text itself, or a quote-prefixed text cell."""
    text = xlsx_clean(text)
    if not formula_like(text):
        return text
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"  # openpyxl makes "=..." a formula and "#REF!" an error
    cell.quotePrefix = True
    return cell


def set_text(cell: Cell, text: str) -> None:
    """Put ``text`` in a cell of an ordinary worksheet as text, never a formula."""
    text = xlsx_clean(text)
    cell.value = text
    if formula_like(text):
        cell.data_type = "s"
        cell.quotePrefix = True


def append_row(sheet: Worksheet, values: Iterable[Any]) -> None:
    """``sheet.append`` for rows that carry received text: each string defused as ``set_text``."""
    row = sheet.max_row + 1 if sheet.max_row > 1 or sheet.cell(1, 1).value is not None else 1
    for column, value in enumerate(values, start=1):
        cell = sheet.cell(row, column)
        if isinstance(value, str):
            set_text(cell, value)
        else:
            cell.value = value


__all__ = [
    "EXCEL_MAX_TEXT",
    "FORMULA_START",
    "append_row",
    "csv_row",
    "defuse_csv",
    "formula_like",
    "set_text",
    "undefuse_csv",
    "xlsx_clean",
    "xlsx_value",
]
