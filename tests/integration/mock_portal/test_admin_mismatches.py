"""Planting portal-side mismatches through the admin API, for reconciliation tests: a dossier edited,
lost, its history doubled or thinned; a payment settled without its callback or with another amount;
the daily statement beside the payment API. None of it counts as a client write or request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dvcsync.contract import sign
from mock_portal.testing import run_mock_in_process

from .support import PortalClient, http_client, init_body, receiver, sample_dossier, step, wait_until

SECRET = "khoa-bi-mat-thu-nghiem"
CODE = sample_dossier(1)["MaHoSo"]
FEE = {
    "TenPhiLePhi": "Lệ phí đăng ký khai sinh",
    "MaPhiLePhi": "LP-HT-KS",
    "HinhThucThu": "3",
    "Gia": "50000",
    "LoaiPhiLePhi": "2",
}


def looked_up(portal: PortalClient, code: str = CODE) -> list[dict[str, Any]]:
    """TraCuuHoSo's ``result``: what the portal answers a client about the dossier."""
    reply = portal.call("TraCuuHoSo", mahoso=code)
    assert reply["error_code"] == 0, reply
    return list(reply["result"])


def stored(portal: PortalClient, code: str = CODE) -> dict[str, Any]:
    response = portal.admin("GET", f"/dossiers/{code}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def refused(response: httpx.Response, status: int, *words: str) -> str:
    """A 4xx answer in the admin shape: ``{"error": "..."}`` naming ``words``, never a trace."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    assert "Traceback" not in response.text
    for word in words:
        assert word in body["error"], body["error"]
    return str(body["error"])


def with_history(portal: PortalClient, status: str = "2", entries: int = 2) -> list[str]:
    """The dossier pushed, then ``entries`` history entries; their ThoiDiemXuLy in stored order."""
    assert portal.push(sample_dossier(1, status=status))["error_code"] == 0
    times = [f"2025112010{minute:02d}00" for minute in range(entries)]
    assert portal.history(*[step(CODE, "4", when) for when in times])["error_code"] == 0
    return times


def history_times(dossier: dict[str, Any]) -> list[str]:
    return [entry["ThoiDiemXuLy"] for entry in dossier["QuaTrinhXuLy"]]


# ------------------------------------------------------------------ PATCH /_admin/dossiers/{code}


def test_patch_is_what_tra_cuu_answers_and_not_a_client_write(portal: PortalClient) -> None:
    with_history(portal)
    before = stored(portal)
    calls = portal.admin("GET", "/stats").json()["total"]
    fields = {"TrangThaiHoSo": "5", "NgayHenTra": "20261201170000", "DanhSachLePhi": [FEE], "GhiChu": None}
    response = portal.admin("PATCH", f"/dossiers/{CODE}", json=fields)
    assert response.status_code == 200, response.text
    (found,) = looked_up(portal)
    assert (found["TrangThaiHoSo"], found["NgayHenTra"], found["DanhSachLePhi"]) == (
        "5",
        "20261201170000",
        [FEE],
    )
    assert "GhiChu" not in found, "null removes the field"
    assert found["ChuHoSo"] == before["ChuHoSo"] and history_times(found) == history_times(before)
    after = stored(portal)
    assert after == response.json()
    assert {k: after[k] for k in ("TrangThaiHoSo", "NgayHenTra", "DanhSachLePhi")} == {
        "TrangThaiHoSo": "5",
        "NgayHenTra": "20261201170000",
        "DanhSachLePhi": [FEE],
    }
    assert (after["writes"], after["writes_by_service"]) == (3, {"DongBoHoSoMC": 1, "CapNhatTienDoHoSoMC": 2})
    assert after["writes_by_service"] == before["writes_by_service"] and before["admin_edits"] == []
    assert [(e["action"], e["fields"]) for e in after["admin_edits"]] == [("patch", fields)]
    assert portal.admin("GET", "/dossiers").json()["items"][0]["TrangThaiHoSo"] == "5"
    assert portal.admin("GET", "/stats").json()["total"] == calls + 1, "only the TraCuuHoSo counted"


def test_patched_status_is_where_the_next_client_move_starts(portal: PortalClient) -> None:
    portal.push(sample_dossier(1, status="2"))
    assert portal.admin("PATCH", f"/dossiers/{CODE}", json={"TrangThaiHoSo": "5"}).status_code == 200
    assert portal.push(sample_dossier(1, status="9"), updating=True)["error_code"] == "4", "5 -> 9 is illegal"
    assert portal.push(sample_dossier(1, status="4"), updating=True)["error_code"] == 0, "5 -> 4 is legal"
    assert stored(portal)["writes"] == 2


@pytest.mark.parametrize(
    "body, words",
    [
        ([{"TrangThaiHoSo": "5"}], ["JSON object"]),
        ("5", ["JSON object"]),
        ({}, ["JSON object"]),
        ({"MaHoSo": "000.00.01.H40-251120-999999"}, ["MaHoSo"]),
        ({"QuaTrinhXuLy": []}, ["QuaTrinhXuLy", "history"]),
        ({"TrangThai": "5"}, ["TrangThai", "unknown field"]),
        ({"NgayHenTra": "2026-12-01"}, ["NgayHenTra"]),
        ({"TrangThaiHoSo": "99"}, ["TrangThaiHoSo"]),
        ({"ChuHoSo": None}, ["ChuHoSo"]),
    ],
)
def test_patch_refusals_change_nothing(portal: PortalClient, body: Any, words: list[str]) -> None:
    portal.push(sample_dossier(1))
    before = stored(portal)
    refused(portal.admin("PATCH", f"/dossiers/{CODE}", json=body), 400, *words)
    assert stored(portal) == before


def test_patch_unknown_dossier_and_malformed_body(portal: PortalClient) -> None:
    refused(portal.admin("PATCH", "/dossiers/NOPE", json={"TrangThaiHoSo": "5"}), 404, "NOPE")
    portal.push(sample_dossier(1))
    refused(portal.admin("PATCH", f"/dossiers/{CODE}", content=b"{oops"), 400, "not JSON")
    refused(portal.admin("PATCH", f"/dossiers/{CODE}", content=b"\xff\xfe"), 400, "not JSON")
    refused(portal.admin("PATCH", f"/dossiers/{CODE}"), 400, "JSON object")


# ------------------------------------------------------------------ DELETE /_admin/dossiers/{code}


def test_delete_loses_dossier_and_history_then_create_works_again(portal: PortalClient) -> None:
    with_history(portal)
    response = portal.admin("DELETE", f"/dossiers/{CODE}")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "MaHoSo": CODE,
        "deleted": True,
        "TrangThaiHoSo": "2",
        "history": 2,
        "writes": 3,
    }
    assert looked_up(portal) == []
    refused(portal.admin("GET", f"/dossiers/{CODE}"), 404, CODE)
    assert portal.admin("GET", "/dossiers").json()["total"] == 0

    update = portal.push(sample_dossier(1, status="4"), updating=True)
    assert update["error_code"] == "2" and update["result"][0]["error_code"] == "2", (
        "unknown: as the contract says"
    )
    assert portal.history(step(CODE))["error_code"] == "2"
    assert portal.push(sample_dossier(1, status="4"))["error_code"] == 0, "created again"
    again = stored(portal)
    assert (again["TrangThaiHoSo"], again["QuaTrinhXuLy"], again["writes"]) == ("4", [], 1)
    assert [e["action"] for e in again["admin_edits"]] == ["delete"], "the loss stays visible"
    assert looked_up(portal)[0]["QuaTrinhXuLy"] == []


def test_delete_unknown_dossier(portal: PortalClient) -> None:
    refused(portal.admin("DELETE", "/dossiers/NOPE"), 404, "NOPE")
    portal.push(sample_dossier(1))
    assert portal.admin("DELETE", f"/dossiers/{CODE}").status_code == 200
    refused(portal.admin("DELETE", f"/dossiers/{CODE}"), 404, CODE)


# ------------------------------------------------------------------ history entries


def test_duplicate_and_drop_history_entries(portal: PortalClient) -> None:
    a, b, c = with_history(portal, entries=3)
    before = stored(portal)
    doubled = portal.admin("POST", f"/dossiers/{CODE}/history/1/duplicate")
    assert doubled.status_code == 200, doubled.text
    assert history_times(doubled.json()) == [a, b, c, a], "stored again, last, as a re-send arrives"
    assert history_times(looked_up(portal)[0]) == [a, b, c, a]
    assert looked_up(portal)[0]["QuaTrinhXuLy"][3] == before["QuaTrinhXuLy"][0]

    dropped = portal.admin("DELETE", f"/dossiers/{CODE}/history/2")
    assert dropped.status_code == 200, dropped.text
    assert history_times(looked_up(portal)[0]) == history_times(stored(portal)) == [a, c, a]
    after = stored(portal)
    assert (after["writes"], after["writes_by_service"]) == (before["writes"], before["writes_by_service"])
    assert [(e["action"], e["entry"]) for e in after["admin_edits"]] == [
        ("duplicate-history", 1),
        ("drop-history", 2),
    ]
    assert portal.admin("GET", "/dossiers").json()["items"][0]["history"] == 3


@pytest.mark.parametrize("n", ["0", "x", "-1", "1.5", "99999999999"])
def test_history_entry_number_must_be_one_based(portal: PortalClient, n: str) -> None:
    with_history(portal)
    refused(portal.admin("POST", f"/dossiers/{CODE}/history/{n}/duplicate"), 400, "history entry")
    refused(portal.admin("DELETE", f"/dossiers/{CODE}/history/{n}"), 400, "history entry")
    assert len(stored(portal)["QuaTrinhXuLy"]) == 2


def test_history_entry_or_dossier_unknown(portal: PortalClient) -> None:
    with_history(portal)
    refused(portal.admin("POST", f"/dossiers/{CODE}/history/3/duplicate"), 404, "2 history entries")
    refused(portal.admin("DELETE", f"/dossiers/{CODE}/history/3"), 404, "no entry 3")
    refused(portal.admin("POST", "/dossiers/NOPE/history/1/duplicate"), 404, "NOPE")
    refused(portal.admin("DELETE", "/dossiers/NOPE/history/1"), 404, "NOPE")


# ------------------------------------------------------------------ payments


def signed_query(ref: str) -> dict[str, Any]:
    body = {
        "LoaiBanTin": "QUERY",
        "PhienBan": "1.0.6",
        "MaDoiTac": "H40-QNINH",
        "MaThamChieu": ref,
        "ThoiGianGD": "20251120093015",
    }
    body["MaXacThuc"] = sign("QUERY", body, SECRET)
    return body


def test_statement_beside_the_payment_api_is_the_admin_one(portal: PortalClient) -> None:
    http = portal.http
    for ref in ("REF-1", "REF-2", "REF-3"):
        http.post("/payment/init", json=init_body(ref))
    http.post("/_admin/payments/REF-1/pay", json={"ThoiGianGD": "20251121101500", "MaGiaoDich": "GD-1"})
    http.post("/_admin/payments/REF-2/fail", json={"ThoiGianGD": "20251121111500"})
    for day, refs in (("2025-11-21", ["REF-1", "REF-2"]), ("2025-11-20", ["REF-3"])):
        for fmt in ({"format": "json"}, {"format": "csv"}, {}):
            public = http.get("/payment/statement", params={"date": day, **fmt})
            admin = http.get("/_admin/payments/statement", params={"date": day, **fmt})
            assert public.status_code == admin.status_code == 200
            assert public.content == admin.content
            assert public.headers["content-type"] == admin.headers["content-type"]
        rows = http.get("/payment/statement", params={"date": day, "format": "json"}).json()
        assert [r["MaThamChieu"] for r in rows] == refs, "by settlement time, or creation while pending"
    for params in (
        {"date": "21/11/2025"},
        {"date": "2025-02-30"},
        {},
        {"date": "2025-11-21", "format": "xml"},
    ):
        words = ["format"] if "format" in params else ["date"]
        public_error = refused(http.get("/payment/statement", params=params), 400, *words)
        assert public_error == refused(http.get("/_admin/payments/statement", params=params), 400, *words)
    assert "/payment/statement" in http.get("/openapi.json").json()["paths"]


def test_pay_without_delivery_settles_and_no_callback_reaches_the_province() -> None:
    with (
        receiver({"MaLoi": "00", "MoTaLoi": "OK"}) as province,
        run_mock_in_process(callback_url=province.url, callback_retry_s=0.05) as mock,
        http_client(mock) as http,
    ):
        http.post("/payment/init", json=init_body("REF-1"))
        http.post("/payment/init", json=init_body("REF-2"))
        silent = http.post(
            "/_admin/payments/REF-1/pay", json={"deliver": False, "ThoiGianGD": "20251121101500"}
        )
        assert silent.status_code == 200, silent.text
        assert silent.json()["delivery"].startswith("withheld") and silent.json()["TrangThaiGD"] == "1"
        http.post("/_admin/payments/REF-2/pay", json={"ThoiGianGD": "20251121101600"})
        (delivered,) = province.wait_for(1)
        assert delivered["MaThamChieu"] == "REF-2"
        wait_until(lambda: len(http.get("/_admin/payments/REF-2").json()["deliveries"]) == 1)
        assert [c["MaThamChieu"] for c in province.received] == ["REF-2"], "REF-1's callback never sent"

        payment = http.get("/_admin/payments/REF-1").json()
        assert (payment["state"], payment["deliveries"]) == ("1", [])
        (withheld,) = payment["admin_edits"]
        assert withheld["action"] == "callback withheld" and withheld["callback"] == silent.json()["callback"]
        assert http.post("/payment/query", json=signed_query("REF-1")).json()["TrangThaiGD"] == "1"
        rows = http.get("/payment/statement", params={"date": "2025-11-21", "format": "json"}).json()
        assert [(r["MaThamChieu"], r["TrangThaiGD"]) for r in rows] == [("REF-1", "1"), ("REF-2", "1")]


@pytest.mark.parametrize(
    "body, words",
    [
        ({"deliverd": False}, ["deliverd", "unknown option"]),
        ({"deliver": "no"}, ["deliver", "true or false"]),
        ({"delay_s": -1}, ["delay_s"]),
        ({"delay_s": True}, ["delay_s"]),
        ({"MaGiaoDich": 5}, ["MaGiaoDich"]),
        ([{"deliver": False}], ["JSON object"]),
        ({"ThoiGianGD": "2025-11-21"}, ["ThoiGianGD"]),
    ],
)
def test_pay_options_refused_leave_the_payment_pending(
    portal: PortalClient, body: Any, words: list[str]
) -> None:
    portal.http.post("/payment/init", json=init_body("REF-1"))
    refused(portal.http.post("/_admin/payments/REF-1/pay", json=body), 400, *words)
    refused(portal.http.post("/_admin/payments/REF-1/fail", json=body), 400, *words)
    assert portal.http.get("/_admin/payments/REF-1").json()["state"] == "3"
    refused(portal.http.post("/_admin/payments/REF-1/pay", content=b"{oops"), 400, "not JSON")


def test_patch_amount_shows_in_statement_and_query(portal: PortalClient) -> None:
    http = portal.http
    http.post("/payment/init", json=init_body("REF-1", 8000))
    http.post("/_admin/payments/REF-1/pay", json={"ThoiGianGD": "20251121101500", "deliver": False})
    calls = http.get("/_admin/stats").json()["total"]
    response = http.patch("/_admin/payments/REF-1", json={"so_tien": 9000})
    assert response.status_code == 200, response.text
    assert response.json()["so_tien"] == 9000
    assert response.json()["admin_edits"][-1]["so_tien"] == {"from": 8000, "to": 9000}
    assert http.get("/_admin/stats").json()["total"] == calls, "not a client request"
    (row,) = http.get("/payment/statement", params={"date": "2025-11-21", "format": "json"}).json()
    assert (row["MaThamChieu"], row["SoTien"]) == ("REF-1", 9000)
    assert "REF-1,GD" in http.get("/payment/statement", params={"date": "2025-11-21"}).text
    assert ",9000," in http.get("/payment/statement", params={"date": "2025-11-21"}).text
    assert http.post("/payment/query", json=signed_query("REF-1")).json()["SoTien"] == 9000


@pytest.mark.parametrize(
    "body, words",
    [
        ({"so_tien": "9000"}, ["so_tien"]),
        ({"so_tien": -1}, ["so_tien"]),
        ({"so_tien": True}, ["so_tien"]),
        ({"so_tien": 10**20}, ["so_tien"]),
        ({"SoTien": 9000}, ["so_tien"]),
        ({"so_tien": 9000, "state": "1"}, ["so_tien"]),
        ([9000], ["so_tien"]),
    ],
)
def test_patch_amount_refusals(portal: PortalClient, body: Any, words: list[str]) -> None:
    portal.http.post("/payment/init", json=init_body("REF-1", 8000))
    refused(portal.http.patch("/_admin/payments/REF-1", json=body), 400, *words)
    assert portal.http.get("/_admin/payments/REF-1").json()["so_tien"] == 8000


def test_patch_amount_unknown_payment_or_malformed(portal: PortalClient) -> None:
    refused(portal.http.patch("/_admin/payments/NOPE", json={"so_tien": 1}), 404, "NOPE")
    refused(portal.http.patch("/_admin/payments/NOPE", content=b"{oops"), 400, "not JSON")


def test_openapi_documents_the_planting_routes(portal: PortalClient) -> None:
    paths = portal.http.get("/openapi.json").json()["paths"]
    expected = {
        ("/_admin/dossiers/{ma_ho_so}", "patch"),
        ("/_admin/dossiers/{ma_ho_so}", "delete"),
        ("/_admin/dossiers/{ma_ho_so}/history/{n}/duplicate", "post"),
        ("/_admin/dossiers/{ma_ho_so}/history/{n}", "delete"),
        ("/_admin/payments/{ref}", "patch"),
        ("/payment/statement", "get"),
    }
    for path, method in expected:
        assert paths[path][method]["summary"], (path, method)
