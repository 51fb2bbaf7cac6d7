"""A dossier's required fields, length limits and personal data (national-portal.md §2)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from dvcsync.contract import (
    REQUIRED_DOSSIER_FIELDS,
    AuthReply,
    AuthRequest,
    BienLai,
    DinhDanh,
    GiayToKetQua,
    HoSo,
    HoSoCongDVC,
    HoSoDaLuu,
    TaiLieu,
    TienDo,
    TraCuuHoSoRequest,
    WireModel,
)

DOSSIER: dict[str, Any] = {
    "MaHoSo": "000.00.01.H40-191209-0001",
    "MaTTHC": "1.001193",
    "ChuHoSo": "Nguyễn Thị Thu Hà",
    "NgayTiepNhan": "20191209093015",
    "TrangThaiHoSo": "2",
    "DonViXuLy": "Ủy ban nhân dân phường Hồng Gai",
}
STEP: dict[str, Any] = {
    "MaHoSo": "000.00.01.H40-191209-0001",
    "NguoiXuLy": "Lê Thị Hồng Nhung",
    "ThoiDiemXuLy": "20191209093015",
    "NoiDungXuLy": "Tiếp nhận hồ sơ",
    "TrangThai": "2",
}


def test_the_six_required_fields_are_the_contracts() -> None:
    assert set(REQUIRED_DOSSIER_FIELDS) == {
        "MaHoSo",
        "MaTTHC",
        "ChuHoSo",
        "NgayTiepNhan",
        "TrangThaiHoSo",
        "DonViXuLy",
    }
    assert HoSo.model_validate(DOSSIER).to_wire() == DOSSIER


@pytest.mark.parametrize("field", REQUIRED_DOSSIER_FIELDS)
@pytest.mark.parametrize("how", ["absent", "empty"])
def test_each_required_field_is_required(field: str, how: str) -> None:
    body = {k: v for k, v in DOSSIER.items() if k != field} if how == "absent" else {**DOSSIER, field: ""}
    with pytest.raises(ValidationError) as caught:
        HoSo.model_validate(body)
    assert field in str(caught.value)


@pytest.mark.parametrize("how", ["absent", "empty"])
def test_reception_date_may_be_missing_only_before_reception(how: str) -> None:
    body = (
        {k: v for k, v in DOSSIER.items() if k != "NgayTiepNhan"}
        if how == "absent"
        else {**DOSSIER, "NgayTiepNhan": ""}
    )
    # still waiting (1), refused at reception (3), withdrawn before reception (7): never received
    for status in ("1", "3", "7"):
        assert HoSo.model_validate({**body, "TrangThaiHoSo": status}).to_wire()["NgayTiepNhan"] == ""
    for status in ("2", "4", "5", "6", "8", "9", "10"):
        with pytest.raises(ValidationError, match="NgayTiepNhan"):
            HoSo.model_validate({**body, "TrangThaiHoSo": status})


def test_every_other_field_may_be_absent_or_empty() -> None:
    optional = [name for name in HoSo.model_fields if name not in REQUIRED_DOSSIER_FIELDS]
    assert len(optional) >= 30
    scalars = {
        name: "" for name in optional if not name.startswith(("DanhSach", "TaiLieu", "DinhDanh", "DSKet"))
    }
    lists: dict[str, list[Any]] = {name: [] for name in optional if name not in scalars}
    wire = HoSo.model_validate({**DOSSIER, **scalars, **lists}).to_wire()
    assert wire == {**DOSSIER, **scalars, **lists}


@pytest.mark.parametrize(
    ("model", "body", "field", "limit"),
    [
        (TienDo, STEP, "NguoiXuLy", 50),
        (HoSo, DOSSIER, "TrichYeuHoSo", 1000),
        (
            HoSoCongDVC,
            {"MaHoSo": "G22.99-251120-0003", "MaTTHC": "2.000033", "NgayNopHoSo": ""},
            "TrichYeuHoSo",
            1000,
        ),
        (TaiLieu, {}, "TenTepDinhKem", 4000),
        (GiayToKetQua, {}, "TenGiayTo", 2000),
    ],
)
def test_length_limits_count_characters_not_bytes(
    model: type[WireModel], body: dict[str, Any], field: str, limit: int
) -> None:
    at_limit = ("Nguyễn Thị Ánh Tuyết " * limit)[:limit]  # Vietnamese: 2-3 bytes a letter in UTF-8
    assert len(at_limit) == limit and len(at_limit.encode()) > limit
    assert model.model_validate({**body, field: at_limit}).to_wire()[field] == at_limit
    with pytest.raises(ValidationError) as caught:
        model.model_validate({**body, field: at_limit + "x"})
    assert field in str(caught.value) and str(limit) in str(caught.value)


def test_a_step_needs_who_what_and_status() -> None:
    for field in ("MaHoSo", "NguoiXuLy", "NoiDungXuLy", "TrangThai", "ThoiDiemXuLy"):
        with pytest.raises(ValidationError, match=field):
            TienDo.model_validate({k: v for k, v in STEP.items() if k != field})


def test_stored_dossier_keeps_the_dossier_rules() -> None:
    stored = HoSoDaLuu.model_validate({**DOSSIER, "QuaTrinhXuLy": [STEP]})
    assert stored.QuaTrinhXuLy[0].NguoiXuLy == "Lê Thị Hồng Nhung"
    with pytest.raises(ValidationError, match="TrangThaiHoSo"):
        HoSoDaLuu.model_validate({**DOSSIER, "TrangThaiHoSo": "11"})


def test_unknown_fields_survive_at_every_level() -> None:
    body = {
        **DOSSIER,
        "TruongMoi": "giá trị",
        "TaiLieuNop": [{"TepDinhKemId": "1", "KichThuocTep": "245760"}],
        "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "022190001234", "NgayCap": "20210510000000"}],
    }
    assert HoSo.model_validate(body).to_wire() == body


# ---------------------------------------------------------------- personal data stays out of logs


PERSONAL = {
    "SoGiayToChuHoSo": "022190001234",
    "Email": "thuha.nguyen@example.vn",
    "Fax": "0912345678",
    "SoDienThoai": "0912345678",
    "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "022190001234"}],
}


@pytest.mark.parametrize("model", [HoSo, HoSoDaLuu])
def test_repr_and_str_of_a_dossier_hide_personal_data(model: type[HoSo]) -> None:
    dossier = model.model_validate({**DOSSIER, **PERSONAL})
    for shown in (repr(dossier), str(dossier)):
        assert "022190001234" not in shown and "0912345678" not in shown and "example.vn" not in shown
        assert "Nguyễn Thị Thu Hà" in shown  # the rest is still there to debug with
    wire = dossier.to_wire()
    assert {k: wire[k] for k in PERSONAL} == PERSONAL  # but nothing is lost on the wire


def test_repr_hides_secrets_and_other_personal_numbers() -> None:
    assert "Mk@TinhH40" not in repr(AuthRequest(username="h40.motcua", password="Mk@TinhH40-2019"))
    token = "8f3c2a9e-5b71-4d0c-9a6e-2f14c7b0d3a1"
    assert token not in repr(AuthReply(error_code=0, session=token))
    assert token not in repr(TraCuuHoSoRequest(session=token, madonvi="000.00.01.H40", mahoso="x"))
    assert "022190001234" not in repr(DinhDanh(LoaiDinhDanh="1", SoDinhDanh="022190001234"))
    bill = BienLai.model_validate({"MaHoSo": "000.00.01.H40-191209-0001", "SoCMNDNguoiNop": "022190001234"})
    assert "022190001234" not in repr(bill)
    assert bill.to_wire()["SoCMNDNguoiNop"] == "022190001234"


def test_validation_errors_do_not_print_personal_data() -> None:
    body = {**DOSSIER, **PERSONAL, "NgayTiepNhan": ""}  # a record-level error: the whole input is at hand
    with pytest.raises(ValidationError) as caught:
        HoSo.model_validate(body)
    text = str(caught.value)
    assert "NgayTiepNhan" in text
    assert "022190001234" not in text and "0912345678" not in text and "example.vn" not in text
    assert caught.value.errors()[0]["input"]["SoDienThoai"] == "0912345678"  # still there for masking callers
