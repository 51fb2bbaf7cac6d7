"""The two endpoints the platform calls, over real HTTP: refused callbacks change nothing and are
recorded; the published signature vectors are accepted; the bill look-up's three answers."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvcsync.contract import PaymentCallback, now_wire
from dvcsync.mapping import MappingSet

from .conftest import LOOKUP_PATH, REPO, Env, Province, make_settings, served

VECTORS = json.loads((REPO / "tests/fixtures/ma-xac-thuc-vectors.json").read_text(encoding="utf-8"))[
    "vectors"
]


def _attempt(env: Env, index: int, ref: str | None = None, amount: int | None = None) -> tuple[str, str, int]:
    """A dossier awaiting payment with one ``created`` attempt written straight into the province."""
    code, owed = env.province.make_paying(index)
    ref = ref or f"{code}-TTTEST{index:04d}"
    amount = owed if amount is None else amount
    env.province.execute(
        "INSERT INTO thanh_toan (ho_so_id, ma_tham_chieu, so_tien, trang_thai, thoi_gian_tao)"
        " SELECT id, ?, ?, 'created', '2026-01-02T03:04:05' FROM ho_so WHERE so_ho_so = ?",
        ref,
        amount,
        code,
    )
    return code, ref, amount


def _callback(
    ref: str, amount: int, secret: str = "khoa-bi-mat-thu-nghiem", **changes: Any
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "MaLoi": "00",
        "MaDoiTac": "H40-QNINH",
        "MaThamChieu": ref,
        "SoTien": amount,
        "MaGiaoDich": "GD-TEST-1",
        "MaNganHang": "NCB",
        "ThoiGianGD": now_wire(),
        "ThongTinGiaoDich": "Thanh toan ho so",
        **changes,
    }
    return PaymentCallback(**fields).signed(secret).to_wire()


def _refusals(env: Env) -> list[tuple[str, int, str]]:
    with sqlite3.connect(env.state) as conn:
        return conn.execute(
            "SELECT reason, count, last_error FROM inbound_refusal WHERE kind = 'payment_result'"
            " ORDER BY reason"
        ).fetchall()


def _post(env: Env, body: Any) -> dict[str, Any]:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(env.callback_url, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    reply: dict[str, Any] = response.json()
    assert "Traceback" not in response.text
    return reply


def test_forged_signature_is_refused_and_changes_nothing(env: Env) -> None:
    code, ref, amount = _attempt(env, 0)
    before = env.province.snapshot(code)
    forged = _callback(ref, amount, secret="khoa-doan-mo")
    reply = _post(env, forged)
    assert reply["MaLoi"] == "99" and "MaXacThuc" in reply["MoTaLoi"]
    assert reply["MaXacThuc"] == forged["MaXacThuc"]
    tampered = {**_callback(ref, amount), "MaGiaoDich": "GD-KHAC"}  # genuine signature, field changed
    assert _post(env, tampered)["MaLoi"] == "99"
    assert env.province.snapshot(code) == before
    # counted per caller and reason (inbound_refusal), not stored in the inbox (issue 20 item 7)
    assert env.inbox() == []
    [(reason, count, error)] = _refusals(env)
    assert (reason, count) == ("bad_signature", 2) and "MaXacThuc" in error
    # The genuine one still goes through afterwards: refusals never shadow it.
    assert _post(env, _callback(ref, amount))["MaLoi"] == "00"
    assert env.province.attempts(code)[0]["trang_thai"] == "paid"


def test_wrong_amount_is_refused_and_changes_nothing(env: Env) -> None:
    code, ref, amount = _attempt(env, 1)
    before = env.province.snapshot(code)
    reply = _post(env, _callback(ref, amount - 1000))
    assert reply["MaLoi"] == "99" and "SoTien" in reply["MoTaLoi"]
    assert env.province.snapshot(code) == before
    assert [(r, n) for r, n, _ in _refusals(env)] == [("wrong_amount", 1)]


def test_unknown_reference_and_foreign_partner_are_refused(env: Env) -> None:
    code, ref, amount = _attempt(env, 2)
    before = env.province.snapshot(code)
    unknown = _post(env, _callback("KHONG-CO-GIAO-DICH-NAY", amount))
    assert unknown["MaLoi"] == "99" and "KHONG-CO-GIAO-DICH-NAY" in unknown["MoTaLoi"]
    foreign = _post(env, _callback(ref, amount, MaDoiTac="H99-KHAC"))
    assert foreign["MaLoi"] == "99" and "MaDoiTac" in foreign["MoTaLoi"]
    assert env.province.snapshot(code) == before
    assert [(r, n) for r, n, _ in _refusals(env)] == [("unknown_reference", 1), ("wrong_partner", 1)]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", json.dumps({"MaLoi": "00"}).encode(), json.dumps({"SoTien": "abc"}).encode()],
)
def test_malformed_callbacks_get_99_with_a_reason(env: Env, body: bytes) -> None:
    reply = _post(env, body)
    assert reply["MaLoi"] == "99" and reply["MoTaLoi"]


def test_failed_result_never_overwrites_paid(env: Env) -> None:
    code, ref, amount = _attempt(env, 3)
    assert _post(env, _callback(ref, amount))["MaLoi"] == "00"
    before = env.province.snapshot(code)
    assert _post(env, _callback(ref, amount, MaLoi="01", MaGiaoDich=""))["MaLoi"] == "00"
    assert env.province.snapshot(code) == before
    assert env.province.attempts(code)[0]["trang_thai"] == "paid"
    # not applied, but not lost either: a conflict for the reconciler
    from dvcsync.state import StateStore

    [conflict] = StateStore(env.settings.state.url).conflicts()
    assert (conflict["record_key"], conflict["province_value"]) == (code, "paid")
    assert conflict["portal_value"].startswith("failed") and ref in conflict["field"]


def test_published_signature_vectors_are_accepted(tmp_path: Path, sample: Path, mappings: MappingSet) -> None:
    """The contract's callback vectors, sent as they are, verify under the vector's secret and
    partner code: the failed one then the paid one apply to an attempt of that reference."""
    callbacks = [v for v in VECTORS if v["message"] == "CALLBACK"]
    assert {v["fields"]["MaLoi"] for v in callbacks} == {"00", "01"}
    ref = callbacks[0]["fields"]["MaThamChieu"]
    amount = int(callbacks[0]["fields"]["SoTien"])
    onestop = tmp_path / "onestop.db"
    shutil.copy(sample, onestop)
    settings = make_settings(
        tmp_path,
        onestop,
        secret=callbacks[0]["secret"],
        partner_code=callbacks[0]["fields"]["MaDoiTac"],
    )
    with served(settings, mappings) as url:
        env = Env(url, Province(onestop), settings, mappings, tmp_path / "state.db", tmp_path)
        code, _, _ = _attempt(env, 0, ref=ref, amount=amount)
        for vector in sorted(callbacks, key=lambda v: v["fields"]["MaLoi"] == "00"):
            body = {**vector["fields"], "MaXacThuc": vector["MaXacThuc"]}
            reply = _post(env, body)
            assert reply["MaLoi"] == "00", reply
            assert reply["MaXacThuc"] == vector["MaXacThuc"]
            want = "paid" if vector["fields"]["MaLoi"] == "00" else "failed"
            assert env.province.attempts(code)[0]["trang_thai"] == want
        [attempt] = env.province.attempts(code)
        assert (attempt["ma_giao_dich"], attempt["ngan_hang"]) == ("PP2019120900012345", "VCB")
        assert attempt["thoi_gian_ket_qua"] == "2019-12-09T09:34:02"
        flipped = {**callbacks[0]["fields"], "MaXacThuc": "0" + callbacks[0]["MaXacThuc"][1:]}
        if flipped["MaXacThuc"] == callbacks[0]["MaXacThuc"]:
            flipped["MaXacThuc"] = "1" + callbacks[0]["MaXacThuc"][1:]
        assert _post(env, flipped)["MaLoi"] == "99"


def _lookup(env: Env, body: Any) -> dict[str, Any]:
    response = httpx.post(f"{env.url}{LOOKUP_PATH}", json=body)
    assert response.status_code == 200
    reply: dict[str, Any] = response.json()
    return reply


def test_bill_lookup_three_answers(env: Env) -> None:
    code, amount = env.province.make_paying(4)
    owing = _lookup(env, {"MaHoSo": code})
    assert owing["error_code"] == 1
    bill = owing["message"]
    assert bill["MaHoSo"] == code and bill["MaDichVu"] == "2"
    assert sum(int(item["SoTien"]) for item in bill["DSKhoanNop"]) == amount
    assert bill["MaTraCuuTT"].startswith(code) and len(bill["MaTraCuuTT"]) == len(code) + 14
    assert bill["MaTraCuuTT"][len(code) :].isdigit()

    env.province.execute(
        "UPDATE le_phi SET da_thanh_toan = 1 WHERE ho_so_id = (SELECT id FROM ho_so WHERE so_ho_so = ?)", code
    )
    assert _lookup(env, {"MaHoSo": code}) == {"error_code": 0, "message": []}
    assert _lookup(env, {"MaHoSo": "KHONG-CO-HO-SO"}) == {"error_code": -1, "message": []}
    assert _lookup(env, {"khac": 1}) == {"error_code": -1, "message": []}


def test_bill_lookup_of_an_unmappable_dossier_is_an_error_not_a_bill(env: Env) -> None:
    code, _ = env.province.make_paying(5)
    env.province.execute("UPDATE ho_so SET ma_thu_tuc = 'KHONG-CO' WHERE so_ho_so = ?", code)
    response = httpx.post(f"{env.url}{LOOKUP_PATH}", json={"MaHoSo": code})
    assert response.status_code == 500
    assert response.json() == {"error_code": -1, "message": []}


def test_concurrent_replays_apply_once(env: Env) -> None:
    """Ten copies of one paid callback at the same moment: all accepted, exactly one applies."""
    from concurrent.futures import ThreadPoolExecutor

    code, ref, amount = _attempt(env, 6)
    body = _callback(ref, amount)
    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda _: _post(env, body), range(10)))
    assert {r["MaLoi"] for r in replies} == {"00"}
    assert sum(r["MoTaLoi"] == "Đã ghi nhận thanh toán" for r in replies) == 1
    assert env.province.attempts(code)[0]["trang_thai"] == "paid"
    assert env.province.unpaid_fees(code) == 0
