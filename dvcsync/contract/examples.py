"""Example bodies for the published OpenAPI documents (``dvcsync.contract.openapi``): the golden
bodies of ``tests/fixtures/contract`` (fictitious data; payment bodies signed with the test secret
``khoa-bi-mat-thu-nghiem``), copied here because a running server never reads the tests.
``tests/unit/server/test_openapi.py`` checks each still equals its golden file."""

from __future__ import annotations

from typing import Any

PAYMENT_CALLBACK: dict[str, Any] = {
    "LoaiBanTin": "CONFIRM",
    "MaLoi": "00",
    "MaDoiTac": "H40-QNINH",
    "MaThamChieu": "dvc00000001H40191209000120191209093015",
    "SoTien": 8000,
    "MaTienTe": "VND",
    "MaGiaoDich": "PP2019120900012345",
    "MaNganHang": "VCB",
    "ThoiGianGD": "20191209093402",
    "ThongTinGiaoDich": "THANH TOAN HO SO 000.00.01.H40-191209-0001",
    "MaXacThuc": "dd952334d52ac6bd0d378cfdb78c73ce708b12dcfd20432f0084cbee7e5f968e",
}
"""``payment_callback_paid.json``"""

BILL_LOOKUP: dict[str, Any] = {"MaHoSo": "000.00.01.H40-191209-0001"}
"""``payment_bill_lookup_request.json``"""

PROMOTION: dict[str, Any] = {
    "MaHoSo": "G22.99-251120-0003",
    "MaTTHC": "2.000033",
    "SoVanBan": "125/2025/TB-STBC",
    "NgayNopHoSo": "20251120161245",
    "TenThuongNhan": "Công ty Cổ phần Siêu thị Bãi Cháy",
    "MaSoThue": "5700123456",
    "DiaChiDoanhNghiep": {
        "MaTinh": "22",
        "MaHuyen": "193",
        "MaXa": "06658",
        "DiaChiChiTiet": "Số 18 đường Hạ Long, phường Bãi Cháy",
    },
    "DienThoai": "02033845678",
    "Email": "marketing@sieuthibaichay.example.vn",
    "NguoiLienHe": "Đỗ Thanh Tùng",
    "TenChuongTrinhKhuyenMai": "Mừng xuân Bính Ngọ 2026",
    "HinhThucKhuyenMai": "Giảm giá trực tiếp 10% - 30% trên giá bán niêm yết",
    "ThoiGianKhuyenMaiTu": "20260101000000",
    "ThoiGianKhuyenMaiDen": "20260215235959",
    "HangHoaDichVuKhuyenMai": "Thực phẩm đóng gói, đồ gia dụng, quà Tết",
    "TongGiaTriHangHoa": "450000000",
    "NoiDungChiTiet": "Áp dụng cho khách hàng mua sắm tại siêu thị trong thời gian khuyến mại; không áp dụng đồng thời với chương trình khác.",  # noqa: E501
    "TaiLieuNop": [
        {
            "TenTepDinhKem": "Thong-bao-khuyen-mai.pdf",
            "Base64": "JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCnRyYWlsZXIKPDwvUm9vdCAxIDAgUj4+CiUlRU9GCg==",  # noqa: E501
        }
    ],
}
"""``thongbaokhuyenmai_push.json``"""

PAYMENT_INIT: dict[str, Any] = {
    "LoaiBanTin": "INIT",
    "PhienBan": "1.0.6",
    "MaDoiTac": "H40-QNINH",
    "MaThamChieu": "dvc00000001H40191209000120191209093015",
    "SoTien": "8000",
    "LoaiHinhThanhToan": "PAY",
    "MaKenhThanhToan": "1",
    "MaThietBi": "1",
    "NgonNgu": "vi-VN",
    "MaTienTe": "VND",
    "MaNganHang": "PAYMENT",
    "ThongTinGiaoDich": "THANH TOAN HO SO 000.00.01.H40-191209-0001",
    "ThoiGianGD": "20191209093015",
    "Ip": "10.20.30.40",
    "ThongTinBienLai": {
        "MaDichVu": "2",
        "MaDVC": "1.001193",
        "TenDVC": "Đăng ký khai sinh",
        "MaTTHC": "1.001193",
        "TenTTHC": "Thủ tục đăng ký khai sinh",
        "MaDonVi": "000.00.01.H40",
        "TenDonVi": "Ủy ban nhân dân phường Hồng Gai",
        "MaHoSo": "000.00.01.H40-191209-0001",
        "TKThuHuong": "3761000123456",
        "MaNHThuHuong": "BIDV",
        "TenTKThuHuong": "UBND phường Hồng Gai - tài khoản thu phí, lệ phí",
        "NoiDungThanhToan": "Thanh toán phí, lệ phí hồ sơ 000.00.01.H40-191209-0001",
        "HoTenNguoiNop": "Nguyễn Thị Thu Hà",
        "SoCMNDNguoiNop": "022190001234",
        "DiaChiNguoiNop": "Tổ 5, khu 3, phường Hồng Gai",
        "HuyenNguoiNop": "Thành phố Hạ Long",
        "TinhNguoiNop": "Quảng Ninh",
        "PhiLePhi": [
            {
                "LoaiPhiLePhi": "1",
                "MaPhiLePhi": "PHI-HT-TL",
                "TenPhiLePhi": "Phí cấp bản sao trích lục hộ tịch",
                "SoTien": "3000",
            },
            {
                "LoaiPhiLePhi": "2",
                "MaPhiLePhi": "LP-HT-TL",
                "TenPhiLePhi": "Lệ phí cấp bản sao trích lục (01 bản)",
                "SoTien": "5000",
            },
        ],
        "DSKhoanNop": [
            {"NoiDung": "Phí cấp bản sao trích lục hộ tịch", "SoTien": "3000"},
            {"NoiDung": "Lệ phí cấp bản sao trích lục (01 bản)", "SoTien": "5000"},
        ],
    },
    "MaXacThuc": "f5d8b4f5eccd65cbb8bfb82958dbc481af16cb1041d761e666cc0ead462f73e2",
}
"""``payment_init_request.json``"""

PAYMENT_QUERY: dict[str, Any] = {
    "LoaiBanTin": "QUERY",
    "PhienBan": "1.0.6",
    "MaDoiTac": "H40-QNINH",
    "MaThamChieu": "dvc00000001H40191209000120191209093015",
    "ThoiGianGD": "20191209093015",
    "MaXacThuc": "278dfab585fc60a0f3656e9321199a3cf28b02ad3e454533afbf3e5cd532731c",
}
"""``payment_query_request.json``"""

PAYMENT_GET_BILL: dict[str, Any] = {
    "LoaiBanTin": "GET_BILL",
    "PhienBan": "1.0.6",
    "MaDoiTac": "H40-QNINH",
    "MaThamChieu": "dvc00000001H40191209000120191209093015",
    "ThoiGianGD": "20191209093015",
    "MaXacThuc": "c02c888d31ff7feb77a658444d05269b856a83061bda8264594221d9061224f7",
}
"""``payment_get_bill_request.json``"""
