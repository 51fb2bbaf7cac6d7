"""Payment models beyond the golden bodies: amounts, receipts, reply shapes (payment-platform.md §1)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from dvcsync.contract import (
    PAID,
    PROTOCOL_VERSION,
    BienLai,
    BillLookupReply,
    InitReply,
    InitRequest,
    InitResult,
    KhoanNop,
    LePhi,
    PaymentCallback,
    QueryReply,
    StatementRow,
    parse_init_reply,
)

INIT: dict[str, Any] = {
    "MaDoiTac": "H40-QNINH",
    "MaThamChieu": "dvc00000001H40191209000120191209093015",
    "SoTien": "8000",
    "ThongTinGiaoDich": "THANH TOAN HO SO 000.00.01.H40-191209-0001",
    "ThoiGianGD": "20191209093015",
    "Ip": "10.20.30.40",
}
BILL: dict[str, Any] = {"MaDichVu": "2", "MaHoSo": "000.00.01.H40-191209-0001"}
CALLBACK: dict[str, Any] = {
    "MaLoi": "00",
    "MaDoiTac": "H40-QNINH",
    "MaThamChieu": "dvc00000001H40191209000120191209093015",
    "SoTien": 8000,
    "ThoiGianGD": "20191209093402",
}


def test_init_defaults_are_the_fixed_values_of_the_contract() -> None:
    wire = InitRequest.model_validate(INIT).to_wire()
    assert PROTOCOL_VERSION == "1.0.6"
    fixed = {
        "LoaiBanTin": "INIT",
        "PhienBan": "1.0.6",
        "LoaiHinhThanhToan": "PAY",
        "MaKenhThanhToan": "1",
        "MaThietBi": "1",
        "NgonNgu": "vi-VN",
        "MaTienTe": "VND",
        "MaNganHang": "PAYMENT",
    }
    assert {k: wire[k] for k in fixed} == fixed
    assert wire["SoTien"] == "8000"  # a string in INIT


def test_callback_has_no_protocol_version_and_carries_an_int_amount() -> None:
    wire = PaymentCallback.model_validate(CALLBACK).to_wire()
    assert "PhienBan" not in wire
    assert wire["SoTien"] == 8000 and wire["LoaiBanTin"] == "CONFIRM"


@pytest.mark.parametrize("amount", ["8000", 8000, 8000.0])
def test_amounts_accept_whole_vnd_in_any_encoding(amount: Any) -> None:
    assert InitRequest.model_validate({**INIT, "SoTien": amount}).SoTien == 8000
    assert PaymentCallback.model_validate({**CALLBACK, "SoTien": amount}).SoTien == 8000
    assert LePhi.model_validate({"Gia": amount}).to_wire()["Gia"] == "8000"


@pytest.mark.parametrize("amount", ["8.000", "8,000", "8000.5", 8000.5, "-8000", -1, True, "tám nghìn"])
def test_amounts_that_are_not_whole_vnd_are_refused(amount: Any) -> None:
    """ "8.000" is eight thousand in Vietnamese writing: reading it as 8 would be silently wrong."""
    for model, body in ((InitRequest, INIT), (PaymentCallback, CALLBACK)):
        with pytest.raises(ValidationError) as caught:
            model.model_validate({**body, "SoTien": amount})
        assert "SoTien" in str(caught.value), model


def test_init_amount_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="SoTien"):
        InitRequest.model_validate({**INIT, "SoTien": "0"})


def test_init_text_must_have_no_diacritics() -> None:
    text = "Thanh toán hồ sơ 000.00.01.H40-191209-0001"
    with pytest.raises(ValidationError) as caught:
        InitRequest.model_validate({**INIT, "ThongTinGiaoDich": text})
    assert caught.value.errors()[0]["loc"] == ("ThongTinGiaoDich",)
    assert repr(text) in str(caught.value)


def test_bill_total_is_the_sum_of_its_items() -> None:
    items = [
        ("Phí cấp bản sao trích lục hộ tịch", "3000"),
        ("Lệ phí cấp bản sao trích lục", "5000"),
        ("Phí gửi", 0),
    ]
    bill = BienLai.model_validate({**BILL, "DSKhoanNop": [{"NoiDung": n, "SoTien": s} for n, s in items]})
    assert bill.total == 8000
    assert all(isinstance(i, KhoanNop) for i in bill.DSKhoanNop)
    assert BienLai.model_validate(BILL).total == 0
    with pytest.raises(ValidationError, match="SoTien"):
        BienLai.model_validate({**BILL, "DSKhoanNop": [{"NoiDung": "Hoàn tiền", "SoTien": "-5000"}]})


def test_fees_of_a_procedure_need_the_dossier_code_fines_do_not() -> None:
    with pytest.raises(ValidationError, match="MaHoSo"):
        BienLai.model_validate({"MaDichVu": "2"})
    with pytest.raises(ValidationError, match="MaHoSo"):
        BienLai.model_validate({"MaDichVu": "2", "MaHoSo": ""})
    assert BienLai.model_validate({"MaDichVu": "1"}).MaHoSo is None


def test_callback_is_paid_only_on_00() -> None:
    assert PaymentCallback.model_validate(CALLBACK).paid and PAID == "00"
    for code in ("01", "99", "0", "24"):
        assert not PaymentCallback.model_validate({**CALLBACK, "MaLoi": code}).paid


def test_query_reply_state_is_optional_when_the_query_failed() -> None:
    reply = QueryReply.model_validate({"MaLoi": "07", "MoTaLoi": "Không tìm thấy giao dịch"})
    assert reply.TrangThaiGD is None
    assert QueryReply.model_validate({"MaLoi": "00", "MoTaLoi": None}).MoTaLoi == ""


def test_init_reply_wrapped_with_a_text_error_is_a_clear_error() -> None:
    reply = InitReply.model_validate({"error_code": "1", "message": "Sai chữ ký MaXacThuc"})
    with pytest.raises(ValueError, match="Sai chữ ký MaXacThuc") as caught:
        reply.result()
    assert "error_code '1'" in str(caught.value)
    with pytest.raises(ValueError, match=r"\[\]"):
        InitReply.model_validate({"error_code": "0", "message": "[]"}).result()


def test_init_reply_forms() -> None:
    inner = {
        "MaLoi": "00",
        "MoTaLoi": "Thành công",
        "MaThamChieu": INIT["MaThamChieu"],
        "UrlThanhToan": "https://x",
    }
    wrapped = {"error_code": 0, "message": json.dumps(inner, ensure_ascii=False)}
    assert parse_init_reply(wrapped) == parse_init_reply(inner) == InitResult.model_validate(inner)
    assert InitReply.model_validate(wrapped).to_wire()["error_code"] == "0"  # the wrapped form's code is text
    with pytest.raises(ValidationError, match="MaLoi"):
        parse_init_reply({"error_code": "0", "message": json.dumps({"MoTaLoi": "thiếu mã lỗi"})})


@pytest.mark.parametrize(
    "body",
    [
        {"error_code": 1, "message": []},
        {"error_code": 0, "message": BILL},
        {"error_code": -1, "message": BILL},
        {"error_code": 0, "message": [{"MaHoSo": "x"}]},
        {"error_code": 2, "message": []},
        {"error_code": 1, "message": {"MaDichVu": "2"}},
    ],
)
def test_bill_lookup_reply_code_and_message_must_agree(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BillLookupReply.model_validate(body)


@pytest.mark.parametrize(("sent", "code"), [("1", 1), (1, 1), ("0", 0), ("-1", -1), (-1, -1)])
def test_bill_lookup_reply_codes_as_text_or_int(sent: Any, code: int) -> None:
    message: Any = BILL if code == 1 else []
    reply = BillLookupReply.model_validate({"error_code": sent, "message": message})
    assert reply.to_wire()["error_code"] == code


@pytest.mark.parametrize("when", ["", None])
def test_callback_and_statement_need_a_transaction_time(when: Any) -> None:
    with pytest.raises(ValidationError, match="ThoiGianGD"):
        PaymentCallback.model_validate({**CALLBACK, "ThoiGianGD": when})
    row = {
        "MaThamChieu": "x",
        "SoTien": 8000,
        "ThoiGianGD": when,
        "TrangThaiGD": "1",
        "MaDoiTac": "H40-QNINH",
    }
    with pytest.raises(ValidationError, match="ThoiGianGD"):
        StatementRow.model_validate(row)


def test_an_empty_fee_price_reads_as_absent() -> None:
    fee = LePhi.model_validate({"TenPhiLePhi": "Lệ phí đăng ký khai sinh", "Gia": ""})
    assert fee.Gia is None and "Gia" not in fee.to_wire()
