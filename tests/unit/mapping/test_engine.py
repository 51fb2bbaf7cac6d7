from __future__ import annotations

from pathlib import Path

import pytest

from dvcsync.contract import HoSo, TienDo
from dvcsync.mapping import MappingSet, load_mappings

from .conftest import dossier_record


@pytest.fixture
def mset(mappings_dir: Path) -> MappingSet:
    return load_mappings(mappings_dir)


def test_dossier_maps_to_the_wire_item(mset: MappingSet) -> None:
    result = mset.get("dossier").map(dossier_record())
    assert result.ok, result.errors
    assert isinstance(result.value, HoSo)
    wire = result.value.to_wire()
    assert wire["MaHoSo"] == "000.00.01.H40-250812-0007"
    assert wire["MaTTHC"] == "1.001193"
    assert wire["TenTTHC"] == "Đăng ký khai sinh"
    assert wire["LoaiDoiTuong"] == "1"
    assert wire["KenhThucHien"] == "2"
    assert wire["TrangThaiHoSo"] == "4"
    assert wire["NgayNopHoSo"] == "20250812083000"
    assert wire["NgayTiepNhan"] == "20250812091500"
    assert wire["NgayTra"] == ""
    assert wire["HinhThuc"] == "0"
    assert wire["DonViXuLy"] == "Sở Tư pháp"
    assert wire["DuocThanhToanTrucTuyen"] == "1"
    assert wire["HoSoCoThanhPhanSoHoa"] == "1"
    assert wire["DanhSachLePhi"] == [
        {
            "TenPhiLePhi": "Lệ phí đăng ký khai sinh",
            "MaPhiLePhi": "LP-KS",
            "HinhThucThu": "1",
            "Gia": "8000",
            "LoaiPhiLePhi": "2",
        }
    ]
    assert wire["TaiLieuNop"] == [
        {
            "TepDinhKemId": "11",
            "TenTepDinhKem": "To khai khai sinh.pdf",
            "IsDeleted": "False",
            "MaThanhPhanHoSo": "",
            "DuongDanTaiTepTin": "https://motcua.h40.example.vn/files/11/to-khai.pdf",
            "DuocSoHoa": "1",
        }
    ]
    assert [d["GiayToId"] for d in wire["DanhSachGiayToKetQua"]] == ["12"]


def test_no_paid_attempt_means_not_paid_online(mset: MappingSet) -> None:
    record = dossier_record(payments=[{"id": 1, "trang_thai": "created"}])
    assert mset.get("dossier").map(record).value.DuocThanhToanTrucTuyen == "0"


def test_steps_map_with_the_parent_dossier_code(mset: MappingSet) -> None:
    record = dossier_record()
    entries = [mset.get("step").map(step, parent=record, record_key="x") for step in record["steps"]]
    assert all(e.ok for e in entries)
    first = entries[0].value
    assert isinstance(first, TienDo)
    assert first.to_wire() == {
        "MaHoSo": "000.00.01.H40-250812-0007",
        "NguoiXuLy": "Trần Văn Bình",
        "ChucDanh": "Chuyên viên",
        "PhongBanXuLy": "Bộ phận một cửa",
        "ThoiDiemXuLy": "20250812091500",
        "NoiDungXuLy": "Tiếp nhận hồ sơ",
        "TrangThai": "2",
        "NgayBatDau": "20250812091500",
        "NgayKetThucTheoQuyDinh": "",
    }


@pytest.mark.parametrize(
    ("overrides", "field", "source", "value_part", "reason_part"),
    [
        ({"trang_thai": "archived"}, "TrangThaiHoSo", "trang_thai", "'archived'", "no entry 'archived'"),
        ({"ma_thu_tuc": "XX-99"}, "MaTTHC", "ma_thu_tuc", "'XX-99'", "no entry 'XX-99'"),
        (
            {"ngay_tiep_nhan": "2025-02-30T09:00:00"},
            "NgayTiepNhan",
            "ngay_tiep_nhan",
            "2025-02-30",
            "not a possible date-time",
        ),
        (
            {"trich_yeu": "x" * 1001},
            "TrichYeuHoSo",
            "trich_yeu",
            "xxx",
            "too long: 1001 characters, at most 1000",
        ),
        (
            {"trich_yeu": "Khai sinh \udcff\udcfe"},
            "TrichYeuHoSo",
            "trich_yeu",
            "\\xff\\xfe",
            "not valid UTF-8",
        ),
        ({"chu_ho_so": "  "}, "ChuHoSo", "chu_ho_so", "'  '", "required but empty"),
        ({"loai_chu_ho_so": "alien"}, "LoaiDoiTuong", "loai_chu_ho_so", "'alien'", "owner_types"),
    ],
)
def test_bad_rows_name_record_field_and_value(
    mset: MappingSet, overrides: dict[str, object], field: str, source: str, value_part: str, reason_part: str
) -> None:
    result = mset.get("dossier").map(dossier_record(**overrides))
    assert not result.ok and result.value is None
    assert len(result.errors) == 1, result.errors
    error = result.errors[0]
    assert error.record == "000.00.01.H40-250812-0007"
    assert (error.field, error.source) == (field, source)
    assert value_part in error.value
    assert reason_part in error.reason
    assert error.record in str(error) and field in str(error)


def test_errors_in_child_lists_name_the_position(mset: MappingSet) -> None:
    fees = dossier_record()["fees"] + [
        {
            "id": 2,
            "ma_phi": "P2",
            "ten_phi": "Phí",
            "loai_phi": "phi",
            "hinh_thuc_thu": "thu_sau",
            "so_tien": "12a",
        }
    ]
    result = mset.get("dossier").map(dossier_record(fees=fees))
    assert [(e.field, e.value) for e in result.errors] == [("DanhSachLePhi[1].Gia", "'12a'")]


def test_personal_data_is_masked_in_errors(mset: MappingSet, mappings_dir: Path) -> None:
    # the contract refuses nothing about a phone, so make the spec cap it to force an error
    spec = mappings_dir / "dossier.yaml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace(
            "SoDienThoai: {path: dien_thoai, format: text, personal: true}",
            "SoDienThoai: {path: dien_thoai, format: text, personal: true, max_length: 5}",
        ),
        encoding="utf-8",
    )
    result = load_mappings(mappings_dir).get("dossier").map(dossier_record())
    assert [e.field for e in result.errors] == ["SoDienThoai"]
    assert "0912345678" not in str(result.errors[0])
    assert result.errors[0].value == "'09******78'"


def test_agency_resolves_as_of_the_dossier_date(mset: MappingSet) -> None:
    dossier = mset.get("dossier")
    before = dossier.map(dossier_record(ma_don_vi="HUYEN-A", ngay_nop="2025-06-20T08:00:00"))
    after = dossier.map(dossier_record(ma_don_vi="HUYEN-A", ngay_nop="2025-07-02T08:00:00"))
    assert before.value.DonViXuLy == "UBND huyện A"
    assert after.value.DonViXuLy == "UBND xã Mới Một"
    too_early = dossier.map(dossier_record(ma_don_vi="XA-MOI-1", ngay_nop="2025-06-20T08:00:00"))
    assert [e.field for e in too_early.errors] == ["DonViXuLy"]
    assert "valid only from 2025-07-01" in too_early.errors[0].reason


def test_contract_validation_errors_become_field_errors(mset: MappingSet, mappings_dir: Path) -> None:
    # a status keyword mapped to a code the contract does not know is caught by the model
    statuses = mappings_dir / "codes" / "statuses.yaml"
    statuses.write_text(statuses.read_text(encoding="utf-8") + '  archived: "11"\n', encoding="utf-8")
    result = load_mappings(mappings_dir).get("dossier").map(dossier_record(trang_thai="archived"))
    assert [(e.field, e.source) for e in result.errors] == [("TrangThaiHoSo", "trang_thai")]
    assert "unknown TrangThaiHoSo code '11'" in result.errors[0].reason


def test_new_dossier_needs_no_reception_date(mset: MappingSet) -> None:
    result = mset.get("dossier").map(dossier_record(trang_thai="new", ngay_tiep_nhan=None))
    assert result.ok, result.errors
    missing = mset.get("dossier").map(dossier_record(trang_thai="processing", ngay_tiep_nhan=None))
    assert [e.field for e in missing.errors] == ["NgayTiepNhan"] or "NgayTiepNhan" in str(missing.errors)
