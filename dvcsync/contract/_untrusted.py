"""Checks for untrusted inbound JSON, before any model sees it.

What the inbound server receives comes from a hostile network. ``json.loads`` alone lets through
bodies that break the code behind it: nesting deep enough to exhaust the stack (a 500 with a
traceback), ``\\ud800`` escapes that become lone surrogates (any later encode fails), ``NaN`` and
``1e999``, NUL and right-to-left overrides in codes (a code that reads differently than it compares,
a log line forged by a newline). This module refuses those with an :class:`UntrustedInput` that names
the field, so the server answers in its contract shape and never with a stack trace.

* :func:`parse_json` — strict UTF-8, strict JSON, bounded depth (counted on the text, without
  recursing), no lone surrogates, no non-finite numbers.
* :func:`check_strings` — control and invisible characters: none at all in codes (by key name,
  :data:`CODE_FIELDS`), only tab/LF/CR in free text, never a bidi embedding/override/isolate.
* :func:`escape_for_log` — any text made safe for one log line.

Every walk here is iterative: a value nested 200,000 deep costs time in proportion, never the stack.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from dvcsync.errors import TerminalError

__all__ = [
    "CODE_FIELDS",
    "DEFAULT_MAX_DEPTH",
    "UntrustedInput",
    "check_strings",
    "escape_for_log",
    "parse_json",
]

DEFAULT_MAX_DEPTH = 32

CODE_FIELDS: frozenset[str] = frozenset(
    {
        # dossiers, procedures, agencies
        "MaHoSo",
        "MaHoSoDonVi",
        "MaTTHC",
        "MaThuTuc",
        "MaLinhVuc",
        "MaDonVi",
        "Madonvi",
        "MaCSDL",
        "MaDVC",
        "MaDichVu",
        "MaDoiTuong",
        "MaThanhPhanHoSo",
        "MaGiayToKetQua",
        "MaKetQuaThayThe",
        "MaThietBi",
        "SoBienNhan",
        "SoVanBan",
        "SoDinhDanh",
        "SoGiayToChuHoSo",
        "SoCMNDNguoiNop",
        "SoDienThoai",
        "DienThoai",
        "Email",
        "MaSoThue",
        "LoaiDinhDanh",
        "LoaiDoiTuong",
        "LoaiGiayTo",
        "TenTepDinhKem",
        # addresses
        "MaTinh",
        "MaHuyen",
        "MaXa",
        # payments
        "LoaiBanTin",
        "MaLoi",
        "MaDoiTac",
        "MaThamChieu",
        "MaGiaoDich",
        "MaNganHang",
        "MaNHThuHuong",
        "MaKenhThanhToan",
        "LoaiHinhThanhToan",
        "MaTienTe",
        "MaPhiLePhi",
        "LoaiPhiLePhi",
        "MaTraCuuTT",
        "MaXacThuc",
        "SoTien",
        "SoLuong",
        # dates (text on the wire)
        "NgayNopHoSo",
        "ThoiGianGD",
        "ThoiGianKhuyenMaiTu",
        "ThoiGianKhuyenMaiDen",
    }
)
"""Keys whose values are codes, numbers, dates or identifiers: no control or format character at all."""

# bidi embeddings and overrides (LRE RLE PDF LRO RLO), isolates (LRI RLI FSI PDI)
_BIDI = "\u202a-\u202e\u2066-\u2069"
# Free text: C0 controls except tab/LF/CR, DEL, C1 controls, bidi embeddings/overrides/isolates,
# surrogates (only a \ud800-style escape makes one).
_FREE_TEXT_BAD = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff]")
# Codes, fast path: every control character, the listed bidi/invisible marks, surrogates; the other
# format characters (zero-width joiners, soft hyphen...) are caught by category below.
_CODE_BAD = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\u200e\u200f\u061c\ufeff\u2028\u2029\ud800-\udfff]")
_CODE_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_WALK_LIMIT = 100_000  # deeper than any parse_json value; a cycle passed by a caller stops here
_SURROGATE = re.compile("[\ud800-\udfff]")
_LAST_NAME = re.compile(r"([^.\[\]]+)(?:\[\d+\])*$")
# A JSON string, unrolled and possessive so that a 2 MiB string is one fast regex step; an unterminated
# string runs to the end of the text, so a match never fails and is never retried from a later quote
# (``"\\"\\"\\"...`` unterminated would otherwise be quadratic).
_JSON_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET_BYTES = bytes(b for b in range(256) if b not in b"[]{}")
_PAIR = b"\x01\xff"  # an innermost pair, opening then closing, in _DEPTH_STEPS terms
_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes
# An escape of a surrogate code point: only these can leave a lone surrogate in the parsed value.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class UntrustedInput(TerminalError, ValueError):
    """Refused inbound input; ``field`` is the dotted path ("" = the whole body), ``reason`` says why.

    The reason never carries the offending value in clear: at most a short escaped preview, so the
    exception can be logged and echoed in an answer as it is.
    """

    field: str
    reason: str

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)

    def __reduce__(self) -> tuple[Any, ...]:  # picklable with its two arguments
        return (type(self), (self.field, self.reason))


# ---------------------------------------------------------------------------------------------- parse


def parse_json(raw: bytes | bytearray | memoryview | str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The JSON value of ``raw``, or :class:`UntrustedInput`.

    Refused: bytes that are not UTF-8 (a leading BOM included: JSON has none), a syntax error, nesting
    of objects and arrays deeper than ``max_depth`` (counted on the text, so 200,000 opening brackets
    cost one linear scan and no recursion), ``NaN``/``Infinity`` and numbers that overflow to them,
    integers beyond Python's digit limit, and ``\\ud800``-style escapes that leave a lone surrogate
    (named by the field they are in). Duplicate keys: the last one wins.
    """
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = bytes(raw).decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise UntrustedInput(
                "", f"nội dung không phải UTF-8 hợp lệ (byte {exc.start}: {exc.reason})"
            ) from None
    if text.startswith("\ufeff"):
        raise UntrustedInput("", "nội dung JSON không được bắt đầu bằng BOM")
    if deeper_than(text, max_depth):
        raise UntrustedInput("", f"JSON lồng nhau quá sâu (quá {max_depth} cấp)")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except UntrustedInput:
        raise
    except RecursionError:  # cannot happen after the depth count; kept so it never becomes a 500
        raise UntrustedInput("", "JSON lồng nhau quá sâu") from None
    except json.JSONDecodeError as exc:
        raise UntrustedInput(
            "", f"nội dung không phải JSON hợp lệ ({exc.msg}, dòng {exc.lineno} cột {exc.colno})"
        ) from None
    except ValueError as exc:  # e.g. an integer longer than sys.get_int_max_str_digits()
        raise UntrustedInput("", f"nội dung không phải JSON hợp lệ ({type(exc).__name__})") from None
    if _SURROGATE_ESCAPE.search(text) is not None and _has_surrogate(value):
        _refuse_surrogates(value)
    return value


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text``, brackets inside strings not counted.

    Exact for valid JSON; for invalid JSON it is some number and the parser refuses the text anyway.
    Linear, without recursion and without a Python-level loop per character.
    """
    return max(accumulate(memoryview(_bracket_steps(text)).cast("b")), default=0)


def deeper_than(text: str, limit: int) -> bool:
    """Whether JSON ``text`` nests arrays and objects deeper than ``limit`` (see :func:`json_depth`).

    ``limit`` passes of ``bytes.replace`` each remove the innermost ``[]``/``{}`` pairs (one level a
    pass: a pair made adjacent by a pass is left to the next one); whatever remains is deeper than
    ``limit`` or unbalanced, and only then are the depths counted to tell which. A run of ``limit + 1``
    openings ends it at once (the usual attack: ``[[[[...``).
    """
    steps = _bracket_steps(text)
    run = _DEPTH_STEPS[ord("[")].to_bytes() * (limit + 1)
    for _ in range(limit):
        if not steps:
            return False
        if run in steps:  # limit+1 openings in a row (what a pass removed was balanced): too deep
            return True
        shorter = steps.replace(_PAIR, b"")
        if len(shorter) == len(steps):
            break
        steps = shorter
    if not steps:
        return False
    depths = accumulate(memoryview(_bracket_steps(text)).cast("b"))
    return next(filter(limit.__lt__, depths), None) is not None


def _bracket_steps(text: str) -> bytes:
    """The brackets of ``text`` outside strings as signed bytes, +1 opening and -1 closing: strings
    removed by one regex, everything else deleted by one ``bytes.translate``."""
    if "[" not in text and "{" not in text:
        return b""
    structure = _JSON_STRING.sub("", text).encode("utf-8", "surrogatepass")
    return structure.translate(_DEPTH_STEPS, _NOT_BRACKET_BYTES)


def _refuse_constant(name: str) -> Any:
    raise UntrustedInput("", f"JSON không cho phép {name}")


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise UntrustedInput("", f"số ngoài phạm vi ({escape_for_log(literal, 40)})")
    return number


def _has_surrogate(value: Any) -> bool:
    """Whether any string (or key) of ``value`` holds a surrogate: one encode pass in C."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (RecursionError, ValueError):  # a caller's huge max_depth: let the walk decide
        return True
    return False


def _refuse_surrogates(value: Any) -> None:
    for path, key, item in _walk(value):
        if key is not None and _SURROGATE.search(key):
            raise UntrustedInput(_dotted(path), "tên trường chứa ký tự surrogate đơn lẻ (\\ud800-\\udfff)")
        if isinstance(item, str) and _SURROGATE.search(item):
            raise UntrustedInput(_dotted(path), "chứa ký tự surrogate đơn lẻ (\\ud800-\\udfff)")


# ---------------------------------------------------------------------------------------------- strings


def check_strings(value: Any, *, code_fields: frozenset[str] = CODE_FIELDS, path: str = "") -> None:
    """Refuse control and invisible characters in the strings of ``value`` (dicts and lists walked).

    In a field whose key is in ``code_fields`` (at any depth; the items of a list under such a key
    too) and in every key: no control character (category Cc), no format character (Cf: bidi marks
    and overrides, zero-width characters, BOM...), no line/paragraph separator, no surrogate. In any
    other string: no C0 control but tab, LF and CR, no DEL or C1 control, no bidi embedding, override
    or isolate (U+202A–U+202E, U+2066–U+2069), no surrogate. Other types (numbers, None, a list where
    text is expected...) are left to the models. ``path`` prefixes the dotted paths in the errors.
    """
    root_is_code = _field_name((None, path) if path else None) in code_fields
    if not _any_bad_string(value, code_fields, root_is_code):
        return  # the usual case: one pass without paths
    for node, key, item in _walk(value, root=path):
        if key is not None:
            bad = _first_bad_code_char(key)
            if bad is not None:
                raise UntrustedInput(_dotted(node), f"tên trường chứa {_describe(key, bad)}")
        if not isinstance(item, str):
            continue
        if _field_name(node) in code_fields:
            bad = _first_bad_code_char(item)
            if bad is not None:
                raise UntrustedInput(_dotted(node), f"mã chứa {_describe(item, bad)}")
        else:
            match = _FREE_TEXT_BAD.search(item)
            if match is not None:
                raise UntrustedInput(_dotted(node), f"văn bản chứa {_describe(item, match.start())}")


def _any_bad_string(value: Any, code_fields: frozenset[str], root_is_code: bool) -> bool:
    """Whether :func:`check_strings` would refuse ``value``: the same rules, no path kept, empty
    containers never pushed. A value nested deeper than :data:`_WALK_LIMIT` (a cycle, say) counts as
    refused so that the walk with paths decides; JSON from :func:`parse_json` is never that deep."""
    free_bad = _FREE_TEXT_BAD.search
    stack: list[tuple[Any, bool, int]] = [(value, root_is_code, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, is_code, depth = pop()
        if depth > _WALK_LIMIT:
            return True
        kind = type(item)
        if kind is str:
            if (_first_bad_code_char(item) is not None) if is_code else (free_bad(item) is not None):
                return True
        elif kind is dict or isinstance(item, dict):
            if _bad_keys_pushed(item, code_fields, depth, push):
                return True
        elif (kind is list or isinstance(item, (list, tuple))) and _bad_items_pushed(
            item, is_code, depth, push
        ):
            return True
    return False


_Push = Callable[[tuple[Any, bool, int]], None]


def _bad_keys_pushed(item: dict[Any, Any], code_fields: frozenset[str], depth: int, push: _Push) -> bool:
    """Whether a key of ``item`` is refused; its non-empty containers and strings are pushed."""
    for key, child in item.items():
        if _first_bad_code_char(key if type(key) is str else str(key)) is not None:
            return True
        if child and isinstance(child, (str, dict, list, tuple)):
            push((child, key in code_fields, depth + 1))
    return False


def _bad_items_pushed(item: list[Any] | tuple[Any, ...], is_code: bool, depth: int, push: _Push) -> bool:
    """Whether a string of ``item`` is refused; its non-empty containers are pushed."""
    free_bad = _FREE_TEXT_BAD.search
    for child in item:
        if type(child) is str:
            if (_first_bad_code_char(child) is not None) if is_code else (free_bad(child) is not None):
                return True
        elif child and isinstance(child, (dict, list, tuple, str)):
            push((child, is_code, depth + 1))
    return False


def _first_bad_code_char(text: str) -> int | None:
    match = _CODE_BAD.search(text)
    if match is not None:
        return match.start()
    if text.isascii():
        return None
    for index, char in enumerate(text):
        if unicodedata.category(char) in _CODE_BAD_CATEGORIES:
            return index
    return None


def _describe(text: str, index: int) -> str:
    char = text[index]
    name = unicodedata.name(char, "") if not 0xD800 <= ord(char) <= 0xDFFF else "SURROGATE"
    label = f"U+{ord(char):04X}" + (f" {name}" if name else "")
    if unicodedata.category(char) == "Cf" or 0x202A <= ord(char) <= 0x202E or 0x2066 <= ord(char) <= 0x2069:
        kind = "ký tự định dạng ẩn"
    else:
        kind = "ký tự điều khiển"
    return f"{kind} {label} ở vị trí {index}"


# ---------------------------------------------------------------------------------------------- logs


def escape_for_log(text: str, limit: int = 200) -> str:
    """``text`` safe for one log line: backslash, control, format (bidi...), separator, surrogate and
    other non-printable characters as ``\\xNN``/``\\uNNNN``/``\\UNNNNNNNN``; at most ``limit``
    characters, cut at an escape's boundary and ended with "…" when cut."""
    if not isinstance(text, str):
        text = str(text)
    pieces: list[str] = []
    used = 0
    for char in text[: limit + 1]:
        piece = _escape_char(char)
        if used + len(piece) > limit:
            return "".join(pieces) + "…"
        pieces.append(piece)
        used += len(piece)
    return "".join(pieces)


def _escape_char(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


# ---------------------------------------------------------------------------------------------- walking

# A path is a linked list (parent, segment) so that deep values never build long strings per level.
_Path = tuple[Any, str] | None


def _walk(value: Any, root: str = "") -> Any:
    """(path, key, item) for every item under ``value``, depth first, without recursion: ``key`` is
    the dict key the item is under (None for the root and list items). Shared containers are visited
    once (a cycle never loops)."""
    start: _Path = (None, root) if root else None
    stack: list[tuple[_Path, str | None, Any]] = [(start, None, value)]
    seen: set[int] = set()
    while stack:
        path, key, item = stack.pop()
        yield path, key, item
        if isinstance(item, dict):
            if id(item) in seen:
                continue
            seen.add(id(item))
            for k, v in reversed(list(item.items())):
                name = k if isinstance(k, str) else str(k)
                stack.append(((path, _key_segment(name)), name, v))
        elif isinstance(item, (list, tuple)):
            if id(item) in seen:
                continue
            seen.add(id(item))
            for index in range(len(item) - 1, -1, -1):  # no key to check: only what may hold text
                child = item[index]
                if isinstance(child, str) or (child and isinstance(child, (dict, list, tuple))):
                    stack.append(((path, f"[{index}]"), None, child))


def _key_segment(name: str) -> str:
    return "." + escape_for_log(name, 60)


def _dotted(path: _Path) -> str:
    segments: list[str] = []
    while path is not None:
        path, segment = path
        segments.append(segment)
    return "".join(reversed(segments)).removeprefix(".")


def _field_name(path: _Path) -> str | None:
    """The key a value is under: the last dict key on its path (list indexes skipped); for a caller's
    root path such as ``"TaiLieuNop[0].TenTepDinhKem"``, its last name."""
    while path is not None:
        parent, segment = path
        if segment.startswith("."):
            return segment[1:]
        if not segment.startswith("["):
            match = _LAST_NAME.search(segment)
            return match.group(1) if match else None
        path = parent
    return None
