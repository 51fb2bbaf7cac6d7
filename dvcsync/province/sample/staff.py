"""Officers of each agency, with the titles and divisions a real one-stop office records.

Pools are drawn once per agency from their own seeded ``Random`` so that the officers of a given
seed do not depend on the number of dossiers generated.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from . import names
from .catalogue import Agency

# Specialist division by agency level and sector code (fallback: the level's general office).
_SO_DIVISION = {
    "TP-LLTP": "Phòng Hành chính tư pháp",
    "CT-TM": "Phòng Quản lý thương mại",
    "CT-LT": "Phòng Quản lý thương mại",
    "GT-DB": "Phòng Quản lý vận tải, phương tiện và người lái",
    "XD-HD": "Phòng Quản lý hoạt động xây dựng",
    "TN-DD": "Văn phòng Đăng ký đất đai",
    "TN-MT": "Phòng Môi trường",
    "TC-DKKD": "Phòng Đăng ký kinh doanh",
    "LD-VL": "Phòng Việc làm - An toàn lao động",
    "GD-VB": "Phòng Khảo thí và Quản lý chất lượng",
    "YT-KCB": "Phòng Nghiệp vụ Y",
    "YT-ATTP": "Chi cục An toàn vệ sinh thực phẩm",
    "VH-QC": "Phòng Quản lý văn hóa",
}
_HUYEN_DIVISION = {
    "TP-HT": "Phòng Tư pháp",
    "TP-CT": "Phòng Tư pháp",
    "TN-DD": "Chi nhánh Văn phòng Đăng ký đất đai",
    "XD-HD": "Phòng Quản lý đô thị",
    "GT-DB": "Phòng Quản lý đô thị",
    "TC-DKKD": "Phòng Tài chính - Kế hoạch",
    "CT-LT": "Phòng Kinh tế",
    "VH-VH": "Phòng Văn hóa và Thông tin",
    "LD-BTXH": "Phòng Lao động - TB&XH",
}
_OLD_COMMUNE_DIVISION = {
    "TP-HT": "Công chức Tư pháp - Hộ tịch",
    "TP-CT": "Công chức Tư pháp - Hộ tịch",
    "TN-DD": "Công chức Địa chính - Xây dựng",
    "NN-PCTT": "Công chức Địa chính - Nông nghiệp",
    "LD-BTXH": "Công chức Văn hóa - Xã hội",
    "VH-VH": "Công chức Văn hóa - Xã hội",
}
_NEW_COMMUNE_DIVISION = {
    "TP-HT": "Văn phòng HĐND và UBND",
    "TP-CT": "Văn phòng HĐND và UBND",
    "LD-BTXH": "Phòng Văn hóa - Xã hội",
    "VH-VH": "Phòng Văn hóa - Xã hội",
}


@dataclass(frozen=True, slots=True)
class Staff:
    """The people of one agency who act on dossiers, and how the agency names its divisions."""

    onestop: tuple[str, ...]
    specialists: tuple[str, ...]
    heads: tuple[str, ...]
    leaders: tuple[tuple[str, str], ...]  # (name, title)
    onestop_title: str
    onestop_division: str
    specialist_title: str
    head_title: str
    leader_division: str
    level: str  # so | huyen | xa-old | xa-new

    def division(self, sector: str) -> str:
        if self.level == "so":
            return _SO_DIVISION.get(sector, "Phòng Chuyên môn")
        if self.level == "huyen":
            return _HUYEN_DIVISION.get(sector, "Văn phòng HĐND và UBND")
        if self.level == "xa-old":
            return _OLD_COMMUNE_DIVISION.get(sector, "Công chức Văn phòng - Thống kê")
        return _NEW_COMMUNE_DIVISION.get(sector, "Phòng Kinh tế")


def _unit_word(agency: Agency) -> str:
    """``xã``/``phường``/``thị trấn``/``huyện``/``thành phố``/``thị xã`` from the agency's name."""
    short = agency.ten_don_vi.removeprefix("Ủy ban nhân dân ").split(",")[0]
    for word in ("thành phố", "thị xã", "thị trấn", "phường", "huyện", "xã"):
        if short.startswith(word):
            return word
    return "xã"


def staff_for(agency: Agency, seed: int) -> Staff:
    rng = Random(f"staff:{seed}:{agency.ma_don_vi}")

    def people(n: int) -> tuple[str, ...]:
        return tuple(names.person(rng, 1965, 1998).full_name for _ in range(n))

    if agency.cap in ("so", "tinh"):
        return Staff(
            people(3),
            people(5),
            people(2),
            (
                (names.person(rng, 1965, 1980).full_name, "Phó Giám đốc Sở"),
                (names.person(rng, 1963, 1978).full_name, "Giám đốc Sở"),
            ),
            "Chuyên viên",
            "Bộ phận Tiếp nhận và Trả kết quả",
            "Chuyên viên",
            "Trưởng phòng",
            "Ban Giám đốc",
            "so",
        )
    unit = _unit_word(agency)
    leaders = (
        (names.person(rng, 1965, 1985).full_name, f"Phó Chủ tịch UBND {unit}"),
        (names.person(rng, 1963, 1982).full_name, f"Chủ tịch UBND {unit}"),
    )
    if agency.cap == "huyen":
        return Staff(
            people(2),
            people(4),
            people(2),
            leaders,
            "Chuyên viên",
            "Bộ phận Một cửa",
            "Chuyên viên",
            "Trưởng phòng",
            "Lãnh đạo UBND",
            "huyen",
        )
    if agency.valid_to is not None:  # a commune before the 2025 merger: no divisions, no heads
        return Staff(
            people(1),
            people(2),
            (),
            leaders,
            "Công chức Bộ phận Một cửa",
            "Bộ phận Một cửa",
            "Công chức",
            "",
            "Lãnh đạo UBND",
            "xa-old",
        )
    return Staff(
        people(2),
        people(4),
        people(2),
        leaders,
        "Chuyên viên",
        "Trung tâm Phục vụ hành chính công",
        "Chuyên viên",
        "Trưởng phòng",
        "Lãnh đạo UBND",
        "xa-new",
    )
