"""Province payments ⋈ the payment platform's daily statements.

The statement is the platform's word on what was paid (the contract publishes no settlement file;
ours is a choice, served by the mock, its address configurable as ``[reconcile] statement_url``).
Its lines go to the run's working file, not to memory, and are walked twice: each platform line
against the province's attempt of the same reference, then each attempt the province holds paid
against the statement. A statement that could not be read for a day makes the report say so and
skips the "paid in the province only" pass, which would otherwise list every payment of that day.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from dvcsync.contract import StatementRow
from dvcsync.sync.payment_ledger import PaymentLedger, stage_of, wire_to_local_iso

from .period import Period
from .workbook import WorkBook

log = logging.getLogger(__name__)

PAID_PLATFORM = "1"
PAID_PROVINCE = "paid"
PLATFORM_STATES = {"1": "paid", "3": "pending", "4": "failed"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stmt (
    ref TEXT PRIMARY KEY, txn TEXT, bank TEXT, amount INTEGER, state TEXT, moment TEXT, day TEXT
);
CREATE TABLE IF NOT EXISTS paid (
    ma_ho_so TEXT NOT NULL, ref TEXT NOT NULL, moment TEXT, stage TEXT NOT NULL,
    PRIMARY KEY (ma_ho_so, ref)
);
"""


@dataclass
class PaymentCounts:
    statement_days: int = 0
    statement_lines: int = 0
    bad_lines: int = 0
    province_attempts: int = 0
    problems: list[str] = field(default_factory=list)


class PaymentsCheck:
    def __init__(
        self,
        ledger: PaymentLedger,
        http: httpx.AsyncClient,
        statement_url: str,
        book: WorkBook,
        period: Period,
    ) -> None:
        self.ledger = ledger
        self.http = http
        self.url = statement_url
        self.book = book
        self.period = period
        self.counts = PaymentCounts()
        self.db = book.db
        self.db.executescript(_SCHEMA + "DELETE FROM stmt; DELETE FROM paid;")

    async def fetch_statements(self) -> bool:
        """Every day's statement of the period into the working file; False when a day failed."""
        complete = True
        for day in self.period.days():
            try:
                lines = await self._statement(day.isoformat())
            except (httpx.HTTPError, ValueError) as exc:
                complete = False
                problem = f"payment statement of {day.isoformat()} unavailable: {_short(exc)}"
                self.counts.problems.append(problem)
                log.warning(problem)
                continue
            self.counts.statement_days += 1
            self.db.execute("BEGIN")
            for line in lines:
                self.db.execute(
                    "INSERT OR REPLACE INTO stmt VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        line.MaThamChieu,
                        line.MaGiaoDich,
                        line.MaNganHang,
                        int(line.SoTien),
                        str(line.TrangThaiGD),
                        wire_to_local_iso(line.ThoiGianGD),
                        day.isoformat(),
                    ),
                )
                self.counts.statement_lines += 1
            self.db.execute("COMMIT")
        return complete

    async def _statement(self, day: str) -> list[StatementRow]:
        response = await self.http.get(self.url, params={"date": day, "format": "json"})
        response.raise_for_status()
        kind = response.headers.get("content-type", "")
        raw: list[Any]
        if "json" in kind:
            data = response.json()
            if not isinstance(data, list):
                raise ValueError(f"the statement is not a list of lines: {type(data).__name__}")
            raw = data
        else:  # a platform that only serves CSV
            raw = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
        lines = []
        for n, item in enumerate(raw, 1):
            try:
                lines.append(StatementRow.model_validate(item))
            except ValidationError as exc:
                self.counts.bad_lines += 1
                problem = (
                    f"statement {day} line {n}: {exc.errors()[0].get('loc')} {exc.errors()[0].get('msg')}"
                )
                self.counts.problems.append(problem)
        return lines

    def compare(self, complete: bool) -> None:
        for chunk in self._statement_pages():
            province = self.ledger.attempts_by_ref([row[0] for row in chunk])
            for ref, txn, _bank, amount, state, moment in chunk:
                self._platform_line(ref, txn, amount, state, moment, province.get(ref))
        for attempt in self.ledger.attempts_settled_between(
            self.period.since.isoformat(), self.period.until.isoformat()
        ):
            self.counts.province_attempts += 1
            if attempt["state"] != PAID_PROVINCE:
                continue
            self._paid(
                str(attempt["dossier"]),
                str(attempt["reference"]),
                attempt["settled"] or attempt["created"],
            )
            line = self.db.execute(
                "SELECT txn, amount, state, moment FROM stmt WHERE ref = ?", (attempt["reference"],)
            ).fetchone()
            if line is None and complete:
                self._add("paid_in_province_only", attempt, None, note="not on the platform's statement")
            elif line is not None and line[2] != PAID_PLATFORM:
                self._add("paid_in_province_only", attempt, _platform(attempt["reference"], *line))
        for ma_ho_so, refs, second_paid in self.db.execute(
            # one payment up front and one after processing is the plan, not a double payment
            "SELECT ma_ho_so, GROUP_CONCAT(ref, ' '), MAX(moment) FROM paid GROUP BY ma_ho_so, stage"
            " HAVING COUNT(*) > 1"
        ).fetchall():
            refs_list = sorted(str(refs).split())
            self.book.finding(
                "paid_twice", ma_ho_so, {"payments": refs_list}, None, {"payments": refs_list}, second_paid
            )
        self.book.flush()

    def _statement_pages(self, size: int = 500) -> Iterator[list[Any]]:
        last = ""
        while True:
            page = self.db.execute(
                "SELECT ref, txn, bank, amount, state, moment FROM stmt WHERE ref > ? ORDER BY ref LIMIT ?",
                (last, size),
            ).fetchall()
            if not page:
                return
            yield page
            last = page[-1][0]

    def _platform_line(
        self, ref: str, txn: str, amount: int, state: str, moment: str | None, attempt: dict[str, Any] | None
    ) -> None:
        platform = _platform(ref, txn, amount, state, moment)
        if state != PAID_PLATFORM:
            return  # pending or failed there: the province's side is checked in the second pass
        if attempt is not None:
            self._paid(str(attempt["dossier"]), ref, moment)
        if attempt is None or attempt["state"] != PAID_PROVINCE:
            self._add("paid_on_platform_only", attempt, platform, ref=ref, since=moment)
        elif int(attempt["amount"]) != int(amount):
            self._add("amount_differs", attempt, platform, since=moment)

    def _paid(self, ma_ho_so: str, ref: str, moment: str | None) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO paid VALUES (?, ?, ?, ?)", (ma_ho_so, ref, moment, stage_of(ref))
        )

    def _add(
        self,
        category: str,
        attempt: dict[str, Any] | None,
        platform: dict[str, Any] | None,
        *,
        ref: str | None = None,
        since: str | None = None,
        note: str | None = None,
    ) -> None:
        province = (
            {
                "MaThamChieu": attempt["reference"],
                "amount": attempt["amount"],
                "state": attempt["state"],
                "created": attempt["created"],
                "settled": attempt["settled"],
                "agency": attempt["agency"],
            }
            if attempt is not None
            else {"MaThamChieu": ref, "note": "no such payment attempt in the province"}
        )
        if note:
            province["note"] = note
        key = str(attempt["dossier"]) if attempt is not None else None
        first = since or (attempt or {}).get("settled") or (attempt or {}).get("created")
        self.book.finding(category, key, province, None, platform, first)


def _platform(ref: str, txn: str | None, amount: Any, state: str, moment: str | None) -> dict[str, Any]:
    return {
        "MaThamChieu": ref,
        "MaGiaoDich": txn,
        "SoTien": amount,
        "TrangThaiGD": f"{state} ({PLATFORM_STATES.get(state, '?')})",
        "ThoiGianGD": moment,
    }


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return json.dumps(text[:200], ensure_ascii=False)[1:-1]


__all__ = ["PaymentCounts", "PaymentsCheck"]
