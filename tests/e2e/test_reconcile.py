"""Reconciliation end to end: plant exactly one mismatch of every category (the mock's admin API
on the portal's side, direct edits of the sample one-stop database on the province's), find
exactly those, repair the repairable ones, and find them resolved with nothing doubled."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvcsync.config import Settings
from dvcsync.demo import new_portal_dossiers
from dvcsync.mapping import MappingSet, load_mappings
from dvcsync.reconcile import KEYS, Period, ReconcileOptions, Report, reconcile, repair, repairable
from dvcsync.reconcile.period import local_now
from dvcsync.state import StateStore
from dvcsync.sync.cycles import run_payments, run_pull, run_push
from dvcsync.sync.first_contact import HISTORY_FIELD, PORTAL_ONLY_NOTE
from dvcsync.sync.readback import describe_entry
from dvcsync.sync.runtime import open_runtime
from mock_portal.testing import RunningMock

from .conftest import REPO, seed_portal

pytestmark = pytest.mark.slow


def _settings(mock: RunningMock, onestop: Path, tmp: Path) -> Settings:
    return Settings.load(
        None,
        province={"source_url": f"sqlite:///{onestop}", "mappings": str(REPO / "mappings")},
        portal={
            "adapter_url": mock.adapter_url,
            "soap_url": f"{mock.url}/soap",
            "timeout": 5.0,
            "rate_limit": 1000,
            "concurrency": 4,
            "max_attempts": 2,
        },
        payment={
            "init_url": f"{mock.url}/payment/init",
            "query_url": f"{mock.url}/payment/query",
            "bill_url": f"{mock.url}/payment/bill",
            "poll_min_age_s": 0,
            "init_retry_after_s": 0,
            "receipts_dir": str(tmp / "receipts"),
        },
        state={"url": f"sqlite:///{tmp / 'state.db'}"},
        reconcile={"out_dir": str(tmp / "reports"), "stale_after": "24h"},
    )


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


class Province:
    """Direct edits of the sample one-stop database (what a clerk or a buggy script does)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def q(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.path) as conn:
            return conn.execute(sql, args).fetchall()

    def set(self, code: str, **values: Any) -> None:
        columns = ", ".join(f"{k} = ?" for k in values)
        with sqlite3.connect(self.path) as conn:
            conn.execute(f"UPDATE ho_so SET {columns} WHERE so_ho_so = ?", (*values.values(), code))

    def delete(self, code: str) -> None:
        with sqlite3.connect(self.path) as conn:
            (hid,) = conn.execute("SELECT id FROM ho_so WHERE so_ho_so = ?", (code,)).fetchone()
            for table in ("qua_trinh_xu_ly", "le_phi", "thanh_toan", "tai_lieu"):
                conn.execute(f"DELETE FROM {table} WHERE ho_so_id = ?", (hid,))
            conn.execute("DELETE FROM ho_so WHERE id = ?", (hid,))


PAYMENT_KEYS = ("paid_on_platform_only", "paid_in_province_only", "amount_differs", "paid_twice")


def _pick(province: Province, mock: RunningMock | None, mset: MappingSet, taken: set[str]) -> dict[str, str]:
    """Distinct dossiers of the province, each fit for the mismatch it will carry: the payers
    (before the first push: any dossier owing a fee up front), or those already on the portal."""
    mapped = set(mset.codes["procedures"])
    rows = province.q(
        "SELECT h.so_ho_so, h.trang_thai, h.ma_thu_tuc,"
        " (SELECT COUNT(*) FROM qua_trinh_xu_ly s WHERE s.ho_so_id = h.id),"
        " (SELECT COUNT(*) FROM le_phi f WHERE f.ho_so_id = h.id),"
        " (SELECT COALESCE(SUM(so_tien), 0) FROM le_phi f WHERE f.ho_so_id = h.id"
        "   AND f.hinh_thuc_thu = 'thu_truoc')"
        " - 1000000 * (SELECT COUNT(*) FROM thanh_toan t"
        "   WHERE t.ho_so_id = h.id AND t.trang_thai = 'created')"
        " FROM ho_so h WHERE h.ma_ho_so_qg IS NULL ORDER BY h.id"
    )
    stored = {str(row[0]) for row in rows}
    if mock is not None:
        stored = {
            item["MaHoSo"]
            for page in range(1, 6)
            for item in httpx.get(f"{mock.url}/_admin/dossiers", params={"page": page, "size": 1000}).json()[
                "items"
            ]
        }

    def one(status: str | None = None, steps: int = 2, fees: int = 0, ahead: int = 0) -> str:
        for code, st, proc, n_steps, n_fees, owed in rows:
            if code in taken or code not in stored or proc not in mapped:
                continue
            if (status is None or st == status) and n_steps >= steps and n_fees >= fees and owed >= ahead:
                taken.add(code)
                return str(code)
        raise AssertionError(f"the sample has no dossier with status={status} steps>={steps} fees>={fees}")

    if mock is None:
        return {key: one("done", steps=0, ahead=1) for key in PAYMENT_KEYS}
    return {
        "missing_on_portal": one(),
        "unknown_to_province": one(),
        "status_differs": one("processing"),
        "dates_differ": one(),
        "fees_differ": one(fees=1),
        "history_missing": one(steps=3),
        "history_duplicated": one(steps=2),
        "stale": one("processing"),
        "quarantined": one(),
        "dead_letter": one("done"),
        "withdrawal_conflict": one("processing"),
        "history_portal_only": one(steps=1),
    }


def _report(settings: Settings, mset: MappingSet, period: Period) -> tuple[Report, Path]:
    """A report in a dated folder under [reconcile] out_dir (so the next one compares with it)."""

    async def go() -> tuple[Report, Path]:
        async with open_runtime(settings, mset) as runtime:
            result = await reconcile(runtime, ReconcileOptions(period=period, formats=["json"]))
            return result.report, result.out_dir

    return asyncio.run(go())


def _found(report: Report) -> dict[str, list[str | None]]:
    found: dict[str, list[str | None]] = {}
    for item in report.items():
        found.setdefault(item.category, []).append(item.ma_ho_so)
    return found


def _history(mock: RunningMock, code: str) -> list[tuple[str, ...]]:
    body = httpx.get(f"{mock.url}/_admin/dossiers/{code}").json()
    return [
        tuple(str(e.get(k, "")) for k in ("ThoiDiemXuLy", "NguoiXuLy", "NoiDungXuLy", "TrangThai"))
        for e in body["QuaTrinhXuLy"]
    ]


def _payment_ref(province: Province, code: str, state: str | None = None) -> str:
    rows = province.q(
        "SELECT t.ma_tham_chieu FROM thanh_toan t JOIN ho_so h ON h.id = t.ho_so_id WHERE h.so_ho_so = ?"
        + (" AND t.trang_thai = ?" if state else "")
        + " ORDER BY t.id DESC",
        *((code, state) if state else (code,)),
    )
    return str(rows[0][0])


def test_every_category_planted_is_found_exactly_then_repaired(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    settings = _settings(mock, onestop, tmp_path)
    mset = load_mappings(settings.province.mappings)
    province = Province(onestop)
    admin = httpx.Client(base_url=f"{mock.url}/_admin", timeout=30)
    now = local_now()
    hour_ago, days_ago = _iso(now - timedelta(hours=1)), _iso(now - timedelta(days=2))
    # "the last 7 days", and the next in case the test runs past the province's midnight: what
    # the cycles stamp with the wall clock (payment attempts, pulled dossiers) stays in the period
    period = Period(now.date() - timedelta(days=7), now.date() + timedelta(days=1))

    # -- the province before the first push: only four dossiers, in "paying", owe a fee up front
    taken: set[str] = set()
    payers = _pick(province, None, mset, taken)
    marks = ", ".join("?" * len(payers))
    with sqlite3.connect(onestop) as conn:
        conn.execute(
            "UPDATE le_phi SET da_thanh_toan = 1 WHERE hinh_thuc_thu = 'thu_truoc' AND ho_so_id NOT IN"
            f" (SELECT id FROM ho_so WHERE so_ho_so IN ({marks}))",
            list(payers.values()),
        )
        conn.execute(
            "UPDATE le_phi SET da_thanh_toan = 0 WHERE hinh_thuc_thu = 'thu_truoc' AND ho_so_id IN"
            f" (SELECT id FROM ho_so WHERE so_ho_so IN ({marks}))",
            list(payers.values()),
        )
        conn.execute("UPDATE ho_so SET trang_thai = 'done' WHERE trang_thai = 'paying'")
        conn.execute(
            f"UPDATE ho_so SET trang_thai = 'paying' WHERE so_ho_so IN ({marks})", list(payers.values())
        )
    seed_portal(mock, onestop)
    asyncio.run(run_push(settings, mset))
    picks = {**_pick(province, mock, mset, taken), **payers}
    asyncio.run(run_pull(settings, mset))

    # -- every chosen dossier changed within the period, and synced (unknown_to_province: for real)
    for code in picks.values():
        province.set(code, updated_at=hour_ago)
    province.set(picks["unknown_to_province"], ghi_chu="sửa đổi", updated_at=hour_ago)
    first = asyncio.run(run_push(settings, mset))
    assert first.dead == 0

    # -- province side: quarantine, a portal refusal (done -> processing is illegal), a silent edit
    later = _iso(now - timedelta(minutes=30))
    province.set(picks["quarantined"], ma_thu_tuc="DD-HG-01", updated_at=later)
    province.set(picks["dead_letter"], trang_thai="processing", updated_at=later)
    assert asyncio.run(run_push(settings, mset)).dead >= 1
    province.set(picks["stale"], trang_thai="waiting", updated_at=days_ago)  # behind the push's cursor

    # -- portal side, through the mock's admin API
    assert admin.delete(f"/dossiers/{picks['missing_on_portal']}").status_code == 200
    province.delete(picks["unknown_to_province"])
    assert admin.patch(f"/dossiers/{picks['status_differs']}", json={"TrangThaiHoSo": "5"}).status_code == 200
    assert (
        admin.patch(f"/dossiers/{picks['dates_differ']}", json={"NgayHenTra": "20300101170000"}).status_code
        == 200
    )
    fees = admin.get(f"/dossiers/{picks['fees_differ']}").json()["DanhSachLePhi"]
    fees[0] = {**fees[0], "Gia": str(int(fees[0].get("Gia") or 0) + 5000)}
    assert admin.patch(f"/dossiers/{picks['fees_differ']}", json={"DanhSachLePhi": fees}).status_code == 200
    assert admin.delete(f"/dossiers/{picks['history_missing']}/history/2").status_code == 200
    assert admin.post(f"/dossiers/{picks['history_duplicated']}/history/1/duplicate").status_code == 200
    # a withdrawal on the portal after the province finished the dossier: a conflict for the pull
    assert admin.post(f"/dossiers/{picks['withdrawal_conflict']}/withdraw").status_code == 200
    province.set(
        picks["withdrawal_conflict"], trang_thai="done", updated_at=_iso(now - timedelta(minutes=10))
    )
    asyncio.run(run_pull(settings, mset))
    # an entry only the portal holds, found when the dossier was read back at first contact (a
    # previous integration wrote it): recorded in the state as the read-back records it
    store = StateStore(settings.state.url)
    try:
        entry = {"ThoiDiemXuLy": now.strftime("%Y%m%d%H%M%S"), "NguoiXuLy": "Hệ thống cũ", "TrangThai": "4"}
        store.record_conflict(
            picks["history_portal_only"], HISTORY_FIELD, None, describe_entry(entry), PORTAL_ONLY_NOTE
        )
    finally:
        store.close()
    # a dossier submitted on the portal after the last pull
    newcomer = new_portal_dossiers(mset, 1, now=now)[0]  # dated within the period, whatever the day
    newcomer["MaHoSo"] = "G22.RECON-000001"
    assert admin.post("/portal-dossiers", params={"push": "false"}, json=newcomer).status_code == 201

    # -- payments: four attempts (INIT), settled four different ways
    asyncio.run(run_payments(settings, mset))
    refs = {
        k: _payment_ref(province, picks[k])
        for k in ("paid_on_platform_only", "paid_in_province_only", "amount_differs", "paid_twice")
    }
    for key in ("amount_differs", "paid_twice"):
        assert admin.post(f"/payments/{refs[key]}/pay", json={"deliver": False}).status_code == 200
    asyncio.run(run_payments(settings, mset))  # QUERY applies both
    assert province.q("SELECT trang_thai FROM thanh_toan WHERE ma_tham_chieu = ?", refs["paid_twice"]) == [
        ("paid",)
    ]
    with sqlite3.connect(onestop) as conn:  # the dossier owes again: a second attempt, paid too
        conn.execute(
            "UPDATE le_phi SET da_thanh_toan = 0 WHERE hinh_thuc_thu = 'thu_truoc' AND ho_so_id ="
            " (SELECT id FROM ho_so WHERE so_ho_so = ?)",
            (picks["paid_twice"],),
        )
    asyncio.run(run_payments(settings, mset))
    second = _payment_ref(province, picks["paid_twice"], "created")
    assert admin.post(f"/payments/{second}/pay", json={"deliver": False}).status_code == 200
    asyncio.run(run_payments(settings, mset))
    amount = province.q("SELECT so_tien FROM thanh_toan WHERE ma_tham_chieu = ?", refs["amount_differs"])[0][
        0
    ]
    assert (
        admin.patch(f"/payments/{refs['amount_differs']}", json={"so_tien": amount + 1000}).status_code == 200
    )
    assert (
        admin.post(f"/payments/{refs['paid_on_platform_only']}/pay", json={"deliver": False}).status_code
        == 200
    )
    with sqlite3.connect(onestop) as conn:  # a clerk marks paid what the platform never settled
        conn.execute(
            "UPDATE thanh_toan SET trang_thai = 'paid', thoi_gian_ket_qua = ? WHERE ma_tham_chieu = ?",
            (_iso(now), refs["paid_in_province_only"]),
        )

    # -- the first report: exactly the planted mismatches
    expected = {**picks, "portal_dossier_not_taken_in": newcomer["MaHoSo"]}
    report, out1 = _report(settings, mset, period)
    found = _found(report)
    assert found == {key: [expected[key]] for key in KEYS}, json.dumps(found, ensure_ascii=False, indent=1)
    assert report.counts == dict.fromkeys(KEYS, 1)
    document = json.loads((out1 / "reconcile.json").read_text(encoding="utf-8"))
    assert set(document) >= {"period", "counts", "items", "resolved_since_last"}
    by_category = {item["category"]: item for item in document["items"]}
    assert by_category["quarantined"]["state"]["errors"][0]["field"] == "MaTTHC"
    assert by_category["status_differs"]["portal"] == {"TrangThaiHoSo": "5"}
    assert by_category["history_duplicated"]["portal"]["duplicated"][0]["times"] == 1
    assert by_category["amount_differs"]["portal"]["SoTien"] == amount + 1000
    assert sorted(by_category["paid_twice"]["province"]["payments"]) == sorted([refs["paid_twice"], second])
    for item in document["items"]:
        assert item["repair"] == (
            f"dvcsync reconcile repair {item['category']}" if item["category"] in repairable() else None
        )
        assert item["since"], item
        owner = (item["province"] or {}).get("owner")
        assert owner is None or "*" in owner  # personal data masked by default

    # -- repairs (the dead letter's cause fixed in the province first, as the report says to)
    province.set(picks["dead_letter"], trang_thai="done")
    history_before = {k: _history(mock, picks[k]) for k in ("history_missing", "history_duplicated")}

    async def repair_all() -> dict[str, Any]:
        async with open_runtime(settings, mset) as runtime:
            return {key: await repair(runtime, key, out1 / "reconcile.json") for key in repairable()}

    results = asyncio.run(repair_all())
    for key, result in results.items():
        assert [o.ma_ho_so for o in result.outcomes] == [expected[key]], key
        assert result.acted == 1, (key, result.outcomes)
    writes = ("DongBoHoSoMC", "CapNhatTienDoHoSoMC", "payment")

    def written() -> dict[str, Any]:
        services = httpx.get(f"{mock.url}/_admin/stats").json()["services"]
        return {name: services.get(name) for name in writes}

    after_repair = written()
    again = asyncio.run(repair_all())  # the same report repaired twice: nothing sent twice
    assert all(r.acted == 0 for r in again.values()), again
    assert written() == after_repair

    # -- the portal holds every repaired dossier once, with each history entry once
    def steps_of(code: str) -> int:
        query = (
            "SELECT COUNT(*) FROM qua_trinh_xu_ly s JOIN ho_so h ON h.id = s.ho_so_id WHERE h.so_ho_so = ?"
        )
        return int(province.q(query, code)[0][0])

    held = _history(mock, picks["history_missing"])
    assert len(held) == len(set(held)) == steps_of(picks["history_missing"]), held
    assert len(held) == len(history_before["history_missing"]) + 1  # only the one lost entry sent
    restored = _history(mock, picks["missing_on_portal"])
    assert len(restored) == len(set(restored)) == steps_of(picks["missing_on_portal"])
    # not repairable by dvcsync: the portal's duplicate is left as it was
    assert _history(mock, picks["history_duplicated"]) == history_before["history_duplicated"]
    portal = {
        k: admin.get(f"/dossiers/{picks[k]}").json() for k in ("status_differs", "dates_differ", "stale")
    }
    assert portal["status_differs"]["TrangThaiHoSo"] == "4"
    assert portal["dates_differ"]["NgayHenTra"] != "20300101170000"
    assert portal["stale"]["TrangThaiHoSo"] == "5"

    # -- the second report: the repaired categories resolved, the others still open
    report2, _ = _report(settings, mset, period)
    found2 = _found(report2)
    left = [k for k in KEYS if k not in repairable()]
    assert found2 == {key: [expected[key]] for key in left}, json.dumps(found2, ensure_ascii=False, indent=1)
    resolved = {(d["category"], d["ma_ho_so"]) for d in report2.resolved_since_last}
    assert resolved == {(key, expected[key]) for key in repairable()}
    assert report2.previous == report.period["generated_at"]
    assert report2.new_since_last == []
