"""Fees collected after processing (`thu_sau`): billed when the dossier reaches its paying step,
after what is owed up front, each stage once, and the bill look-up shows the stage owed now."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from dvcsync.config import Settings
from dvcsync.mapping import load_mappings
from dvcsync.province.source import SqlSource, make_engine
from dvcsync.reconcile import Period, ReconcileOptions, reconcile
from dvcsync.reconcile.period import local_now
from dvcsync.sync.cycles import run_payments
from dvcsync.sync.payment_inbound import handle_bill_lookup
from dvcsync.sync.payment_ledger import PaymentLedger, stage_of
from dvcsync.sync.runtime import open_runtime
from mock_portal.testing import RunningMock

from .conftest import REPO

pytestmark = pytest.mark.slow


def _settings(mock: RunningMock, onestop: Path, tmp: Path) -> Settings:
    return Settings.load(
        None,
        province={"source_url": f"sqlite:///{onestop}", "mappings": str(REPO / "mappings")},
        portal={"adapter_url": mock.adapter_url, "timeout": 5.0},
        payment={
            "init_url": f"{mock.url}/payment/init",
            "query_url": f"{mock.url}/payment/query",
            "bill_url": f"{mock.url}/payment/bill",
            "poll_min_age_s": 0,
            "receipts_dir": str(tmp / "receipts"),
        },
        state={"url": f"sqlite:///{tmp / 'state.db'}"},
        reconcile={"out_dir": str(tmp / "reports")},
    )


def _fees(conn: sqlite3.Connection, hid: int, kind: str) -> tuple[int, int]:
    """(sum unpaid, sum paid) of one collection stage."""
    rows = dict(
        conn.execute(
            "SELECT da_thanh_toan, SUM(so_tien) FROM le_phi WHERE ho_so_id = ? AND hinh_thuc_thu = ?"
            " GROUP BY da_thanh_toan",
            (hid, kind),
        ).fetchall()
    )
    return int(rows.get(0, 0)), int(rows.get(1, 0))


def test_fees_after_processing_are_billed_after_those_up_front_each_once(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    started = local_now()  # the report below covers every day the test ran on, midnight or not
    settings = _settings(mock, onestop, tmp_path)
    mset = load_mappings(settings.province.mappings)
    with sqlite3.connect(onestop) as conn:
        hid, code = conn.execute(
            "SELECT h.id, h.so_ho_so FROM ho_so h WHERE h.ma_ho_so_qg IS NULL"
            " AND EXISTS (SELECT 1 FROM le_phi f WHERE f.ho_so_id = h.id AND f.hinh_thuc_thu = 'thu_truoc'"
            "   AND f.so_tien > 0)"
            " AND EXISTS (SELECT 1 FROM le_phi f WHERE f.ho_so_id = h.id AND f.hinh_thuc_thu = 'thu_sau'"
            "   AND f.so_tien > 0) ORDER BY h.id LIMIT 1"
        ).fetchone()
        conn.execute("UPDATE ho_so SET trang_thai = 'done' WHERE trang_thai = 'paying'")
        conn.execute("UPDATE ho_so SET trang_thai = 'paying' WHERE id = ?", (hid,))
        conn.execute("UPDATE le_phi SET da_thanh_toan = 0 WHERE ho_so_id = ?", (hid,))
        ahead, after = _fees(conn, hid, "thu_truoc")[0], _fees(conn, hid, "thu_sau")[0]
    assert ahead > 0 and after > 0
    ledger = PaymentLedger(make_engine(f"sqlite:///{onestop}"))
    receipt, receipt_after = mset.get("payment_receipt"), mset.get("payment_receipt_after")
    source = SqlSource(ledger.engine, mset.specs["payment_receipt"].source)  # type: ignore[arg-type]

    def bill() -> tuple[int, int]:
        raw = json.dumps({"MaHoSo": code}).encode()
        reply = handle_bill_lookup(raw, ledger, receipt, source, after=receipt_after)
        total = (
            sum(int(k["SoTien"]) for k in reply["message"]["DSKhoanNop"]) if reply["error_code"] == 1 else 0
        )
        return int(reply["error_code"]), total

    def attempts() -> list[tuple[str, int, str]]:
        with sqlite3.connect(onestop) as conn:
            return conn.execute(
                "SELECT ma_tham_chieu, so_tien, trang_thai FROM thanh_toan WHERE ho_so_id = ? AND"
                " thoi_gian_tao >= ? ORDER BY id",
                (hid, (local_now() - timedelta(hours=1)).isoformat()),
            ).fetchall()

    admin = httpx.Client(base_url=f"{mock.url}/_admin", timeout=30)
    assert bill() == (1, ahead)  # the look-up shows what is owed up front first

    # up front: one INIT for the up-front fees, paid, applied
    assert asyncio.run(run_payments(settings, mset)).initiated == 1
    [(first, amount, _)] = attempts()
    assert (amount, stage_of(first)) == (ahead, "thu_truoc")
    assert admin.post(f"/payments/{first}/pay", json={"deliver": False}).status_code == 200
    asyncio.run(run_payments(settings, mset))
    with sqlite3.connect(onestop) as conn:
        assert _fees(conn, hid, "thu_truoc") == (0, ahead) and _fees(conn, hid, "thu_sau") == (after, 0)
    assert bill() == (1, after)  # now the look-up shows what is owed after processing

    # after processing: one INIT for the thu_sau fees only, its bill those fees
    summary = asyncio.run(run_payments(settings, mset))
    assert summary.initiated == 1
    second = attempts()[-1]
    assert (second[1], stage_of(second[0])) == (after, "thu_sau")
    platform = admin.get(f"/payments/{second[0]}").json()
    items = platform["init_body"]["ThongTinBienLai"]["DSKhoanNop"]
    assert sum(int(i["SoTien"]) for i in items) == after
    assert admin.post(f"/payments/{second[0]}/pay", json={"deliver": False}).status_code == 200
    asyncio.run(run_payments(settings, mset))
    with sqlite3.connect(onestop) as conn:
        assert _fees(conn, hid, "thu_truoc") == (0, ahead) and _fees(conn, hid, "thu_sau") == (0, after)
    assert bill() == (0, 0)

    # nothing is billed again, and two stages paid once each is not "paid twice"
    for _ in range(2):
        assert asyncio.run(run_payments(settings, mset)).initiated == 0
    assert [a[2] for a in attempts()] == ["paid", "paid"]

    async def report() -> dict[str, int]:
        async with open_runtime(settings, mset) as runtime:
            period = Period(started.date(), local_now().date())
            options = ReconcileOptions(period=period, formats=["json"], portal_check="none")
            return (await reconcile(runtime, options)).report.counts

    counts = asyncio.run(report())
    assert counts["paid_twice"] == 0 and counts["paid_on_platform_only"] == 0, counts
    assert counts["paid_in_province_only"] == 0 and counts["amount_differs"] == 0, counts
    ledger.engine.dispose()
