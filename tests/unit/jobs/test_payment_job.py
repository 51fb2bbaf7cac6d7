"""PaymentJob against the mock payment platform in process: INIT once for a dossier asking for
payment, the paid result found by QUERY applied to the province once, the receipt saved once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from dvcsync.province.source import make_engine
from dvcsync.sync.payments import PaymentJob, PaymentSummary

from .conftest import Rig, admin, job_settings

CHANGED_AT = "2026-01-02T03:04:05"


def _make_paying(rig: Rig) -> tuple[str, int]:
    """The first dossier with fees up front now asks for payment, those fees unpaid, no attempts;
    (so_ho_so, amount)."""
    [(dossier_id, code), *_] = rig.province(
        "SELECT h.id, h.so_ho_so FROM ho_so h WHERE EXISTS (SELECT 1 FROM le_phi l WHERE l.ho_so_id = h.id"
        " AND l.hinh_thuc_thu = 'thu_truoc' AND l.so_tien > 0) ORDER BY h.id"
    )
    rig.province_execute(
        "UPDATE ho_so SET trang_thai = 'paying', updated_at = ? WHERE id = ?", CHANGED_AT, dossier_id
    )
    rig.province_execute("UPDATE le_phi SET da_thanh_toan = 0 WHERE ho_so_id = ?", dossier_id)
    rig.province_execute("DELETE FROM thanh_toan WHERE ho_so_id = ?", dossier_id)
    [(amount,)] = rig.province(
        "SELECT SUM(so_tien) FROM le_phi WHERE ho_so_id = ? AND hinh_thuc_thu = 'thu_truoc'", dossier_id
    )
    return str(code), int(amount)


def _attempts(rig: Rig, code: str) -> list[tuple[Any, ...]]:
    return rig.province(
        "SELECT t.ma_tham_chieu, t.trang_thai, t.so_tien, t.ma_giao_dich, t.bien_lai FROM thanh_toan t"
        " JOIN ho_so h ON h.id = t.ho_so_id WHERE h.so_ho_so = ? ORDER BY t.id",
        code,
    )


def _unpaid(rig: Rig, code: str) -> int:
    [(count,)] = rig.province(
        "SELECT COUNT(*) FROM le_phi l JOIN ho_so h ON h.id = l.ho_so_id WHERE h.so_ho_so = ?"
        " AND l.hinh_thuc_thu = 'thu_truoc' AND l.da_thanh_toan = 0",
        code,
    )
    return int(count)


async def _cycle(rig: Rig, http: httpx.AsyncClient, **payment: Any) -> PaymentSummary:
    settings = job_settings(rig.tmp, rig.onestop, **payment)
    engine = make_engine(settings.province.effective_sink_url)
    try:
        return await PaymentJob(settings, rig.mappings, engine, http).run_cycle()
    finally:
        engine.dispose()


def test_a_paid_result_is_applied_once_and_its_receipt_saved_once(rig: Rig) -> None:
    code, amount = _make_paying(rig)

    async def scenario() -> list[PaymentSummary]:
        async with rig.http() as http:
            asked = await _cycle(rig, http, poll_min_age_s=3600)  # INIT only: too young to QUERY
            [(ref, *_)] = _attempts(rig, code)
            # the citizen pays; the callback never reaches the province (none configured)
            await admin(http, "POST", f"/payments/{ref}/pay", json={"deliver": False})
            polled = await _cycle(rig, http, poll_min_age_s=0)
            rest = await _cycle(rig, http, poll_min_age_s=0)
        return [asked, polled, rest]

    asked, polled, rest = asyncio.run(scenario())
    assert (asked.initiated, asked.polled, asked.errors) == (1, 0, 0), asked.problems
    assert (polled.initiated, polled.polled, polled.paid, polled.receipts, polled.errors) == (
        0,
        1,
        1,
        1,
        0,
    ), polled.problems
    [(ref, state, asked_amount, transaction, receipt)] = _attempts(rig, code)
    assert (state, asked_amount) == ("paid", amount) and transaction
    assert _unpaid(rig, code) == 0
    assert receipt == str(rig.tmp / "receipts" / f"{ref}.pdf")
    assert (rig.tmp / "receipts" / f"{ref}.pdf").read_bytes().startswith(b"%PDF")
    [(updated_at,)] = rig.province("SELECT updated_at FROM ho_so WHERE so_ho_so = ?", code)
    assert (
        updated_at > CHANGED_AT
    )  # the province saw the payment as a change (the next push tells the portal)
    # nothing left to do: no second INIT, QUERY, application or receipt
    assert (rest.initiated, rest.polled, rest.paid, rest.receipts, rest.errors) == (0, 0, 0, 0, 0)
    assert _attempts(rig, code) == [(ref, state, asked_amount, transaction, receipt)]


def test_a_failed_payment_leaves_the_fees_unpaid(rig: Rig) -> None:
    code, _ = _make_paying(rig)

    async def scenario() -> PaymentSummary:
        async with rig.http() as http:
            await _cycle(rig, http, poll_min_age_s=3600)
            [(ref, *_)] = _attempts(rig, code)
            await admin(http, "POST", f"/payments/{ref}/fail", json={"deliver": False})
            return await _cycle(rig, http, poll_min_age_s=0)

    polled = asyncio.run(scenario())
    assert (polled.polled, polled.failed, polled.paid, polled.receipts) == (1, 1, 0, 0), polled.problems
    assert [state for _, state, *_ in _attempts(rig, code)] == ["failed"]
    assert _unpaid(rig, code) > 0
