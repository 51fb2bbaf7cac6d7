"""Payments against statements the platform serves badly: a day that cannot be read, a line that
does not parse, a statement only in CSV. Scripted answers (httpx.MockTransport) are the point here:
the mock platform serves only well-formed statements."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import date
from pathlib import Path

import httpx

from dvcsync.province.sample import generate
from dvcsync.province.source import make_engine
from dvcsync.reconcile.payments_check import PaymentsCheck
from dvcsync.reconcile.period import Period
from dvcsync.reconcile.workbook import WorkBook
from dvcsync.sync.payment_ledger import PaymentLedger

DAY = date(2026, 11, 20)
URL = "http://platform.test/payment/statement"


def _province(tmp_path: Path) -> tuple[Path, str, int]:
    """A sample with one attempt the province holds paid on DAY (its reference and amount)."""
    path = tmp_path / "onestop.db"
    generate(path, 40, 3)
    with sqlite3.connect(path) as conn:
        ref, amount = conn.execute(
            "SELECT ma_tham_chieu, so_tien FROM thanh_toan ORDER BY id LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE thanh_toan SET trang_thai = 'paid', thoi_gian_ket_qua = ? WHERE ma_tham_chieu = ?",
            (f"{DAY.isoformat()}T10:00:00", ref),
        )
    return path, str(ref), int(amount)


def _check(tmp_path: Path, path: Path, handler: object) -> tuple[PaymentsCheck, WorkBook, bool]:
    book = WorkBook(tmp_path / "work.sqlite", "s")
    ledger = PaymentLedger(make_engine(f"sqlite:///{path}"))

    async def go() -> tuple[PaymentsCheck, bool]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:  # type: ignore[arg-type]
            check = PaymentsCheck(ledger, http, URL, book, Period(DAY, DAY))
            complete = await check.fetch_statements()
            check.compare(complete)
            return check, complete

    check, complete = asyncio.run(go())
    ledger.engine.dispose()
    return check, book, complete


def test_a_day_without_a_statement_lists_no_payment_as_paid_in_the_province_only(tmp_path: Path) -> None:
    path, _, _ = _province(tmp_path)
    check, book, complete = _check(tmp_path, path, lambda request: httpx.Response(503, text="maintenance"))
    assert not complete
    assert book.counts()["paid_in_province_only"] == 0  # without the statement nobody can say
    assert len(check.counts.problems) == 1
    assert "2026-11-20 unavailable" in check.counts.problems[0] and "503" in check.counts.problems[0]
    book.close(finished=True)


def test_a_csv_statement_and_a_bad_line_are_read_the_rest_compared(tmp_path: Path) -> None:
    path, ref, amount = _province(tmp_path)
    header = "MaThamChieu,MaGiaoDich,MaNganHang,SoTien,MaTienTe,ThoiGianGD,TrangThaiGD,MaDoiTac"
    csv_text = (
        f"\ufeff{header}\n"
        f"{ref},GD1,NCB,{amount + 1000},VND,20261120100000,1,H40\n"  # paid there, another amount
        "R-BAD,GD2,NCB,not-a-number,VND,20261120100000,1,H40\n"
    )

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["date"] == DAY.isoformat()
        return httpx.Response(200, text=csv_text, headers={"content-type": "text/csv; charset=utf-8"})

    check, book, complete = _check(tmp_path, path, handler)
    assert complete and check.counts.statement_lines == 1 and check.counts.bad_lines == 1
    assert "line 2" in check.counts.problems[0] and "SoTien" in check.counts.problems[0]
    [item] = list(book.items())
    assert item.category == "amount_differs" and item.portal is not None
    assert item.portal["SoTien"] == amount + 1000 and json.dumps(item.province).count(ref) == 1
    book.close(finished=True)
