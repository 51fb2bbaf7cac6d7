"""The reverse direction: portal records → provincial rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dvcsync.mapping import MappingSet, load_mappings


@pytest.fixture
def mset(mappings_dir: Path) -> MappingSet:
    return load_mappings(mappings_dir)


def portal_dossier(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "MaHoSo": "G22.99-251120-000123",
        "MaTTHC": "1.001193",
        "TenTTHC": "Đăng ký khai sinh",
        "ChuHoSo": "Phạm Minh Khoa",
        "LoaiDoiTuong": "1",
        "SoGiayToChuHoSo": "022090004321",
        "SoDienThoai": "0987654321",
        "Email": "khoa@example.vn",
        "TrichYeuHoSo": "",
        "NgayNopHoSo": "20251120101530",
        "DanhSachLePhi": [
            {
                "TenPhiLePhi": "Lệ phí",
                "MaPhiLePhi": "LP1",
                "HinhThucThu": "1",
                "Gia": "8000",
                "LoaiPhiLePhi": "2",
            }
        ],
        "TaiLieuNop": [
            {
                "TepDinhKemId": "9",
                "TenTepDinhKem": "To khai.pdf",
                "IsDeleted": "False",
                "MaThanhPhanHoSo": "",
                "DuongDanTaiTepTin": "https://dichvucong.example/f/9",
            }
        ],
    }
    body.update(overrides)
    return body


def test_portal_dossier_becomes_a_province_row(mset: MappingSet) -> None:
    result = mset.get("inbound_dossier").map(portal_dossier())
    assert result.ok, result.errors
    row = result.value
    assert row["so_ho_so"] == row["ma_ho_so_qg"] == "G22.99-251120-000123"
    assert row["ma_thu_tuc"] == "HT-KS-01"  # national code looked up in reverse
    assert row["loai_chu_ho_so"] == "cong_dan"
    assert row["ngay_nop"] == "2025-11-20T10:15:30"
    assert row["trich_yeu"] == "Đăng ký khai sinh"  # summary empty: the procedure name stands in
    assert (row["kenh_nop"], row["trang_thai"], row["nguon"]) == ("truc_tuyen", "new", "dvcqg")
    assert row["le_phi"] == [
        {
            "ma_phi": "LP1",
            "ten_phi": "Lệ phí",
            "loai_phi": "le_phi",
            "hinh_thuc_thu": "thu_truoc",
            "so_tien": 8000,
            "da_thanh_toan": 0,
        }
    ]
    assert row["tai_lieu"][0]["da_xoa"] == 0 and row["tai_lieu"][0]["loai"] == "nop"


def test_unknown_national_procedure_and_bad_date(mset: MappingSet) -> None:
    result = mset.get("inbound_dossier").map(portal_dossier(MaTTHC="2.999999", NgayNopHoSo="20251131101530"))
    assert {(e.field, e.source) for e in result.errors} == {
        ("ma_thu_tuc", "MaTTHC"),
        ("ngay_nop", "NgayNopHoSo"),
    }
    assert all(e.record == "G22.99-251120-000123" for e in result.errors)


def test_personal_data_masked_in_inbound_errors(mset: MappingSet, mappings_dir: Path) -> None:
    spec = mappings_dir / "inbound_dossier.yaml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace(
            "so_giay_to: {path: SoGiayToChuHoSo, format: text, personal: true}",
            "so_giay_to: {path: SoGiayToChuHoSo, format: int, personal: true}",
        ),
        encoding="utf-8",
    )
    result = (
        load_mappings(mappings_dir).get("inbound_dossier").map(portal_dossier(SoGiayToChuHoSo="02209000432X"))
    )
    assert [e.field for e in result.errors] == ["so_giay_to"]
    assert "02209000432X" not in str(result.errors[0]) and "02********2X" in str(result.errors[0])


def test_promotion_notification(mset: MappingSet) -> None:
    result = mset.get("inbound_promotion").map(
        {
            "MaHoSo": "G22.99-251120-0001",
            "MaTTHC": "2.000002",
            "SoVanBan": "12/2025/TB",
            "NgayNopHoSo": "20251120090000",
            "TenThuongNhan": "Công ty TNHH Thương mại Hà Sơn",
            "MaSoThue": "0101234567",
            "DiaChiDoanhNghiep": {"DiaChiChiTiet": "12 Lê Lợi, phường Hà Sơn"},
            "TenChuongTrinhKhuyenMai": "Mừng xuân " + "rất " * 400,
        }
    )
    # 2.000002 is not in the test procedure table: the error names it
    assert [(e.field, e.value) for e in result.errors] == [("ma_thu_tuc", "'2.000002'")]
