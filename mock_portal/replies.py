"""Reply shapes and error codes of the mock, and readable messages from validation errors.

Every refusal is a normal HTTP 200 reply ``{"error_code", "message", "result"}`` whose message names
the record (``MaHoSo``), the field and the value, as a one-stop developer needs to fix the data.
Codes are a choice of ours (the real portal publishes none besides 401 and "3"):
"1" invalid data, "2" unknown record, "3" already exists, "4" illegal status move,
"5" batch over the limit, "6" unknown service or wrong endpoint, 401 session, 403 dstcode/madonvi.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

INVALID = "1"
NOT_FOUND = "2"
EXISTS = "3"
ILLEGAL_MOVE = "4"
BATCH_LIMIT = "5"
UNKNOWN_SERVICE = "6"
SESSION = 401
FORBIDDEN = 403

PERSONAL_FIELDS = frozenset(
    {
        "SoGiayToChuHoSo",
        "SoDinhDanh",
        "Email",
        "SoDienThoai",
        "Fax",
        "DienThoai",
        "SoCMNDNguoiNop",
        "password",
        "session",
        "MaSoThue",
    }
)


def error(code: str | int, message: str, result: list[Any] | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"error_code": code, "message": message}
    if result is not None:
        reply["result"] = result
    return reply


def show_value(field: str, value: Any) -> str:
    """The value as a message shows it: personal data masked, long text cut."""
    if field in PERSONAL_FIELDS and isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value)
        return repr(text[:2] + "*" * max(0, len(text) - 4) + text[-2:]) if len(text) > 4 else "'****'"
    if isinstance(value, str) and len(value) > 60:
        return f"{value[:40]!r}… ({len(value)} ký tự)"
    if isinstance(value, dict | list):
        return type(value).__name__
    return repr(value)


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(bản ghi)"


def describe(exc: ValidationError, record: str | None = None, limit: int = 5) -> str:
    """``Hồ sơ X: NgayTiepNhan = '2025-13-01': <why>; ...`` for the first ``limit`` errors."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = tuple(err.get("loc", ()))
        field = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
        why = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        raw = err.get("input")
        if field in PERSONAL_FIELDS and isinstance(raw, str | int | float) and str(raw) in why:
            why = why.replace(str(raw), "***")
        if err.get("type") == "missing":
            parts.append(f"{_path(loc)}: thiếu trường bắt buộc")
        else:
            parts.append(f"{_path(loc)} = {show_value(field, err.get('input'))}: {why}")
    more = len(exc.errors()) - limit
    text = "; ".join(parts) + (f"; và {more} lỗi khác" if more > 0 else "")
    prefix = f"Hồ sơ {record}: " if record else ""
    return f"{prefix}dữ liệu không hợp lệ: {text}"


def record_name(item: Any, index: int) -> str:
    code = item.get("MaHoSo") if isinstance(item, dict) else None
    return code if isinstance(code, str) and code else f"#{index} (không có MaHoSo)"
