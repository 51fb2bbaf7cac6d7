"""Properties of the dossier models over generated bodies, beyond the hand-written golden ones.

1. Any canonical dossier (strings everywhere, valid codes and dates) round-trips exactly.
2. The same dossier written the other ways real clients write it (ints for codes and numbers,
   booleans or ``"true"`` for flags and bits) reads back to the very same canonical form.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dvcsync.contract import (
    DongBoHoSoMCRequest,
    DuocTaiSuDung,
    HinhThuc,
    HinhThucThu,
    HoSo,
    KenhThucHien,
    LoaiDoiTuong,
    LoaiPhiLePhi,
    TienDo,
    TrangThaiHoSo,
    format_wire_datetime,
)

CODE_FIELDS = {"LoaiDoiTuong", "TrangThaiHoSo", "KenhThucHien", "HinhThuc", "HinhThucThu", "LoaiPhiLePhi"}
CODE_FIELDS |= {"LoaiDinhDanh", "DuocTaiSuDung", "TrangThai"}
BIT_FIELDS = {"DuocThanhToanTrucTuyen", "HoSoCoThanhPhanSoHoa", "TaiKhoanDuocXacThucVoiVNeID", "DuocSoHoa"}
BIT_FIELDS |= {"DuocLayTuKhoDMQG"}
FLAG_FIELDS = {"IsDeleted", "isUpdating"}
NUMERIC_TEXT = {"TepDinhKemId", "SoLuong", "Gia"}

LETTERS = "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọĐÂƯ "
vietnamese = st.text(alphabet=LETTERS, min_size=1, max_size=40).map(str.strip).filter(bool)
wire_dates = st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2030, 12, 31)).map(
    format_wire_datetime
)
digits = st.integers(min_value=0, max_value=10**9).map(str)


def code(enum: type[Any]) -> st.SearchStrategy[str]:
    return st.sampled_from([c.value for c in enum])


documents = st.fixed_dictionaries(
    {"TepDinhKemId": digits, "TenTepDinhKem": vietnamese, "IsDeleted": st.sampled_from(["True", "False"])},
    optional={
        "MaThanhPhanHoSo": st.just("") | vietnamese,
        "DuongDanTaiTepTin": st.just("https://motcua.h40.example.vn/api/tailieu/1/tai-ve"),
        "DuocSoHoa": st.sampled_from(["0", "1"]),
        "DuocTaiSuDung": code(DuocTaiSuDung),
        "DuocLayTuKhoDMQG": st.sampled_from(["0", "1"]),
    },
)
fees = st.fixed_dictionaries(
    {"TenPhiLePhi": vietnamese, "Gia": digits},
    optional={"MaPhiLePhi": vietnamese, "HinhThucThu": code(HinhThucThu), "LoaiPhiLePhi": code(LoaiPhiLePhi)},
)


@st.composite
def dossiers(draw: st.DrawFn) -> dict[str, Any]:
    status = draw(code(TrangThaiHoSo))
    agency, day, serial = (
        draw(st.integers(1, 99)),
        draw(st.integers(150101, 301231)),
        draw(st.integers(1, 9999)),
    )
    body: dict[str, Any] = {
        "MaHoSo": f"000.00.{agency:02d}.H40-{day}-{serial:04d}",
        "MaTTHC": draw(st.sampled_from(["1.001193", "1.000656", "2.000033", "1.001193.000.00.00.H40"])),
        "ChuHoSo": draw(vietnamese),
        "NgayTiepNhan": draw(st.just("") if status == "1" else wire_dates),
        "TrangThaiHoSo": status,
        "DonViXuLy": "UBND " + draw(vietnamese),
    }
    optional = {
        "LoaiDoiTuong": code(LoaiDoiTuong),
        "KenhThucHien": code(KenhThucHien),
        "HinhThuc": code(HinhThuc),
        "SoDienThoai": st.from_regex(r"0[35789]\d{8}", fullmatch=True),
        "TrichYeuHoSo": vietnamese,
        "NgayHenTra": wire_dates | st.just(""),
        "DuocThanhToanTrucTuyen": st.sampled_from(["0", "1"]),
        "HoSoCoThanhPhanSoHoa": st.sampled_from(["0", "1"]),
        "DinhDanhCHS": st.lists(
            st.fixed_dictionaries(
                {"LoaiDinhDanh": st.just("1"), "SoDinhDanh": st.from_regex(r"0\d{11}", fullmatch=True)}
            ),
            max_size=2,
        ),
        "TaiLieuNop": st.lists(documents, max_size=3),
        "DanhSachLePhi": st.lists(fees, max_size=3),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)
    return body


def as_other_clients_write_it(value: Any, key: str = "", style: int = 0) -> Any:
    """Codes and numbers as ints, flags and bits as booleans or lower-case text."""
    if isinstance(value, dict):
        return {k: as_other_clients_write_it(v, k, style) for k, v in value.items()}
    if isinstance(value, list):
        return [as_other_clients_write_it(v, key, style) for v in value]
    if not isinstance(value, str) or value == "":
        return value
    if key in CODE_FIELDS or key in NUMERIC_TEXT:
        return int(value)
    if key in BIT_FIELDS:
        return [value == "1", int(value), "true" if value == "1" else "false"][style]
    if key in FLAG_FIELDS:
        return [value == "True", value.lower(), int(value == "True")][style]
    return value


@settings(max_examples=150)
@given(dossiers())
def test_any_canonical_dossier_round_trips_exactly(body: dict[str, Any]) -> None:
    assert HoSo.model_validate(body).to_wire() == body


@settings(max_examples=150)
@given(dossiers(), st.sampled_from([0, 1, 2]), st.sampled_from(["True", "False"]))
def test_other_clients_encodings_read_to_the_same_canonical_form(
    body: dict[str, Any], style: int, updating: str
) -> None:
    request = {
        "session": "s",
        "madonvi": "000.00.01.H40",
        "service": "DongBoHoSoMC",
        "isUpdating": updating,
        "data": [body],
    }
    variant = as_other_clients_write_it(request, style=style)
    assert DongBoHoSoMCRequest.model_validate(variant).to_wire() == request


@given(
    st.fixed_dictionaries(
        {
            "MaHoSo": st.just("000.00.01.H40-191209-0001"),
            "NguoiXuLy": vietnamese.map(lambda s: s[:50]),
            "ThoiDiemXuLy": wire_dates,
            "NoiDungXuLy": vietnamese,
            "TrangThai": code(TrangThaiHoSo),
        },
        optional={
            "ChucDanh": vietnamese,
            "NgayBatDau": wire_dates,
            "NgayKetThucTheoQuyDinh": wire_dates | st.just(""),
        },
    )
)
def test_any_step_round_trips_and_reads_from_int_status(step: dict[str, Any]) -> None:
    assert TienDo.model_validate(step).to_wire() == step
    assert TienDo.model_validate({**step, "TrangThai": int(step["TrangThai"])}).to_wire() == step
