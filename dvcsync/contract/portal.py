"""Wire models of the national portal (``national-portal.md``): envelopes, records and replies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ._base import WireModel
from ._codes import (
    DuocTaiSuDung,
    HinhThuc,
    HinhThucThu,
    KenhThucHien,
    LoaiDinhDanh,
    LoaiDoiTuong,
    LoaiPhiLePhi,
    TrangThaiHoSo,
)
from ._types import (
    Bit,
    ErrorCode,
    Flag,
    FlagOrEmpty,
    MaTTHCCode,
    ReplyText,
    StrAmount,
    WireDate,
    WireStr,
    code_check,
    to_error_code,
    to_str,
)

TrangThaiCode = Annotated[str, to_str, code_check(TrangThaiHoSo, allow_empty=False)]
KenhCode = Annotated[str, to_str, code_check(KenhThucHien)]
HinhThucCode = Annotated[str, to_str, code_check(HinhThuc)]
LoaiDoiTuongCode = Annotated[str, to_str, code_check(LoaiDoiTuong)]
LoaiPhiCode = Annotated[str, to_str, code_check(LoaiPhiLePhi)]
HinhThucThuCode = Annotated[str, to_str, code_check(HinhThucThu)]
LoaiDinhDanhCode = Annotated[str, to_str, code_check(LoaiDinhDanh, allow_empty=False)]
TaiSuDungCode = Annotated[str, to_str, code_check(DuocTaiSuDung)]

Str50 = Field(default=None, max_length=50)

# ---------------------------------------------------------------- auth


class AuthRequest(WireModel):
    """Login body. Secrets, session tokens and personal data are left out of every model's repr
    (``repr=False``), so logging a model never writes them in clear."""

    username: WireStr
    password: WireStr = Field(repr=False)


class AuthReply(WireModel):
    error_code: ErrorCode
    session: WireStr | None = Field(default=None, repr=False)
    message: WireStr | None = None


# ---------------------------------------------------------------- dossier and its lists


class DinhDanh(WireModel):
    """Owner identifier (personal data)."""

    LoaiDinhDanh: LoaiDinhDanhCode
    SoDinhDanh: WireStr = Field(min_length=1, repr=False)


class KetNoiCSDL(WireModel):
    MaCSDL: WireStr


class TaiLieu(WireModel):
    """A submitted document (``TaiLieuNop``, ``TaiLieuXuLy``): the portal downloads the URL."""

    TepDinhKemId: WireStr | None = None
    TenTepDinhKem: WireStr | None = Field(default=None, max_length=4000)
    IsDeleted: FlagOrEmpty | None = None
    MaThanhPhanHoSo: WireStr | None = None
    DuongDanTaiTepTin: WireStr | None = None
    DuocSoHoa: Bit | None = None
    DuocTaiSuDung: TaiSuDungCode | None = None
    DuocLayTuKhoDMQG: Bit | None = None
    MaKetQuaThayThe: WireStr | None = None


class LePhi(WireModel):
    TenPhiLePhi: WireStr | None = None
    MaPhiLePhi: WireStr | None = None
    HinhThucThu: HinhThucThuCode | None = None
    Gia: StrAmount | None = Field(default=None, ge=0)
    LoaiPhiLePhi: LoaiPhiCode | None = None

    @field_validator("Gia", mode="before")
    @classmethod
    def _empty_price_is_absent(cls, value: Any) -> Any:
        """§2.1 lets an optional field be ``""``; an amount has no empty form, so it reads as absent."""
        return None if isinstance(value, str) and value.strip() == "" else value


class TepDinhKemKhac(WireModel):
    TenGiayTo: WireStr | None = None
    SoLuong: WireStr | None = None
    LoaiGiayTo: WireStr | None = None


class HoSoBoSung(WireModel):
    HoSoBoSungId: WireStr | None = None
    NguoiYeuCauBoSung: WireStr | None = None
    NoiDungBoSung: WireStr | None = None
    NgayBoSung: WireDate | None = None
    NguoiTiepNhanBoSung: WireStr | None = None
    ThongTinTiepNhan: WireStr | None = None
    NgayTiepNhanBoSung: WireDate | None = None
    TrangThaiBoSung: WireStr | None = None
    DanhSachGiayToBoSung: list[TaiLieu] | None = None
    DanhSachLePhiBoSung: list[LePhi] | None = None
    NgayHenTraTruoc: WireDate | None = None
    NgayHenTraMoi: WireDate | None = None


class GiayToKetQua(WireModel):
    TenGiayTo: WireStr | None = Field(default=None, max_length=2000)
    MaThanhPhanHoSo: WireStr | None = None
    GiayToId: WireStr | None = None
    DuongDanTepTinKetQua: WireStr | None = None
    MaGiayToKetQua: WireStr | None = None


# A dossier still waiting (1), refused at reception (3) or withdrawn before reception (7) has no
# reception date; every other status comes after reception.
NEVER_RECEIVED = frozenset(
    {TrangThaiHoSo.MOI_DANG_KY, TrangThaiHoSo.KHONG_DUOC_TIEP_NHAN, TrangThaiHoSo.CONG_DAN_RUT_HO_SO}
)

REQUIRED_DOSSIER_FIELDS = ("MaHoSo", "MaTTHC", "ChuHoSo", "NgayTiepNhan", "TrangThaiHoSo", "DonViXuLy")


class HoSo(WireModel):
    """One dossier of ``DongBoHoSoMC`` (§2.1).

    Only the six fields of ``REQUIRED_DOSSIER_FIELDS`` must be filled (``NgayTiepNhan`` may be empty
    or absent while the dossier is still status 1, not yet received; it is then emitted as ``""``);
    every other field may be absent or ``""``.
    """

    MaHoSo: WireStr = Field(min_length=1, max_length=100)
    MaTTHC: MaTTHCCode
    TenTTHC: WireStr | None = None
    MaLinhVuc: WireStr | None = None
    TenLinhVuc: WireStr | None = None
    SoBienNhan: WireStr | None = None
    ChuHoSo: WireStr = Field(min_length=1, max_length=500)
    LoaiDoiTuong: LoaiDoiTuongCode | None = None
    MaDoiTuong: WireStr | None = None
    SoGiayToChuHoSo: WireStr | None = Field(default=None, repr=False)
    ThongTinKhac: WireStr | None = None
    Email: WireStr | None = Field(default=None, repr=False)
    Fax: WireStr | None = Field(default=None, repr=False)
    SoDienThoai: WireStr | None = Field(default=None, repr=False)
    TrichYeuHoSo: WireStr | None = Field(default=None, max_length=1000)
    NgayNopHoSo: WireDate | None = None
    NgayTiepNhan: WireDate = ""  # absent only while status 1 (not yet received): checked below
    NgayHenTra: WireDate | None = None
    NgayTra: WireDate | None = None
    NgayKetThucXuLy: WireDate | None = None
    NgayTuChoi: WireDate | None = None
    TrangThaiHoSo: TrangThaiCode
    KenhThucHien: KenhCode | None = None
    HinhThuc: HinhThucCode | None = None
    ThongTinTra: WireStr | None = None
    DonViXuLy: WireStr = Field(min_length=1)
    GhiChu: WireStr | None = None
    DuocThanhToanTrucTuyen: Bit | None = None
    NoiNopHoSo: WireStr | None = None
    HoSoCoThanhPhanSoHoa: Bit | None = None
    TaiKhoanDuocXacThucVoiVNeID: Bit | None = None
    DinhDanhCHS: list[DinhDanh] | None = None
    DSKetNoiCSDL: list[KetNoiCSDL] | None = None
    TaiLieuNop: list[TaiLieu] | None = None
    DanhSachLePhi: list[LePhi] | None = None
    DanhSachTepDinhKemKhac: list[TepDinhKemKhac] | None = None
    DanhSachHoSoBoSung: list[HoSoBoSung] | None = None
    DanhSachGiayToKetQua: list[GiayToKetQua] | None = None

    @model_validator(mode="after")
    def _received_unless_new(self) -> HoSo:
        if self.NgayTiepNhan == "" and self.TrangThaiHoSo not in NEVER_RECEIVED:
            raise ValueError(
                f"NgayTiepNhan is required once a dossier is received (TrangThaiHoSo {self.TrangThaiHoSo})"
            )
        return self


class TienDo(WireModel):
    """One processing-history entry of ``CapNhatTienDoHoSoMC`` (§2.2). The portal appends these."""

    MaHoSo: WireStr = Field(min_length=1, max_length=100)
    NguoiXuLy: WireStr = Field(min_length=1, max_length=50)
    ChucDanh: WireStr | None = None
    PhongBanXuLy: WireStr | None = None
    ThoiDiemXuLy: WireDate = Field(min_length=14)
    NoiDungXuLy: WireStr = Field(min_length=1)
    TrangThai: TrangThaiCode
    NgayBatDau: WireDate | None = None
    NgayKetThucTheoQuyDinh: WireDate | None = None


class TrangThaiHoSoDVC(WireModel):
    """``data`` of ``DongBoTrangThaiHoSo`` type 2: status of a dossier submitted on the portal."""

    MaHoSo: WireStr = Field(min_length=1)
    MaHoSoDonVi: WireStr | None = None
    MaDoiTuong: WireStr | None = None
    NoiDung: WireStr | None = None
    NgayXuLy: WireDate = Field(min_length=14)
    TrangThai: TrangThaiCode
    TaiLieuXuLy: list[TaiLieu] | None = None


class DanhGia(WireModel):
    NgayTongHop: WireStr = Field(pattern=r"^(1[0-2]|[1-9])-\d{4}$")
    TongSoNguoiDanhGia: WireStr
    PhanTramDanhGiaRatHaiLong: WireStr = Field(pattern=r"^\d{1,3}(\.\d+)?%$")
    PhanTramDanhGiaHaiLong: WireStr = Field(pattern=r"^\d{1,3}(\.\d+)?%$")
    PhanTramDanhGiaChuaHaiLong: WireStr = Field(pattern=r"^\d{1,3}(\.\d+)?%$")
    MaThuTuc: WireStr | None = None
    NoiDung: WireStr | None = None
    Madonvi: WireStr | None = None
    TenDonVi: WireStr | None = None


# ---------------------------------------------------------------- request envelopes


class Envelope(WireModel):
    session: WireStr = Field(repr=False)
    madonvi: WireStr
    service: WireStr


class DongBoHoSoMCRequest(Envelope):
    service: Literal["DongBoHoSoMC"] = "DongBoHoSoMC"
    isUpdating: Flag = "False"
    data: list[HoSo]


class CapNhatTienDoHoSoMCRequest(Envelope):
    service: Literal["CapNhatTienDoHoSoMC"] = "CapNhatTienDoHoSoMC"
    data: list[TienDo]


class DongBoTrangThaiHoSoRequest(Envelope):
    service: Literal["DongBoTrangThaiHoSo"] = "DongBoTrangThaiHoSo"
    type: WireStr = "2"
    data: TrangThaiHoSoDVC


class DongBoDanhGiaRequest(Envelope):
    service: Literal["DongBoDanhGia"] = "DongBoDanhGia"
    data: list[DanhGia]


class TraCuuHoSoRequest(Envelope):
    service: Literal["TraCuuHoSo"] = "TraCuuHoSo"
    mahoso: WireStr = Field(min_length=1)


class LayThuTucRequest(Envelope):
    service: Literal["LayThuTuc"] = "LayThuTuc"
    maTTHC: WireStr = Field(min_length=1)


class LayDanhSachTTHCRequest(Envelope):
    service: Literal["LayDanhSachTTHC"] = "LayDanhSachTTHC"


class LayDanhMucCoQuanRequest(Envelope):
    service: Literal["LayDanhMucCoQuan"] = "LayDanhMucCoQuan"


class LayDanhMucLinhVucRequest(Envelope):
    service: Literal["LayDanhMucLinhVuc"] = "LayDanhMucLinhVuc"


class DanhSachHoSoRequest(Envelope):
    service: Literal["DanhSachHoSo"] = "DanhSachHoSo"
    tungay: WireDate = ""
    denngay: WireDate = ""
    trang: WireStr = "1"
    sobanghi: WireStr = "50"


class XacNhanHoSoRequest(Envelope):
    service: Literal["XacNhanHoSo"] = "XacNhanHoSo"
    mahoso: WireStr = Field(min_length=1)
    mahosodonvi: WireStr | None = None


REQUEST_MODELS: dict[str, type[Envelope]] = {
    "DongBoHoSoMC": DongBoHoSoMCRequest,
    "CapNhatTienDoHoSoMC": CapNhatTienDoHoSoMCRequest,
    "DongBoTrangThaiHoSo": DongBoTrangThaiHoSoRequest,
    "DongBoDanhGia": DongBoDanhGiaRequest,
    "TraCuuHoSo": TraCuuHoSoRequest,
    "LayThuTuc": LayThuTucRequest,
    "LayDanhSachTTHC": LayDanhSachTTHCRequest,
    "LayDanhMucCoQuan": LayDanhMucCoQuanRequest,
    "LayDanhMucLinhVuc": LayDanhMucLinhVucRequest,
    "DanhSachHoSo": DanhSachHoSoRequest,
    "XacNhanHoSo": XacNhanHoSoRequest,
}
"""Every service by name; ``SHARE_SERVICES`` are reached on ``share_endpoint``, the rest on
``integration_endpoint``."""

SHARE_SERVICES = frozenset({"LayDanhSachTTHC", "LayDanhMucCoQuan", "LayDanhMucLinhVuc"})

# ---------------------------------------------------------------- replies


class ItemResult(WireModel):
    """Per-item result of a batch write (a choice of ours, §2.1)."""

    MaHoSo: WireStr
    error_code: ErrorCode
    message: ReplyText = ""


class PortalReply(WireModel):
    """Every reply: ``error_code`` 0 (sent as ``0``, ``"0"`` or ``"00"``) is success."""

    error_code: ErrorCode
    message: ReplyText = ""
    result: list[Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error_code == 0


class HoSoDaLuu(HoSo):
    """``TraCuuHoSo`` result: the stored dossier plus its appended history."""

    QuaTrinhXuLy: list[TienDo] = Field(default_factory=list)


class LinhVucThucHien(WireModel):
    MALINHVUC: WireStr
    TENLINHVUC: WireStr


class PhiLePhiTTHC(WireModel):
    MAPHILEPHI: WireStr | None = None
    SOTIEN: WireStr | None = None
    DONVI: WireStr | None = None
    MOTA: WireStr | None = None


class ThoiGianTTHC(WireModel):
    THOIGIANGIAIQUYET: WireStr | None = None
    DONVITINH: WireStr | None = None
    MOTA: WireStr | None = None
    PHILEPHI: list[PhiLePhiTTHC] = Field(default_factory=list)


class CachThucThucHien(WireModel):
    KENH: WireStr
    THOIGIAN: list[ThoiGianTTHC] = Field(default_factory=list)


class GiayToTTHC(WireModel):
    MAGIAYTO: WireStr | None = None
    TENGIAYTO: WireStr


class ThanhPhanHoSo(WireModel):
    GIAYTO: list[GiayToTTHC] = Field(default_factory=list)


class KetQuaThucHien(WireModel):
    MAKETQUA: WireStr | None = None
    TENKETQUA: WireStr


class CoQuanThucHien(WireModel):
    MADONVI: WireStr
    TENDONVI: WireStr


class ThuTuc(WireModel):
    """``LayThuTuc`` result item (UPPER-CASE keys, as the portal sends them)."""

    MATTHC: WireStr
    TENTTHC: WireStr
    MACOQUANCONGBO: WireStr | None = None
    TRANGTHAI: WireStr | None = None
    LINHVUCTHUCHIEN: list[LinhVucThucHien] = Field(default_factory=list)
    CACHTHUCTHUCHIEN: list[CachThucThucHien] = Field(default_factory=list)
    THANHPHANHOSO: list[ThanhPhanHoSo] = Field(default_factory=list)
    KETQUATHUCHIEN: list[KetQuaThucHien] = Field(default_factory=list)
    COQUANTHUCHIEN: list[CoQuanThucHien] = Field(default_factory=list)


class ThuTucTomTat(WireModel):
    MATTHC: WireStr
    TENTTHC: WireStr


class CoQuan(WireModel):
    MADONVI: WireStr
    TENDONVI: WireStr
    CAPDONVI: WireStr | None = None


class LinhVuc(WireModel):
    MALINHVUC: WireStr
    TENLINHVUC: WireStr
    MANGANH: WireStr | None = None


class HoSoCongDVC(WireModel):
    """A dossier submitted on the portal, as ``DanhSachHoSo`` lists it (§3)."""

    MaHoSo: WireStr = Field(min_length=1)
    MaTTHC: MaTTHCCode
    TenTTHC: WireStr | None = None
    ChuHoSo: WireStr | None = None
    LoaiDoiTuong: LoaiDoiTuongCode | None = None
    MaDoiTuong: WireStr | None = None
    SoGiayToChuHoSo: WireStr | None = Field(default=None, repr=False)
    ThongTinKhac: WireStr | None = None
    Email: WireStr | None = Field(default=None, repr=False)
    Fax: WireStr | None = Field(default=None, repr=False)
    SoDienThoai: WireStr | None = Field(default=None, repr=False)
    TrichYeuHoSo: WireStr | None = Field(default=None, max_length=1000)
    NgayNopHoSo: WireDate
    DinhDanhCHS: list[DinhDanh] | None = None
    TaiLieuNop: list[TaiLieu] | None = None
    DanhSachLePhi: list[LePhi] | None = None


# ---------------------------------------------------------------- typed replies, by service
# ``PortalReply`` parses any reply; these read ``result`` as the items the service returns, so a
# caller gets the models instead of dicts. An error reply (no ``result``) parses with every one.


class BatchReply(PortalReply):
    """``DongBoHoSoMC`` reply: one ``{MaHoSo, error_code, message}`` per item (a choice, §2.1)."""

    result: list[ItemResult] | None = None


class TraCuuHoSoReply(PortalReply):
    """``[]`` when the dossier is unknown, else one stored dossier with its history."""

    result: list[HoSoDaLuu] | None = None


class LayThuTucReply(PortalReply):
    result: list[ThuTuc] | None = None


class LayDanhSachTTHCReply(PortalReply):
    result: list[ThuTucTomTat] | None = None


class LayDanhMucCoQuanReply(PortalReply):
    result: list[CoQuan] | None = None


class LayDanhMucLinhVucReply(PortalReply):
    result: list[LinhVuc] | None = None


class DanhSachHoSoReply(PortalReply):
    """Portal-submitted dossiers not yet acknowledged with ``XacNhanHoSo``."""

    result: list[HoSoCongDVC] | None = None


REPLY_MODELS: dict[str, type[PortalReply]] = {
    "DongBoHoSoMC": BatchReply,
    "CapNhatTienDoHoSoMC": PortalReply,
    "DongBoTrangThaiHoSo": PortalReply,
    "DongBoDanhGia": PortalReply,
    "TraCuuHoSo": TraCuuHoSoReply,
    "LayThuTuc": LayThuTucReply,
    "LayDanhSachTTHC": LayDanhSachTTHCReply,
    "LayDanhMucCoQuan": LayDanhMucCoQuanReply,
    "LayDanhMucLinhVuc": LayDanhMucLinhVucReply,
    "DanhSachHoSo": DanhSachHoSoReply,
    "XacNhanHoSo": PortalReply,
}
"""The reply model of every service of ``REQUEST_MODELS`` (the auth reply is ``AuthReply``)."""

# ---------------------------------------------------------------- pushed by the portal (§5)


class DiaChi(WireModel):
    MaTinh: WireStr | None = None
    MaHuyen: WireStr | None = None
    MaXa: WireStr | None = None
    DiaChiChiTiet: WireStr | None = None


class TepBase64(WireModel):
    TenTepDinhKem: WireStr
    Base64: WireStr = Field(repr=False)


class ThongBaoKhuyenMai(WireModel):
    """Promotion notification submitted on the portal and POSTed to the province (§5)."""

    MaHoSo: WireStr = Field(min_length=1)
    MaTTHC: MaTTHCCode
    SoVanBan: WireStr | None = None
    NgayNopHoSo: WireDate
    TenThuongNhan: WireStr = Field(min_length=1)
    MaSoThue: WireStr | None = None
    DiaChiDoanhNghiep: DiaChi | None = None
    DienThoai: WireStr | None = Field(default=None, repr=False)
    Email: WireStr | None = Field(default=None, repr=False)
    NguoiLienHe: WireStr | None = None
    TenChuongTrinhKhuyenMai: WireStr | None = None
    HinhThucKhuyenMai: WireStr | None = None
    ThoiGianKhuyenMaiTu: WireDate | None = None
    ThoiGianKhuyenMaiDen: WireDate | None = None
    HangHoaDichVuKhuyenMai: WireStr | None = None
    TongGiaTriHangHoa: WireStr | None = None
    NoiDungChiTiet: WireStr | None = None
    TaiLieuNop: list[TepBase64] | None = None


class ProvinceAnswer(WireModel):
    """The province's answer to a pushed dossier: 0 created, 1 duplicate, -1 rejected.

    ``"0"``/``"1"``/``"-1"`` are accepted like every other reply code; emitted as an int.
    """

    error_code: Annotated[Literal[0, 1, -1], to_error_code]
    message: ReplyText = ""
