"""Code tables of the national portal and the payment platform (contract §4)."""

from __future__ import annotations

from enum import StrEnum


class TrangThaiHoSo(StrEnum):
    """Dossier status (``TrangThaiHoSo`` / ``TrangThai``)."""

    MOI_DANG_KY = "1"
    DUOC_TIEP_NHAN = "2"
    KHONG_DUOC_TIEP_NHAN = "3"
    DANG_XU_LY = "4"
    YEU_CAU_BO_SUNG = "5"
    YEU_CAU_NGHIA_VU_TAI_CHINH = "6"
    CONG_DAN_RUT_HO_SO = "7"
    DUNG_XU_LY = "8"
    DA_XU_LY_XONG = "9"
    DA_TRA_KET_QUA = "10"


# Legal status moves (contract §4.1, a choice enforced by the mock's strict mode).
LEGAL_MOVES: dict[str, frozenset[str]] = {
    "1": frozenset({"2", "3", "7"}),
    "2": frozenset({"4", "5", "6", "7", "8", "9"}),
    "4": frozenset({"4", "5", "6", "7", "8", "9"}),
    "5": frozenset({"4", "7", "8"}),
    "6": frozenset({"4", "7", "8", "9"}),
    "9": frozenset({"10"}),
    "3": frozenset(),
    "7": frozenset(),
    "8": frozenset(),
    "10": frozenset(),
}
FINAL_STATUSES = frozenset(code for code, nxt in LEGAL_MOVES.items() if not nxt)


def is_legal_move(old: str, new: str) -> bool:
    """True when ``old → new`` is allowed. Re-sending the same status is not a move."""
    return old == new or new in LEGAL_MOVES.get(old, frozenset())


class KenhThucHien(StrEnum):
    TRUC_TIEP = "1"
    TRUC_TUYEN = "2"
    BUU_CHINH = "3"


class HinhThuc(StrEnum):
    TAI_CO_QUAN = "0"
    BUU_CHINH = "1"


class LoaiDoiTuong(StrEnum):
    CONG_DAN = "1"
    DOANH_NGHIEP = "2"
    CO_QUAN_NHA_NUOC = "3"
    TO_CHUC_KHAC = "4"


class LoaiPhiLePhi(StrEnum):
    PHI = "1"
    LE_PHI = "2"


class HinhThucThu(StrEnum):
    THU_TRUOC = "1"
    THU_SAU = "2"
    MIEN_PHI = "3"


class LoaiDinhDanh(StrEnum):
    CCCD_12_SO = "1"
    CMND_9_SO = "2"


class DuocTaiSuDung(StrEnum):
    KHONG = "0"
    CO = "1"
    MOT_PHAN = "2"


class TrangThaiGD(StrEnum):
    """Payment state in a QUERY reply (read only when ``MaLoi`` is ``"00"``)."""

    DA_THANH_TOAN = "1"
    CHO_XU_LY = "3"
    THAT_BAI = "4"


class MaDichVu(StrEnum):
    PHAT = "1"
    PHI_LE_PHI = "2"


def code_values(enum: type[StrEnum]) -> frozenset[str]:
    return frozenset(member.value for member in enum)


# Wire fields that carry personal data (contract §2.1, payment §1.1): masked in logs and reports.
PERSONAL_WIRE_FIELDS = frozenset(
    {
        "SoGiayToChuHoSo",
        "SoDienThoai",
        "Email",
        "Fax",
        "DinhDanhCHS",
        "SoDinhDanh",
        "SoCMNDNguoiNop",
        "MaSoThue",
        "DienThoai",
    }
)
