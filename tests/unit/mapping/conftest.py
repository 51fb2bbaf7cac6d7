"""Mapping tests run the shipped specs against small, fixed code tables of their own, so they do
not move when the sample catalogue grows."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from dvcsync.mapping import MappingSet, load_mappings

REPO = Path(__file__).resolve().parents[3]

PROCEDURES = """\
name: procedures
description: test table
entries:
  HT-KS-01: {ma_tthc: "1.001193", ten_tthc: "Đăng ký khai sinh", ma_linh_vuc: "HT", ten_linh_vuc: "Hộ tịch"}
  GT-GPLX-01:
    {ma_tthc: "1.002804", ten_tthc: "Đổi giấy phép lái xe", ma_linh_vuc: "DB", ten_linh_vuc: "Đường bộ"}
"""

AGENCIES = """\
name: agencies
description: test table
dated: true
entries:
  - key: HUYEN-A
    value: {ma: "000.20.31.H40", ten: "UBND huyện A"}
    valid_from: "2015-01-01"
    valid_to: "2025-06-30"
    successor: XA-MOI-1
  - key: XA-MOI-1
    value: {ma: "000.31.31.H40", ten: "UBND xã Mới Một"}
    valid_from: "2025-07-01"
  - key: SO-TP
    value: {ma: "000.00.01.H40", ten: "Sở Tư pháp"}
    valid_from: "2010-01-01"
"""


def _copy_mappings(target: Path) -> Path:
    shutil.copytree(REPO / "mappings", target)
    (target / "codes" / "procedures.yaml").write_text(PROCEDURES, encoding="utf-8")
    (target / "codes" / "agencies.yaml").write_text(AGENCIES, encoding="utf-8")
    return target


@pytest.fixture
def mappings_dir(tmp_path: Path) -> Path:
    """A private copy: tests may edit it."""
    return _copy_mappings(tmp_path / "mappings")


@pytest.fixture(scope="session")
def shared_mappings(tmp_path_factory: pytest.TempPathFactory) -> MappingSet:
    """Loaded once for the many-example property tests; never edit it."""
    return load_mappings(_copy_mappings(tmp_path_factory.mktemp("shared") / "mappings"))


def dossier_record(**overrides: Any) -> dict[str, Any]:
    """A sample-schema ho_so row with its children, as the source yields it."""
    record: dict[str, Any] = {
        "id": 7,
        "so_ho_so": "000.00.01.H40-250812-0007",
        "ma_thu_tuc": "HT-KS-01",
        "chu_ho_so": "Nguyễn Thị Hồng Nhung",
        "loai_chu_ho_so": "cong_dan",
        "so_giay_to": "022190001234",
        "dien_thoai": "0912345678",
        "email": "nhung.nguyen@example.vn",
        "dia_chi": "Tổ 3, phường Hồng Gai",
        "kenh_nop": "truc_tuyen",
        "trich_yeu": "Đăng ký khai sinh cho con",
        "ngay_nop": "2025-08-12T08:30:00",
        "ngay_tiep_nhan": "2025-08-12T09:15:00",
        "ngay_hen_tra": "2025-08-15T17:00:00",
        "ngay_ket_thuc": None,
        "ngay_tra": None,
        "ngay_tu_choi": None,
        "trang_thai": "processing",
        "ma_don_vi": "SO-TP",
        "hinh_thuc_nhan": "tai_quay",
        "nguon": "mot_cua",
        "ma_ho_so_qg": None,
        "ghi_chu": None,
        "created_at": "2025-08-12T08:30:00",
        "updated_at": "2025-08-12T10:00:00",
        "steps": [
            {
                "id": 1,
                "ho_so_id": 7,
                "thu_tu": 1,
                "can_bo": "Trần Văn Bình",
                "chuc_danh": "Chuyên viên",
                "phong_ban": "Bộ phận một cửa",
                "noi_dung": "Tiếp nhận hồ sơ",
                "trang_thai": "receiving",
                "thoi_diem": "2025-08-12T09:15:00",
                "bat_dau": "2025-08-12T09:15:00",
                "han_xu_ly": None,
            },
            {
                "id": 2,
                "ho_so_id": 7,
                "thu_tu": 2,
                "can_bo": "Lê Thị Thu",
                "chuc_danh": None,
                "phong_ban": "Phòng Hộ tịch",
                "noi_dung": "Thụ lý hồ sơ",
                "trang_thai": "processing",
                "thoi_diem": "2025-08-12T10:00:00",
                "bat_dau": None,
                "han_xu_ly": "2025-08-15T17:00:00",
            },
        ],
        "fees": [
            {
                "id": 1,
                "ho_so_id": 7,
                "ma_phi": "LP-KS",
                "ten_phi": "Lệ phí đăng ký khai sinh",
                "loai_phi": "le_phi",
                "hinh_thuc_thu": "thu_truoc",
                "so_tien": 8000,
                "da_thanh_toan": 1,
            },
        ],
        "payments": [
            {"id": 1, "ho_so_id": 7, "ma_tham_chieu": "dvc1", "so_tien": 8000, "trang_thai": "failed"},
            {"id": 2, "ho_so_id": 7, "ma_tham_chieu": "dvc2", "so_tien": 8000, "trang_thai": "paid"},
        ],
        "documents": [
            {
                "id": 11,
                "ho_so_id": 7,
                "loai": "nop",
                "ten_tep": "To khai khai sinh.pdf",
                "ma_thanh_phan": "",
                "duong_dan": "https://motcua.h40.example.vn/files/11/to-khai.pdf",
                "so_hoa": 1,
                "da_xoa": 0,
            },
            {
                "id": 12,
                "ho_so_id": 7,
                "loai": "ket_qua",
                "ten_tep": "Giấy khai sinh",
                "ma_thanh_phan": "KQ01",
                "duong_dan": "https://motcua.h40.example.vn/files/12/gks.pdf",
                "so_hoa": 0,
                "da_xoa": 0,
            },
        ],
    }
    record.update(overrides)
    return record
