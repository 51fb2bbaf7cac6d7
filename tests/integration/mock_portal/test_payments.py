"""The payment platform end to end: INIT, pay page, settlement, signed callbacks, QUERY, GET_BILL,
statement, with the golden signature vectors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvcsync.contract import InitReply, PaymentCallback, QueryReply, parse_init_reply, sign, verify
from mock_portal.testing import InProcessMock, run_mock_in_process

from .support import PortalClient, http_client, init_body, receiver, wait_until

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
VECTORS = {
    v["message"] + ("_FAILED" if v["fields"].get("MaLoi") == "01" else ""): v
    for v in json.loads((FIXTURES / "ma-xac-thuc-vectors.json").read_text(encoding="utf-8"))["vectors"]
}
SECRET = "khoa-bi-mat-thu-nghiem"


def signed(kind: str, ref: str, when: str = "20251120093015") -> dict[str, Any]:
    body = {
        "LoaiBanTin": kind,
        "PhienBan": "1.0.6",
        "MaDoiTac": "H40-QNINH",
        "MaThamChieu": ref,
        "ThoiGianGD": when,
    }
    body["MaXacThuc"] = sign(kind, body, SECRET)  # type: ignore[arg-type]
    return body


def vector_init() -> dict[str, Any]:
    v = VECTORS["INIT"]
    body = {**v["fields"], "MaXacThuc": v["MaXacThuc"]}
    body["ThongTinBienLai"] = {
        "MaDichVu": "2",
        "MaHoSo": "000.00.01.H40-191209-0001",
        "DSKhoanNop": [{"NoiDung": "Lệ phí", "SoTien": "5000"}, {"NoiDung": "Phí", "SoTien": "3000"}],
    }
    return body


def test_vectors_init_query_bill_and_callbacks(mock: InProcessMock) -> None:
    with receiver({"MaLoi": "00", "MoTaLoi": "OK"}) as province:
        mock.config.callback_url = province.url
        http = http_client(mock)
        ref = VECTORS["INIT"]["fields"]["MaThamChieu"]
        reply = InitReply.model_validate(http.post("/payment/init", json=vector_init()).json())
        result = reply.result()
        assert reply.error_code == "0" and result.MaLoi == "00" and result.MaThamChieu == ref
        assert result.UrlThanhToan == f"{mock.url}/payment/pay/{ref}"

        q = VECTORS["QUERY"]
        pending = QueryReply.model_validate(
            http.post("/payment/query", json={**q["fields"], "MaXacThuc": q["MaXacThuc"]}).json()
        )
        assert pending.MaLoi == "00" and pending.TrangThaiGD == "3" and pending.SoTien == 8000

        cb = VECTORS["CALLBACK"]["fields"]
        paid = http.post(
            f"/_admin/payments/{ref}/pay",
            json={
                "MaNganHang": cb["MaNganHang"],
                "MaGiaoDich": cb["MaGiaoDich"],
                "ThoiGianGD": cb["ThoiGianGD"],
            },
        )
        assert paid.status_code == 200
        (delivered,) = province.wait_for(1)
        assert delivered == {**cb, "MaXacThuc": VECTORS["CALLBACK"]["MaXacThuc"]}, (
            "exactly the golden callback"
        )
        assert PaymentCallback.model_validate(delivered).has_valid_signature(SECRET)

        after = QueryReply.model_validate(
            http.post("/payment/query", json={**q["fields"], "MaXacThuc": q["MaXacThuc"]}).json()
        )
        assert after.TrangThaiGD == "1" and after.MaGiaoDich == cb["MaGiaoDich"]

        b = VECTORS["GET_BILL"]
        pdf = http.post("/payment/bill", json={**b["fields"], "MaXacThuc": b["MaXacThuc"]})
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF-1.4") and pdf.content.rstrip().endswith(b"%%EOF")
        assert cb["MaGiaoDich"].encode() in pdf.content and b"8000 VND" in pdf.content
        xref = int(pdf.content.rsplit(b"startxref", 1)[1].split()[0])
        assert pdf.content[xref : xref + 4] == b"xref", "the cross-reference offset is right"
        http.close()


def test_failed_payment_callback_matches_vector(mock: InProcessMock) -> None:
    with receiver({"MaLoi": "00"}) as province:
        mock.config.callback_url = province.url
        http = http_client(mock)
        assert parse_init_reply(http.post("/payment/init", json=vector_init()).json()).MaLoi == "00"
        v = VECTORS["CALLBACK_FAILED"]
        ref = v["fields"]["MaThamChieu"]
        http.post(
            f"/_admin/payments/{ref}/fail",
            json={
                "MaNganHang": "VCB",
                "MaGiaoDich": v["fields"]["MaGiaoDich"],
                "ThoiGianGD": v["fields"]["ThoiGianGD"],
                "ThongTinGiaoDich": v["fields"]["ThongTinGiaoDich"],
            },
        )
        (delivered,) = province.wait_for(1)
        assert delivered["MaLoi"] == "01" and delivered["MaXacThuc"] == v["MaXacThuc"]
        query = http.post("/payment/query", json=signed("QUERY", ref, "20191209093015")).json()
        assert query["TrangThaiGD"] == "4"
        refused = http.post("/payment/bill", json=signed("GET_BILL", ref, "20191209093015")).json()
        assert refused["MaLoi"] == "07"
        assert http.post(f"/_admin/payments/{ref}/pay").status_code == 409
        http.close()


@pytest.mark.parametrize(
    "change, code",
    [
        ({"MaXacThuc": "0" * 64}, "02"),
        ({"SoTien": "9000"}, "02"),
        ({"MaDoiTac": "H99"}, "03"),
        ({"ThoiGianGD": "2025-11-20"}, "01"),
        ({"ThongTinGiaoDich": "THANH TOÁN"}, "01"),
    ],
)
def test_init_refusals(http: httpx.Client, change: dict[str, str], code: str) -> None:
    body = {**init_body("REF-1"), **change}
    result = parse_init_reply(http.post("/payment/init", json=body).json())
    assert result.MaLoi == code and result.MoTaLoi


def test_amount_must_add_up_and_reference_is_unique(http: httpx.Client) -> None:
    url = "/payment/init"
    mismatch = parse_init_reply(http.post(url, json=init_body("REF-1", 10000, items=[6000, 3000])).json())
    assert mismatch.MaLoi == "05" and "9000" in mismatch.MoTaLoi
    assert (
        parse_init_reply(http.post(url, json=init_body("REF-2", 10000, items=[6000, 4000])).json()).MaLoi
        == "00"
    )
    assert (
        parse_init_reply(http.post(url, json=init_body("REF-2", 10000, items=[6000, 4000])).json()).MaLoi
        == "04"
    )
    no_bill = {k: v for k, v in init_body("REF-3").items() if k != "ThongTinBienLai"}
    assert parse_init_reply(http.post(url, json=no_bill).json()).MaLoi == "01"
    garbage = http.post(url, content=b"{oops").json()
    assert garbage["error_code"] == "1"


def test_flat_reply_form_and_pay_page() -> None:
    with (
        receiver({"MaLoi": "00"}) as province,
        run_mock_in_process(payment_reply_form="flat", callback_url=province.url) as mock,
    ):
        http = http_client(mock)
        flat = http.post("/payment/init", json=init_body("REF-9")).json()
        assert flat["MaLoi"] == "00" and "error_code" not in flat
        page = http.get(flat["UrlThanhToan"])
        assert page.status_code == 200 and "REF-9" in page.text and "8,000" in page.text
        done = http.post(
            flat["UrlThanhToan"],
            content=b"outcome=pay",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200 and "thành công" in done.text
        (callback,) = province.wait_for(1)
        assert callback["MaLoi"] == "00" and verify("CALLBACK", callback, SECRET, callback["MaXacThuc"])
        assert http.get("/payment/pay/NOPE").status_code == 404
        http.close()


def test_callback_retries_until_acknowledged_then_duplicate_and_late() -> None:
    answers: list[tuple[int, Any]] = [(500, b"oops"), (200, {"MaLoi": "99", "MoTaLoi": "sai chu ky"})]
    with (
        receiver({"MaLoi": "00"}, answers=answers) as province,
        run_mock_in_process(
            callback_url=province.url, callback_retry_s=0.05, callback_type="PAYMENT_RESULT"
        ) as mock,
    ):
        http = http_client(mock)
        http.post("/payment/init", json=init_body("REF-1"))
        http.post("/_admin/payments/REF-1/pay", json={"duplicate": True})
        received = province.wait_for(4)
        assert all(r == received[0] for r in received) and received[0]["LoaiBanTin"] == "PAYMENT_RESULT"
        assert verify("CALLBACK", received[0], SECRET, received[0]["MaXacThuc"])

        def recorded() -> list[dict[str, Any]]:
            return list(http.get("/_admin/payments/REF-1").json()["deliveries"])

        wait_until(lambda: len(recorded()) == 4)
        assert [d["acknowledged"] for d in recorded()] == [False, False, True, True]
        assert recorded()[-1]["duplicate"] is True

        http.post("/payment/init", json=init_body("REF-2"))
        http.post("/_admin/payments/REF-2/pay", json={"delay_s": 1.5})
        assert len(province.received) == 4, "late delivery: nothing yet"
        assert province.wait_for(5)[4]["MaThamChieu"] == "REF-2"
        http.close()


def test_query_and_bill_refusals(mock: InProcessMock) -> None:
    http = http_client(mock)
    assert http.post("/payment/query", json=signed("QUERY", "NOPE")).json()["MaLoi"] == "06"
    bad = {**signed("QUERY", "NOPE"), "MaXacThuc": "f" * 64}
    assert http.post("/payment/query", json=bad).json()["MaLoi"] == "02"
    assert http.post("/payment/query", json=signed("GET_BILL", "NOPE")).json()["MaLoi"] == "01"
    assert http.post("/payment/bill", json=signed("GET_BILL", "NOPE")).json()["MaLoi"] == "06"
    assert http.post("/_admin/payments/NOPE/pay").status_code == 404
    http.close()


def test_statement_csv_and_json(portal: PortalClient) -> None:
    http = portal.http
    for ref in ("REF-1", "REF-2", "REF-3"):
        http.post("/payment/init", json=init_body(ref))
    http.post("/_admin/payments/REF-1/pay", json={"ThoiGianGD": "20251121101500", "MaGiaoDich": "GD-1"})
    http.post("/_admin/payments/REF-2/fail", json={"ThoiGianGD": "20251121111500"})
    rows = http.get("/_admin/payments/statement", params={"date": "2025-11-21", "format": "json"}).json()
    assert [(r["MaThamChieu"], r["TrangThaiGD"]) for r in rows] == [("REF-1", "1"), ("REF-2", "4")]
    text = http.get("/_admin/payments/statement", params={"date": "2025-11-21"}).text
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert parsed[0] == {
        "MaThamChieu": "REF-1",
        "MaGiaoDich": "GD-1",
        "MaNganHang": "NCB",
        "SoTien": "8000",
        "MaTienTe": "VND",
        "ThoiGianGD": "20251121101500",
        "TrangThaiGD": "1",
        "MaDoiTac": "H40-QNINH",
    }
    pending = http.get("/_admin/payments/statement", params={"date": "2025-11-20", "format": "json"}).json()
    assert [r["MaThamChieu"] for r in pending] == ["REF-3"] and pending[0]["TrangThaiGD"] == "3"
    assert http.get("/_admin/payments/statement", params={"date": "21/11/2025"}).status_code == 400
