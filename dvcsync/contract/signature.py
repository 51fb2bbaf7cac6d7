"""``MaXacThuc``: lowercase hex SHA-256 over ``|``-joined field values with the secret last.

Not an HMAC, no nonce, no time window (payment-platform.md §2): replay safety is the receiver's job,
so verification compares in constant time and callers apply each ``MaThamChieu`` at most once.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Literal

from dvcsync.errors import TerminalError

MessageType = Literal["INIT", "CALLBACK", "QUERY", "GET_BILL"]

FIELD_ORDER: dict[str, tuple[str, ...]] = {
    "INIT": (
        "LoaiBanTin",
        "PhienBan",
        "MaDoiTac",
        "MaThamChieu",
        "SoTien",
        "LoaiHinhThanhToan",
        "MaKenhThanhToan",
        "MaThietBi",
        "NgonNgu",
        "MaTienTe",
        "MaNganHang",
        "ThongTinGiaoDich",
        "ThoiGianGD",
        "Ip",
    ),
    "CALLBACK": (
        "LoaiBanTin",
        "MaLoi",
        "MaDoiTac",
        "MaThamChieu",
        "SoTien",
        "MaTienTe",
        "MaGiaoDich",
        "MaNganHang",
        "ThoiGianGD",
        "ThongTinGiaoDich",
    ),
    "QUERY": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"),
    "GET_BILL": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"),
}


class SignatureError(TerminalError, ValueError):
    """A field the signature covers is missing."""


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        raise SignatureError(f"cannot sign value {value!r}")
    return str(value)


def signing_string(message: MessageType, fields: Mapping[str, Any], secret: str) -> str:
    """The exact text that is hashed (useful when a partner disputes a signature)."""
    order = FIELD_ORDER[message]
    missing = [name for name in order if name not in fields]
    if missing:
        raise SignatureError(f"{message} signature needs {', '.join(missing)}")
    return "|".join([*(_text(fields[name]) for name in order), secret])


def sign(message: MessageType, fields: Mapping[str, Any], secret: str) -> str:
    return hashlib.sha256(signing_string(message, fields, secret).encode("utf-8")).hexdigest()


def verify(message: MessageType, fields: Mapping[str, Any], secret: str, signature: str) -> bool:
    """Constant-time comparison; a missing field or non-text signature is simply not valid."""
    try:
        expected = sign(message, fields, secret)
    except SignatureError:
        return False
    if not isinstance(signature, str):
        return False
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode("utf-8"))
