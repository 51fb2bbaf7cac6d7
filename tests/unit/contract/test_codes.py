"""Code tables (§4), flags and reply codes: every real-world variant accepted, canonical emitted,
anything else refused with a message that names the field and the value."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pytest
from pydantic import ValidationError

from dvcsync.contract import (
    FINAL_STATUSES,
    LEGAL_MOVES,
    REPLY_MODELS,
    REQUEST_MODELS,
    SHARE_SERVICES,
    AuthReply,
    BienLai,
    DinhDanh,
    DongBoHoSoMCRequest,
    DuocTaiSuDung,
    HinhThuc,
    HinhThucThu,
    HoSo,
    ItemResult,
    KenhThucHien,
    LePhi,
    LoaiDinhDanh,
    LoaiDoiTuong,
    LoaiPhiLePhi,
    MaDichVu,
    PhiLePhiBienLai,
    PortalReply,
    QueryReply,
    StatementRow,
    TaiLieu,
    TienDo,
    TrangThaiGD,
    TrangThaiHoSo,
    WireModel,
    is_legal_move,
)

from .test_dossier import DOSSIER, STEP  # the same minimal valid bodies

BILL: dict[str, Any] = {"MaDichVu": "2", "MaHoSo": "000.00.01.H40-191209-0001"}
ROW: dict[str, Any] = {
    "MaThamChieu": "dvc00000001H40191209000120191209093015",
    "SoTien": 8000,
    "ThoiGianGD": "20191209093402",
    "TrangThaiGD": "1",
    "MaDoiTac": "H40-QNINH",
}

# (model, a valid body, the coded field, its code table)
CODED: list[tuple[type[WireModel], dict[str, Any], str, type[StrEnum]]] = [
    (HoSo, DOSSIER, "TrangThaiHoSo", TrangThaiHoSo),
    (HoSo, DOSSIER, "KenhThucHien", KenhThucHien),
    (HoSo, DOSSIER, "HinhThuc", HinhThuc),
    (HoSo, DOSSIER, "LoaiDoiTuong", LoaiDoiTuong),
    (TienDo, STEP, "TrangThai", TrangThaiHoSo),
    (LePhi, {}, "LoaiPhiLePhi", LoaiPhiLePhi),
    (LePhi, {}, "HinhThucThu", HinhThucThu),
    (DinhDanh, {"SoDinhDanh": "022190001234"}, "LoaiDinhDanh", LoaiDinhDanh),
    (TaiLieu, {}, "DuocTaiSuDung", DuocTaiSuDung),
    (BienLai, BILL, "MaDichVu", MaDichVu),
    (PhiLePhiBienLai, {"SoTien": 8000}, "LoaiPhiLePhi", LoaiPhiLePhi),
    (QueryReply, {"MaLoi": "00"}, "TrangThaiGD", TrangThaiGD),
    (StatementRow, ROW, "TrangThaiGD", TrangThaiGD),
]
CODED_IDS = [f"{m.__name__}.{f}" for m, _, f, _ in CODED]


def test_code_tables_are_the_contracts() -> None:
    assert [c.value for c in TrangThaiHoSo] == [str(n) for n in range(1, 11)]
    assert {c.value for c in KenhThucHien} == {"1", "2", "3"}
    assert {c.value for c in HinhThuc} == {"0", "1"}
    assert {c.value for c in LoaiDoiTuong} == {"1", "2", "3", "4"}
    assert {c.value for c in LoaiPhiLePhi} == {"1", "2"}
    assert {c.value for c in HinhThucThu} == {"1", "2", "3"}
    assert {c.value for c in LoaiDinhDanh} == {"1", "2"}
    assert {c.value for c in DuocTaiSuDung} == {"0", "1", "2"}
    assert {c.value for c in TrangThaiGD} == {"1", "3", "4"}
    assert {c.value for c in MaDichVu} == {"1", "2"}


@pytest.mark.parametrize(("model", "body", "field", "table"), CODED, ids=CODED_IDS)
def test_every_known_code_is_accepted_as_text_or_int(
    model: type[WireModel], body: dict[str, Any], field: str, table: type[StrEnum]
) -> None:
    for code in table:
        for sent in (code.value, int(code.value)):
            assert model.model_validate({**body, field: sent}).to_wire()[field] == code.value


@pytest.mark.parametrize(("model", "body", "field", "table"), CODED, ids=CODED_IDS)
def test_unknown_codes_are_refused_naming_field_and_value(
    model: type[WireModel], body: dict[str, Any], field: str, table: type[StrEnum]
) -> None:
    for bad in ("11", "99", "-1", "X", "2 ", "02"):
        if bad in {c.value for c in table}:
            continue
        with pytest.raises(ValidationError) as caught:
            model.model_validate({**body, field: bad})
        text = str(caught.value)
        assert field in text and repr(bad) in text, text


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (HoSo, DOSSIER, "TrangThaiHoSo"),
        (TienDo, STEP, "TrangThai"),
        (DinhDanh, {"SoDinhDanh": "022190001234"}, "LoaiDinhDanh"),
        (BienLai, BILL, "MaDichVu"),
        (StatementRow, ROW, "TrangThaiGD"),
    ],
)
def test_codes_that_must_be_present_refuse_empty(
    model: type[WireModel], body: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        model.model_validate({**body, field: ""})


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [(HoSo, DOSSIER, "KenhThucHien"), (QueryReply, {"MaLoi": "01"}, "TrangThaiGD")],
)
def test_optional_codes_may_be_empty(model: type[WireModel], body: dict[str, Any], field: str) -> None:
    assert model.model_validate({**body, field: ""}).to_wire()[field] == ""


@pytest.mark.parametrize(
    "code", ["1.001193", "2.000033", "3.000123", "1.001193.000.00.00.H40", "1.001193.000.00.00.G09"]
)
def test_procedure_codes_of_the_contract(code: str) -> None:
    assert HoSo.model_validate({**DOSSIER, "MaTTHC": code}).MaTTHC == code


@pytest.mark.parametrize(
    "bad", ["", "1.1193", "4.001193", "1001193", "1.0011930", "1.001193.000.00.00.X40", "HT-KS-01"]
)
def test_bad_procedure_codes_are_refused_naming_the_value(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        HoSo.model_validate({**DOSSIER, "MaTTHC": bad})
    assert "MaTTHC" in str(caught.value) and repr(bad) in str(caught.value)


# ---------------------------------------------------------------- flags and bits

TRUE_FLAGS = [True, "True", "true", "TRUE", " True ", 1, "1"]
FALSE_FLAGS = [False, "False", "false", "FALSE", 0, "0"]


@pytest.mark.parametrize(
    ("sent", "canonical"), [(v, "True") for v in TRUE_FLAGS] + [(v, "False") for v in FALSE_FLAGS]
)
def test_flags_accept_every_variant_and_emit_true_false(sent: Any, canonical: str) -> None:
    request = DongBoHoSoMCRequest.model_validate(
        {"session": "s", "madonvi": "000.00.01.H40", "isUpdating": sent, "data": []}
    )
    assert request.to_wire()["isUpdating"] == canonical
    assert TaiLieu.model_validate({"IsDeleted": sent}).to_wire()["IsDeleted"] == canonical


@pytest.mark.parametrize("bad", ["yes", "Có", 2, -1, "Tru"])
def test_bad_flags_are_refused_naming_field_and_value(bad: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        TaiLieu.model_validate({"IsDeleted": bad})
    assert "IsDeleted" in str(caught.value) and repr(bad) in str(caught.value)


def test_a_flag_inside_a_record_may_be_empty_but_the_envelope_flag_may_not() -> None:
    # §2.1 (choice): every optional field of a dossier may be absent or ""
    assert TaiLieu.model_validate({"IsDeleted": ""}).to_wire() == {"IsDeleted": ""}
    with pytest.raises(ValidationError) as caught:
        DongBoHoSoMCRequest.model_validate({"session": "s", "madonvi": "m", "isUpdating": "", "data": []})
    assert "isUpdating" in str(caught.value) and "''" in str(caught.value)


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [
        (True, "1"),
        ("1", "1"),
        (1, "1"),
        ("true", "1"),
        (False, "0"),
        ("0", "0"),
        (0, "0"),
        ("False", "0"),
        ("", ""),
    ],
)
def test_bits_accept_every_variant_and_emit_0_1(sent: Any, canonical: str) -> None:
    assert (
        HoSo.model_validate({**DOSSIER, "HoSoCoThanhPhanSoHoa": sent}).to_wire()["HoSoCoThanhPhanSoHoa"]
        == canonical
    )
    assert TaiLieu.model_validate({"DuocSoHoa": sent}).to_wire()["DuocSoHoa"] == canonical


@pytest.mark.parametrize("bad", [2, "2", "yes", "Co"])
def test_bad_bits_are_refused_naming_field_and_value(bad: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        HoSo.model_validate({**DOSSIER, "DuocThanhToanTrucTuyen": bad})
    assert "DuocThanhToanTrucTuyen" in str(caught.value) and repr(bad) in str(caught.value)


# ---------------------------------------------------------------- reply codes


@pytest.mark.parametrize("sent", [0, "0", "00", " 0 ", "000"])
def test_every_success_code_means_success_and_is_emitted_as_int_0(sent: Any) -> None:
    reply = PortalReply.model_validate({"error_code": sent, "message": "Thành công"})
    assert reply.ok and reply.to_wire()["error_code"] == 0
    assert AuthReply.model_validate({"error_code": sent, "session": "abc"}).error_code == 0
    assert ItemResult.model_validate({"MaHoSo": "x", "error_code": sent}).to_wire()["error_code"] == 0


@pytest.mark.parametrize(
    ("sent", "code"), [("3", 3), (3, 3), (401, 401), ("401", 401), ("-1", -1), ("03", 3)]
)
def test_error_codes_are_not_success(sent: Any, code: int) -> None:
    reply = PortalReply.model_validate({"error_code": sent, "message": "Lỗi"})
    assert not reply.ok and reply.to_wire()["error_code"] == code


@pytest.mark.parametrize("bad", [True, None, "", "OK", "0x0", 1.5])
def test_non_numeric_error_codes_are_refused_naming_the_value(bad: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        PortalReply.model_validate({"error_code": bad})
    assert "error_code" in str(caught.value)


# ---------------------------------------------------------------- status moves (§4.1)

# Written out from the contract's text, independently of LEGAL_MOVES:
# 1→2,3,7; 2→4,5,6,7,8,9; 4→4,5,6,7,8,9; 5→4,7,8; 6→4,7,8,9; 9→10; 3, 7, 8 and 10 are final.
CONTRACT_MOVES = {
    1: {2, 3, 7},
    2: {4, 5, 6, 7, 8, 9},
    4: {4, 5, 6, 7, 8, 9},
    5: {4, 7, 8},
    6: {4, 7, 8, 9},
    9: {10},
    3: set(),
    7: set(),
    8: set(),
    10: set(),
}


@pytest.mark.parametrize("old", range(1, 11))
def test_is_legal_move_over_the_whole_table(old: int) -> None:
    for new in range(1, 11):
        # re-sending the same status (an update of other fields) is not a move and always allowed
        expected = new in CONTRACT_MOVES[old] or new == old
        assert is_legal_move(str(old), str(new)) is expected, f"{old} -> {new}"


def test_legal_moves_table_and_final_statuses() -> None:
    assert {int(k): {int(v) for v in vs} for k, vs in LEGAL_MOVES.items()} == CONTRACT_MOVES
    assert {int(s) for s in FINAL_STATUSES} == {3, 7, 8, 10}


def test_unknown_statuses_never_move() -> None:
    assert not is_legal_move("11", "2")
    assert not is_legal_move("2", "11")
    assert not is_legal_move("", "2")


# ---------------------------------------------------------------- services


def test_every_service_has_a_request_and_a_reply_model() -> None:
    services = {
        "DongBoHoSoMC",
        "CapNhatTienDoHoSoMC",
        "DongBoTrangThaiHoSo",
        "DongBoDanhGia",
        "TraCuuHoSo",
        "LayThuTuc",
        "LayDanhSachTTHC",
        "LayDanhMucCoQuan",
        "LayDanhMucLinhVuc",
        "DanhSachHoSo",
        "XacNhanHoSo",
    }
    assert set(REQUEST_MODELS) == set(REPLY_MODELS) == services
    assert all(issubclass(m, PortalReply) for m in REPLY_MODELS.values())
    assert {"LayDanhSachTTHC", "LayDanhMucCoQuan", "LayDanhMucLinhVuc"} == SHARE_SERVICES
    for name, model in REQUEST_MODELS.items():
        assert model.model_fields["service"].default == name


def test_a_request_for_one_service_refuses_another_services_name() -> None:
    with pytest.raises(ValidationError, match="service"):
        DongBoHoSoMCRequest.model_validate(
            {"session": "s", "madonvi": "m", "service": "TraCuuHoSo", "data": []}
        )
