"""Procedure names reduced to what identifies a procedure, however a province wrote them.

Provinces write names with or without diacritics (and in NFC or NFD), in capitals, with their own
abbreviations ("GPLX", "QSDĐ", "UBND"), with extra words ("Thủ tục", "(cấp xã)") and typos. A name
becomes a ``Name``: folded tokens (no diacritics, abbreviations expanded, spelling variants merged)
for similarity, and the *markers* that separate procedures of one family (``cấp lại`` / ``đổi`` /
``cấp``, ``bán lẻ`` / ``bán buôn``, ``có yếu tố nước ngoài``, levels), which similarity alone
would blur.

Markers are read from the folded tokens, because a name without diacritics still says "cap lai";
where the name has diacritics, the toned word settles the folds that collide ("lại" / "lái",
"đổi" / "đối").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Folded abbreviation → folded expansion. Only tokens that are never a Vietnamese syllable (all
# consonants, or no such syllable exists), so expanding never changes a real word.
ABBREVIATIONS: dict[str, str] = {
    "ubnd": "uy ban nhan dan",
    "hdnd": "hoi dong nhan dan",
    "gcn": "giay chung nhan",
    "gcnqsdd": "giay chung nhan quyen su dung dat",
    "gp": "giay phep",
    "gplx": "giay phep lai xe",
    "gpxd": "giay phep xay dung",
    "gpkd": "giay phep kinh doanh",
    "gpld": "giay phep lao dong",
    "gpmt": "giay phep moi truong",
    "gphn": "giay phep hanh nghe",
    "dkkd": "dang ky kinh doanh",
    "dk": "dang ky",
    "qsdd": "quyen su dung dat",
    "qsd": "quyen su dung",
    "sdd": "su dung dat",
    "bds": "bat dong san",
    "attp": "an toan thuc pham",
    "vsattp": "ve sinh an toan thuc pham",
    "dtm": "danh gia tac dong moi truong",
    "pccc": "phong chay chua chay",
    "antt": "an ninh trat tu",
    "gtvt": "giao thong van tai",
    "tnhh": "trach nhiem huu han",
    "tnmt": "tai nguyen moi truong",
    "htx": "hop tac xa",
    "hkd": "ho kinh doanh",
    "dn": "doanh nghiep",
    "vpdd": "van phong dai dien",
    "lltp": "ly lich tu phap",
    "xntthn": "xac nhan tinh trang hon nhan",
    "xnttthn": "xac nhan tinh trang hon nhan",
    "ytnn": "yeu to nuoc ngoai",
    "bhxh": "bao hiem xa hoi",
    "bhyt": "bao hiem y te",
    "bhtn": "bao hiem that nghiep",
    "tctn": "tro cap that nghiep",
    "btxh": "bao tro xa hoi",
    "tcxh": "tro cap xa hoi",
    "ncc": "nguoi co cong",
    "kcb": "kham benh chua benh",
    "cchn": "chung chi hanh nghe",
    "vlncn": "vat lieu no cong nghiep",
    "vln": "vat lieu no",
    "bvtv": "bao ve thuc vat",
    "thcs": "trung hoc co so",
    "thpt": "trung hoc pho thong",
    "hdv": "huong dan vien",
    "cmnd": "chung minh nhan dan",
    "cccd": "can cuoc cong dan",
    "tthc": "thu tuc hanh chinh",
    "xd": "xay dung",
    "sxkd": "san xuat kinh doanh",
    "tmdt": "thuong mai dien tu",
    "dv": "dich vu",
    "vn": "viet nam",
    "tw": "trung uong",
    "qd": "quyet dinh",
    "vb": "van ban",
    "nld": "nguoi lao dong",
    "nsdld": "nguoi su dung lao dong",
}

NUMBERS = {
    "1": "mot", "2": "hai", "3": "ba", "4": "bon", "5": "nam",
    "6": "sau", "7": "bay", "8": "tam", "9": "chin", "10": "muoi",
}  # fmt: skip

LEVELS = ("tinh", "huyen", "xa")

# Phrases that say nothing about which procedure it is: left out of the similarity (levels are
# kept as markers first).
_NOISE = re.compile(
    r"\b(?:thu tuc hanh chinh|thu tuc"
    r"|(?:tai |thuoc )?(?:uy ban nhan dan|cong an|bo phan mot cua) (?:cap )?(?:tinh|huyen|xa|phuong)"
    r"|cap (?:tinh|huyen|xa))\b"
)
_LEVEL = re.compile(r"\b(?:cap|uy ban nhan dan|cong an) (tinh|huyen|xa|phuong)\b")

# A marker: a word that makes another procedure of the same family. (name, folded pattern).
# One side having it and the other not is a different procedure until a person says otherwise.
MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("lại", r"\blai\b(?! xe)"),
        ("đổi", r"(?<!thay )\bdoi\b(?! voi| tuong| ngoai| song| moi| ten)"),
        ("đổi tên", r"\bdoi ten\b"),
        ("thay đổi", r"\bthay doi\b"),
        ("lần đầu", r"\blan dau\b"),
        ("bán lẻ", r"\bban le\b"),
        ("bán buôn", r"\bban buon\b"),
        ("sản xuất", r"\bsan xuat\b"),
        ("nhập khẩu", r"\bnhap khau\b"),
        ("nước ngoài", r"\bnuoc ngoai\b"),
        ("quốc tế", r"\bquoc te\b"),
        ("nội địa", r"\bnoi dia\b"),
        ("gia hạn", r"\bgia han\b"),
        ("điều chỉnh", r"\bdieu chinh\b"),
        ("sửa đổi", r"\bsua doi\b"),
        ("thu hồi", r"\bthu hoi\b"),
        ("tạm ngừng", r"\btam (?:ngung|dung)\b"),
        ("chấm dứt", r"\bcham dut\b"),
        ("giải thể", r"\bgiai the\b"),
        ("xóa", r"\bxoa\b"),
        ("thoát", r"\bthoat\b"),
        ("thôi", r"\bthoi\b(?! han| gian| diem| ki| hieu)"),
        ("có thời hạn", r"\bco thoi han\b"),
        ("thực tế", r"\bthuc te\b"),
        ("kết hợp", r"\bket hop\b"),
        ("liên thông", r"\blien thong\b"),
    )
)
# Toned words whose fold collides with a marker: they are not that marker.
_NOT_MARKER = {
    "lại": {"lái", "lải", "lãi", "lài"},
    "đổi": {"đối", "đời", "đội", "đồi", "dõi", "dội"},
    "thôi": {"thời", "thổi", "thối", "thơi"},
}
# Who the procedure is for, when two names say different ones (like levels: only a conflict counts).
SUBJECTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("hộ kinh doanh", r"\bho kinh doanh\b"),
        ("doanh nghiệp", r"\b(?:doanh nghiep|cong ti)\b"),
        ("hợp tác xã", r"\bhop tac xa\b"),
    )
)
# Words that carry no meaning of their own: left out when they are written with their tones (an
# ASCII-only name keeps them, since "o" may be "ô" of "ô tô").
STOPWORDS = frozenset({"của", "cho", "ở", "và", "các", "những", "mà", "hoặc", "với", "đối", "là", "thì"})

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CONSONANT_Y = re.compile(r"^([bcdghklmnpqrstvx]+)y$")


def fold(text: str) -> str:
    """Lower case, no diacritics, đ → d (NFC and NFD give the same)."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d").replace("Đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _spelling(token: str) -> str:
    """Merge spelling variants: "kí"/"ký", "sĩ"/"sỹ" (a final y after consonants is an i), "01"/"1"."""
    if token.isdigit():
        token = token.lstrip("0") or "0"
        return NUMBERS.get(token, token)
    match = _CONSONANT_Y.match(token)
    if match and not match.group(1).endswith("q"):
        return match.group(1) + "i"
    return token


@dataclass(frozen=True)
class Name:
    """A procedure name, normalised (see the module's docstring)."""

    text: str
    folded: str  # folded, abbreviations expanded, spelling merged: the words as one string
    tokens: tuple[str, ...]  # the similarity words (noise phrases left out)
    markers: frozenset[str]
    levels: frozenset[str]
    subjects: frozenset[str] = frozenset()
    listed: frozenset[str] = frozenset()  # markers inside an enumeration ("thay đổi, cải chính, bổ sung")


def normalize(text: str) -> Name:
    nfc = unicodedata.normalize("NFC", text).lower()
    pairs: list[tuple[str, str]] = []  # (folded, toned) word by word
    listed_at: set[int] = set()  # word positions inside an enumeration (see below)
    parts = nfc.split(",")
    for number, part in enumerate(parts):
        first = len(pairs)
        for word in _WORD.findall(part):
            folded = _spelling(fold(word))
            expansion = ABBREVIATIONS.get(folded)
            if expansion is not None:
                pairs.extend((_spelling(piece), piece) for piece in expansion.split())
            elif folded == "moi" and pairs and pairs[-1][0] == "cap":
                continue  # "cấp mới" is "cấp": a first issue is the default
            else:
                pairs.append((folded, word))
        # An enumeration ("thay đổi, cải chính, bổ sung"; "ly hôn, hủy việc kết hôn"): a short part
        # between commas, or the first two words of a part after a comma.
        if len(parts) > 1 and len(pairs) - first <= 4:
            listed_at.update(range(first, len(pairs)))
        elif number > 0:
            listed_at.update(range(first, min(first + 2, len(pairs))))
    joined = " ".join(f for f, _ in pairs)
    markers, listed = set(), set()
    for name, pattern in MARKERS:
        for match in pattern.finditer(joined):
            index = joined.count(" ", 0, match.start())
            if pairs[index][1] not in _NOT_MARKER.get(name, ()):
                markers.add(name)
                if index in listed_at:
                    listed.add(name)
                break
    levels = frozenset(m.group(1).replace("phuong", "xa") for m in _LEVEL.finditer(joined))
    subjects = frozenset(name for name, pattern in SUBJECTS if pattern.search(joined))
    # noise phrases become one blank per word, so words keep their place against ``pairs``
    kept = _NOISE.sub(lambda m: " ".join("\0" for _ in m.group().split()), joined).split()
    tokens = tuple(
        word
        for word, (_folded, toned) in zip(kept, pairs, strict=True)
        if word != "\0" and toned not in STOPWORDS
    )
    return Name(text, joined, tokens, frozenset(markers), levels, subjects, frozenset(listed))
