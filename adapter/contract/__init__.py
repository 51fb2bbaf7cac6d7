"""Wire contract of the national portal and the payment platform.

Attribute names are the wire names, so a model reads like the contract it implements.
"""

from ._base import WireModel
from ._codes import (
    FINAL_STATUSES,
    LEGAL_MOVES,
    DuocTaiSuDung,
    HinhThuc,
    HinhThucThu,
    KenhThucHien,
    LoaiDinhDanh,
    LoaiDoiTuong,
    LoaiPhiLePhi,
    MaDichVu,
    TrangThaiGD,
    TrangThaiHoSo,
    is_legal_move,
)
from ._dates import (
    VN_TZ,
    WireDateError,
    format_wire_datetime,
    now_wire,
    parse_local_iso,
    parse_wire_datetime,
)
from ._types import MA_TTHC_RE, Bit, ErrorCode, Flag, IntAmount, MaTTHCCode, StrAmount, WireDate, WireStr
from .payment import (
    PAID,
    PROTOCOL_VERSION,
    BienLai,
    BillLookupReply,
    BillLookupRequest,
    CallbackReply,
    GetBillRequest,
    InitReply,
    InitRequest,
    InitResult,
    KhoanNop,
    PaymentCallback,
    PhiLePhiBienLai,
    QueryReply,
    QueryRequest,
    StatementRow,
    parse_init_reply,
)
from .portal import (
    REQUEST_MODELS,
    REQUIRED_DOSSIER_FIELDS,
    SHARE_SERVICES,
    AuthReply,
    AuthRequest,
    CapNhatTienDoHoSoMCRequest,
    CoQuan,
    DanhGia,
    DanhSachHoSoRequest,
    DiaChi,
    DinhDanh,
    DongBoDanhGiaRequest,
    DongBoHoSoMCRequest,
    DongBoTrangThaiHoSoRequest,
    Envelope,
    GiayToKetQua,
    HoSo,
    HoSoBoSung,
    HoSoCongDVC,
    HoSoDaLuu,
    ItemResult,
    KetNoiCSDL,
    LayDanhMucCoQuanRequest,
    LayDanhMucLinhVucRequest,
    LayDanhSachTTHCRequest,
    LayThuTucRequest,
    LePhi,
    LinhVuc,
    PortalReply,
    ProvinceAnswer,
    TaiLieu,
    TepDinhKemKhac,
    ThongBaoKhuyenMai,
    ThuTuc,
    ThuTucTomTat,
    TienDo,
    TraCuuHoSoRequest,
    TrangThaiHoSoDVC,
    XacNhanHoSoRequest,
)
from .signature import FIELD_ORDER, SignatureError, sign, signing_string, verify

__all__ = [name for name in dir() if not name.startswith("_")]
