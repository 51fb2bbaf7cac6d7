"""The review file a person edits: one row per local procedure, its candidates with scores and
reasons, and a ``decision`` cell — a national code (or the candidate's number) to accept, ``none``
for "no national equivalent", empty to decide later. CSV (UTF-8 with a BOM, so Excel shows the
diacritics) or XLSX; both read back the same."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dvcsync.contract import MA_TTHC_RE
from dvcsync.errors import TerminalError
from dvcsync.spreadsheet_safe import append_row, csv_row, undefuse_csv

from .matcher import Match

CANDIDATES = 5
NONE_WORDS = frozenset({"none", "khong", "không", "no", "không có", "khong co"})
HEADER = [
    "local_code",
    "local_name",
    "status",
    "current_code",
    "decision",
    "auto",
    "why_not_auto",
    *[
        f"candidate_{n}_{part}"
        for n in range(1, CANDIDATES + 1)
        for part in ("code", "name", "score", "reason")
    ],
]
GUIDE = (
    "decision: a national code (or 1-5 for a candidate) to accept; none = no national equivalent"
    " (its dossiers are not sent); empty = decide later. Then: dvcsync catalogue apply FILE"
)


@dataclass
class ReviewRow:
    match: Match
    status: str  # unmapped | unverified | decided | verified | skipped
    current_code: str | None

    def cells(self) -> list[str]:
        m = self.match
        decision = self.current_code if self.status == "decided" and self.current_code else (m.accepted or "")
        if self.status == "skipped":
            decision = "none"
        cells = [
            m.local.code,
            m.local.name,
            self.status,
            self.current_code or "",
            decision,
            "yes" if m.accepted else "",
            m.why_not or "",
        ]
        for n in range(CANDIDATES):
            if n < len(m.candidates):
                c = m.candidates[n]
                cells += [c.code, c.name, f"{c.score:.3f}", c.reason]
            else:
                cells += ["", "", "", ""]
        return cells


def write_review(path: Path, rows: Sequence[ReviewRow]) -> None:
    """``.xlsx`` as a workbook, anything else as CSV with a BOM."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook
        from openpyxl.styles import Font, PatternFill

        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = "review"
        sheet.append(HEADER)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            append_row(sheet, row.cells())  # names from the portal or the province: never formulas
        decision_col = HEADER.index("decision") + 1
        for line in range(2, len(rows) + 2):
            sheet.cell(line, decision_col).fill = PatternFill("solid", fgColor="FFF2CC")
        sheet.freeze_panes = "C2"
        for letter, width in (("A", 14), ("B", 60), ("E", 14), ("G", 40)):
            sheet.column_dimensions[letter].width = width
        guide = book.create_sheet("how to")
        guide.append([GUIDE])
        book.save(path)
        return
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow(csv_row(row.cells()))


class ReviewError(TerminalError, ValueError):
    """A cell of the review file cannot be applied; the message names the file, line and value."""


@dataclass(frozen=True)
class Decision:
    line: int
    local_code: str
    national_code: str | None  # None: no national equivalent


def read_review(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row by column name) of every data row."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = book["review"] if "review" in book.sheetnames else book.worksheets[0]
            lines = [
                ["" if v is None else str(v).strip() for v in values]
                for values in sheet.iter_rows(values_only=True)
            ]
        finally:
            book.close()
    else:
        try:
            with path.open(encoding="utf-8-sig", newline="") as f:
                lines = [[undefuse_csv(cell.strip()) for cell in row] for row in csv.reader(f)]
        except UnicodeDecodeError as exc:
            raise ReviewError(f"{path}: not UTF-8 text ({exc.reason}): save it as CSV UTF-8") from None
    if not lines or "local_code" not in lines[0] or "decision" not in lines[0]:
        raise ReviewError(f"{path}:1: the header must name the columns local_code and decision")
    header = lines[0]
    out = []
    for number, cells in enumerate(lines[1:], start=2):
        if not any(cells):
            continue
        out.append((number, {name: cells[i] if i < len(cells) else "" for i, name in enumerate(header)}))
    return out


def decisions(path: Path) -> list[Decision]:
    """The decisions of a review file (undecided rows left out); a bad cell is a ReviewError."""
    found: list[Decision] = []
    seen: dict[str, int] = {}
    for line, row in read_review(path):
        local = row.get("local_code", "")
        value = row.get("decision", "")
        if not local:
            raise ReviewError(f"{path}:{line}: local_code is empty")
        if local in seen:
            raise ReviewError(f"{path}:{line}: local_code {local!r} again (first on line {seen[local]})")
        seen[local] = line
        if not value:
            continue
        if value.lower() in NONE_WORDS:
            found.append(Decision(line, local, None))
            continue
        if value.isdigit() and 1 <= int(value) <= CANDIDATES:
            value = row.get(f"candidate_{value}_code", "")
            if not value:
                raise ReviewError(f"{path}:{line}: decision {row['decision']!r}: there is no such candidate")
        if not MA_TTHC_RE.fullmatch(value):
            raise ReviewError(
                f"{path}:{line}: decision {value!r} for {local}: write a national code (1.001193), a"
                f" candidate's number (1-{CANDIDATES}), none, or leave it empty"
            )
        found.append(Decision(line, local, value[:8]))
    return found
