"""Vietnamese people, businesses and contact details for the sample data.

Family names are weighted by their real frequency (Nguyễn alone is about a third of the population),
so sorting, grouping and name search in tests and demos behave as they would on real data. All
choices are drawn from the caller's ``random.Random``: nothing here keeps state of its own.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect
from itertools import accumulate
from random import Random

# (family name, approximate share in %), most frequent first.
_FAMILY = (
    ("Nguyễn", 38.0),
    ("Trần", 11.0),
    ("Lê", 9.5),
    ("Phạm", 7.1),
    ("Hoàng", 4.0),
    ("Huỳnh", 1.1),
    ("Phan", 4.5),
    ("Vũ", 3.0),
    ("Võ", 1.0),
    ("Đặng", 2.1),
    ("Bùi", 2.0),
    ("Đỗ", 1.4),
    ("Hồ", 1.3),
    ("Ngô", 1.3),
    ("Dương", 1.0),
    ("Lý", 0.5),
    ("Đinh", 0.6),
    ("Trương", 0.6),
    ("Lương", 0.4),
    ("Đào", 0.4),
    ("Hà", 0.4),
    ("Mai", 0.3),
    ("Cao", 0.3),
    ("Chu", 0.2),
    ("Thái", 0.2),
    ("Tạ", 0.2),
)
FAMILY_NAMES = tuple(name for name, _ in _FAMILY)
_FAMILY_CUM = list(accumulate(share for _, share in _FAMILY))

_MIDDLE_MALE = (
    "Văn",
    "Văn",
    "Văn",
    "Đức",
    "Minh",
    "Hữu",
    "Quang",
    "Công",
    "Xuân",
    "Thành",
    "Ngọc",
    "Anh",
    "Đình",
    "Trọng",
    "Tuấn",
    "Hoàng",
    "Mạnh",
    "Duy",
    "Gia",
    "Bảo",
)
_MIDDLE_FEMALE = (
    "Thị",
    "Thị",
    "Thị",
    "Thị",
    "Ngọc",
    "Thu",
    "Thanh",
    "Minh",
    "Phương",
    "Kim",
    "Hồng",
    "Thùy",
    "Bảo",
    "Khánh",
    "Mai",
    "Lan",
    "Diệu",
    "Hoài",
)
_GIVEN_MALE = (
    "Hùng",
    "Dũng",
    "Tuấn",
    "Minh",
    "Nam",
    "Long",
    "Hải",
    "Sơn",
    "Thắng",
    "Quân",
    "Cường",
    "Hoàng",
    "Phong",
    "Khánh",
    "Bình",
    "Huy",
    "Đạt",
    "Trung",
    "Hiếu",
    "Việt",
    "Thành",
    "Tùng",
    "Đức",
    "Tài",
    "Lâm",
    "Vinh",
    "Kiên",
    "Hưng",
    "Tiến",
    "Khoa",
    "An",
    "Phúc",
    "Lộc",
    "Tâm",
    "Toàn",
    "Thịnh",
    "Quang",
    "Nghĩa",
    "Công",
    "Hậu",
)
_GIVEN_FEMALE = (
    "Lan",
    "Hương",
    "Hoa",
    "Mai",
    "Linh",
    "Trang",
    "Hà",
    "Thảo",
    "Ngọc",
    "Huyền",
    "Nhung",
    "Yến",
    "Thủy",
    "Loan",
    "Oanh",
    "Vân",
    "Anh",
    "Phương",
    "Quỳnh",
    "Giang",
    "Hằng",
    "Nga",
    "Dung",
    "Hạnh",
    "Hiền",
    "Châu",
    "My",
    "Nhi",
    "Trâm",
    "Thư",
    "Ly",
    "Ngân",
    "Uyên",
    "Vy",
    "Tuyết",
    "Liên",
    "Hồng",
    "Duyên",
    "Chi",
    "Diệp",
)

_BUSINESS_FORMS = (
    ("Công ty TNHH", 45),
    ("Công ty TNHH MTV", 15),
    ("Công ty Cổ phần", 30),
    ("Doanh nghiệp tư nhân", 6),
    ("Hợp tác xã", 4),
)
_BUSINESS_FORM_NAMES = tuple(form for form, _ in _BUSINESS_FORMS)
_BUSINESS_FORM_CUM = list(accumulate(weight for _, weight in _BUSINESS_FORMS))
_BUSINESS_TRADES = (
    "Thương mại và Dịch vụ",
    "Xây dựng",
    "Đầu tư và Phát triển",
    "Vận tải",
    "Kỹ thuật",
    "Du lịch",
    "Thực phẩm",
    "Sản xuất và Thương mại",
    "Công nghệ",
    "Xuất nhập khẩu",
    "Môi trường",
    "Dược phẩm",
    "Nông sản",
    "Xăng dầu",
    "Giáo dục",
    "Nội thất",
    "Cơ khí",
    "Vật liệu xây dựng",
    "Tư vấn",
    "Logistics",
)
_BUSINESS_BRANDS = (
    "Hoàng Long",
    "Minh Phát",
    "Thành Công",
    "An Phú",
    "Việt Tiến",
    "Phú Gia",
    "Hải Đăng",
    "Trường Sơn",
    "Sao Mai",
    "Bình Minh",
    "Đại Dương",
    "Thiên Ân",
    "Hưng Thịnh",
    "Tân Việt",
    "Kim Ngân",
    "Phúc An",
    "Nam Việt",
    "Đông Á",
    "Hồng Hà",
    "Lam Sơn",
    "Sơn Hà",
    "Vạn Xuân",
    "Phương Nam",
    "Bảo Anh",
    "Quang Minh",
    "Hòa Phát",
    "Đức Thịnh",
    "Toàn Cầu",
    "Ngọc Lan",
    "Thái Bình Dương",
)

_STREETS = (
    "Lê Lợi",
    "Trần Phú",
    "Quang Trung",
    "Nguyễn Du",
    "Lê Hồng Phong",
    "Hai Bà Trưng",
    "Phan Bội Châu",
    "Nguyễn Trãi",
    "Lý Thường Kiệt",
    "Trần Hưng Đạo",
    "Nguyễn Thị Minh Khai",
    "Hồ Tùng Mậu",
    "Lê Duẩn",
    "Phạm Văn Đồng",
    "Võ Nguyên Giáp",
    "Mai Hắc Đế",
    "Nguyễn Văn Cừ",
    "Điện Biên Phủ",
    "Tôn Đức Thắng",
    "Hà Huy Tập",
)
_MAIL_DOMAINS = ("gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "hotmail.com")

# First three digits of a 12-digit citizen ID: the province of birth registration. The sample
# province's own people use ``LOCAL_ID_PREFIX``; some applicants come from elsewhere.
LOCAL_ID_PREFIX = "040"
OTHER_ID_PREFIXES = ("001", "079", "038", "042", "036", "034", "022", "031", "044", "048")
# The province's tax authority prefix of a 10-digit tax code.
TAX_PREFIX = "29"


def ascii_fold(text: str) -> str:
    """Vietnamese text without diacritics (đ → d), for e-mail addresses and file names."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


def slug(text: str, sep: str = "-") -> str:
    """Lower-case ASCII words joined by ``sep``: ``Tờ khai (mẫu)`` → ``to-khai-mau``."""
    folded = ascii_fold(text).lower()
    words = "".join(ch if ch.isalnum() else " " for ch in folded).split()
    return sep.join(words)


_FOLD_CACHE: dict[str, str] = {}


def _fold(word: str) -> str:
    folded = _FOLD_CACHE.get(word)
    if folded is None:
        folded = _FOLD_CACHE[word] = ascii_fold(word).lower().replace(" ", "")
    return folded


class Person:
    """A generated person: the parts are kept so e-mails and children's names can reuse them."""

    __slots__ = ("birth_year", "family", "female", "given", "middle")

    def __init__(self, family: str, middle: str, given: str, female: bool, birth_year: int) -> None:
        self.family, self.middle, self.given = family, middle, given
        self.female, self.birth_year = female, birth_year

    @property
    def full_name(self) -> str:
        return f"{self.family} {self.middle} {self.given}"


def family_name(rng: Random) -> str:
    return FAMILY_NAMES[bisect(_FAMILY_CUM, rng.random() * _FAMILY_CUM[-1])]


def person(rng: Random, birth_from: int = 1950, birth_to: int = 2005, female: bool | None = None) -> Person:
    if female is None:
        female = rng.random() < 0.5
    if female:
        middle, given = rng.choice(_MIDDLE_FEMALE), rng.choice(_GIVEN_FEMALE)
    else:
        middle, given = rng.choice(_MIDDLE_MALE), rng.choice(_GIVEN_MALE)
    return Person(family_name(rng), middle, given, female, rng.randint(birth_from, birth_to))


def child_of(rng: Random, father_family: str) -> str:
    """A newborn's full name: children take the father's family name."""
    if rng.random() < 0.5:
        return f"{father_family} {rng.choice(_MIDDLE_FEMALE)} {rng.choice(_GIVEN_FEMALE)}"
    return f"{father_family} {rng.choice(_MIDDLE_MALE)} {rng.choice(_GIVEN_MALE)}"


def citizen_id(rng: Random, who: Person, local: bool = True) -> str:
    """A 12-digit citizen ID: province (3), sex and century (1), birth year (2), serial (6)."""
    prefix = LOCAL_ID_PREFIX if local else rng.choice(OTHER_ID_PREFIXES)
    century = 0 if who.birth_year < 2000 else 2
    return f"{prefix}{century + int(who.female)}{who.birth_year % 100:02d}{rng.randrange(1_000_000):06d}"


def phone(rng: Random) -> str:
    return f"09{rng.randrange(100_000_000):08d}"


def personal_email(rng: Random, who: Person) -> str:
    style = rng.randrange(3)
    if style == 0:
        local = f"{_fold(who.given)}{_fold(who.family)}{who.birth_year % 100:02d}"
    elif style == 1:
        local = f"{_fold(who.family)}{_fold(who.middle)}{_fold(who.given)}{rng.randrange(1, 999)}"
    else:
        local = f"{_fold(who.given)}.{_fold(who.family)}{rng.randrange(10, 99)}"
    return f"{local}@{rng.choice(_MAIL_DOMAINS)}"


class Business:
    __slots__ = ("brand", "name", "tax_code")

    def __init__(self, name: str, brand: str, tax_code: str) -> None:
        self.name, self.brand, self.tax_code = name, brand, tax_code


def business(rng: Random, form: str | None = None) -> Business:
    """A business; ``form`` (e.g. ``Công ty Cổ phần``) when the procedure implies one."""
    drawn = _BUSINESS_FORM_NAMES[bisect(_BUSINESS_FORM_CUM, rng.random() * _BUSINESS_FORM_CUM[-1])]
    form = form or drawn
    brand = rng.choice(_BUSINESS_BRANDS)
    if form == "Doanh nghiệp tư nhân":
        name = f"{form} {brand}"
    else:
        name = f"{form} {rng.choice(_BUSINESS_TRADES)} {brand}"
    return Business(name, brand, f"{TAX_PREFIX}{rng.randrange(100_000_000):08d}")


def business_email(rng: Random, company: Business) -> str:
    domain = _fold(company.brand)
    return rng.choice((f"info@{domain}.vn", f"ketoan.{domain}@gmail.com", f"lienhe@{domain}.com.vn"))


def street_address(rng: Random, place: str) -> str:
    """An address in ``place`` (already ``"phường X, thành phố Y, tỉnh Z"``)."""
    if rng.random() < 0.55:
        return f"Số {rng.randint(1, 250)}, đường {rng.choice(_STREETS)}, {place}"
    return f"Xóm {rng.randint(1, 15)}, {place}"
