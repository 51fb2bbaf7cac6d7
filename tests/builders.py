"""Records the tests build, shared where more than one test file needs the same one (the
``duplicates`` tool found ``portal_dossier`` written twice, in the unit and end-to-end pulls)."""

from __future__ import annotations

from typing import Any

PORTAL_PROCEDURES = ["1.001193", "1.000656", "1.000894", "1.004873"]  # national codes the sample offers


def portal_dossier(n: int, *, attachment: bool = False) -> dict[str, Any]:
    """Dossier ``n`` as a citizen submitted it on the portal (fixed dates: the result never depends
    on today), with one fee; with ``attachment``, one submitted file (``TaiLieuNop``) on a host
    the portal names."""
    dossier: dict[str, Any] = {
        "MaHoSo": f"G22.99.99-251120-{n:06d}",
        "MaTTHC": PORTAL_PROCEDURES[n % len(PORTAL_PROCEDURES)],
        "ChuHoSo": f"Nguyễn Văn Công {n}",
        "LoaiDoiTuong": "1",
        "SoGiayToChuHoSo": f"0221900{n:05d}",
        "SoDienThoai": f"09{n:08d}",
        "Email": f"cong{n}@example.vn",
        "TrichYeuHoSo": f"Hồ sơ nộp trực tuyến số {n}",
        "NgayNopHoSo": f"202511{1 + n % 28:02d}0{n % 10}1530",
        "DanhSachLePhi": [
            {
                "TenPhiLePhi": "Lệ phí",
                "MaPhiLePhi": "LP",
                "HinhThucThu": "1",
                "Gia": "8000",
                "LoaiPhiLePhi": "2",
            }
        ],
    }
    if attachment:
        dossier["TaiLieuNop"] = [
            {
                "TepDinhKemId": str(n),
                "TenTepDinhKem": "To khai.pdf",
                "IsDeleted": "False",
                "MaThanhPhanHoSo": "",
                "DuongDanTaiTepTin": f"https://dichvucong.example/f/{n}",
            }
        ]
    return dossier
