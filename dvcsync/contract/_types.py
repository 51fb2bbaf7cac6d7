"""Annotated scalar types shared by the wire models.

Real clients disagree on scalar encodings (ints vs strings, ``"True"`` vs ``true``, success as
``0``/``"0"``/``"00"``). These types accept every variant seen in the wild and always emit the one
canonical form, so the adapter speaks one dialect and understands all of them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

from ._codes import code_values
from ._dates import format_wire_datetime, validate_wire_datetime


def _to_str(value: Any) -> Any:
    """Ints (not bools) become strings: the contract carries every scalar as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    return value


WireStr = Annotated[str, BeforeValidator(_to_str)]
"""A scalar the contract carries as a string; ints are accepted and stringified."""


def _to_text(value: Any) -> Any:
    return "" if value is None else _to_str(value)


ReplyText = Annotated[str, BeforeValidator(_to_text)]
"""A reply's free text (``message``, ``MoTaLoi``): ``null`` (Java clients send it) reads as ``""``."""


def _to_flag(value: Any) -> Any:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"true", "1"}:
            return "True"
        if lowered in {"false", "0"}:
            return "False"
    if isinstance(value, int) and value in (0, 1):
        return "True" if value else "False"
    raise ValueError(f"expected a flag 'True'/'False', got {value!r}")


Flag = Annotated[str, BeforeValidator(_to_flag)]
"""``"True"``/``"False"`` on the wire; booleans, ``"true"`` and ``1``/``0`` accepted."""


def _to_flag_or_empty(value: Any) -> Any:
    return "" if isinstance(value, str) and value.strip() == "" else _to_flag(value)


FlagOrEmpty = Annotated[str, BeforeValidator(_to_flag_or_empty)]
"""A flag inside a record, where §2.1 lets any optional field be ``""``: kept as ``""``."""


def _to_bit(value: Any) -> Any:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) and value in (0, 1):
        return str(value)
    if isinstance(value, str) and value.strip().lower() in {"0", "1", "true", "false", ""}:
        lowered = value.strip().lower()
        return {"true": "1", "false": "0"}.get(lowered, lowered)
    raise ValueError(f"expected '0' or '1', got {value!r}")


Bit = Annotated[str, BeforeValidator(_to_bit)]
"""``"0"``/``"1"`` on the wire (``""`` allowed: absent); booleans accepted."""


def _to_error_code(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"error_code must be a number or numeric string, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+", text):
            return int(text)
    raise ValueError(f"error_code must be a number or numeric string, got {value!r}")


ErrorCode = Annotated[int, BeforeValidator(_to_error_code)]
"""Portal reply code; ``0``, ``"0"`` and ``"00"`` all mean success. Emitted as an int."""

to_error_code = BeforeValidator(_to_error_code)
"""For reply codes with a closed set of values: ``Annotated[Literal[0, 1, -1], to_error_code]``."""


def _date_in(value: Any) -> Any:
    from datetime import datetime

    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_wire_datetime(value)
    return value


WireDate = Annotated[str, BeforeValidator(_date_in), AfterValidator(validate_wire_datetime)]
"""``yyyyMMddHHmmss`` (Asia/Ho_Chi_Minh) or ``""``; impossible dates are refused."""


def code_check(enum: type[StrEnum], *, allow_empty: bool = True) -> AfterValidator:
    """Validator of a wire code against ``enum``'s values (``""`` allowed when ``allow_empty``).

    Used as ``Annotated[str, BeforeValidator(_to_str), code_check(Enum)]`` so type checkers see a str.
    """
    allowed = code_values(enum)
    name = enum.__name__

    def check(value: str) -> str:
        if value == "" and allow_empty:
            return value
        if value not in allowed:
            raise ValueError(f"unknown {name} code {value!r}; expected one of {sorted(allowed, key=_num)}")
        return value

    check.allowed_codes = allowed | ({""} if allow_empty else set())  # type: ignore[attr-defined]
    return AfterValidator(check)


to_str = BeforeValidator(_to_str)


def _num(code: str) -> tuple[int, str]:
    return (int(code), code) if code.isdigit() else (10**9, code)


MA_TTHC_RE = re.compile(r"^[123]\.\d{6}(\.\d{3}\.\d{2}\.\d{2}\.[HG]\d{2})?$")


def _check_ma_tthc(value: str) -> str:
    if not MA_TTHC_RE.fullmatch(value):
        raise ValueError(
            f"MaTTHC {value!r} is not a national procedure code (1.001193 or 1.001193.000.00.00.H40)"
        )
    return value


MaTTHCCode = Annotated[str, BeforeValidator(_to_str), AfterValidator(_check_ma_tthc)]


def _int_amount(value: Any) -> Any:
    """Digits only for text: "8.000" is eight thousand in Vietnamese writing, never 8 (pydantic's
    lax int would read it as 8.0), so any separator or fraction in a text amount is refused."""
    if isinstance(value, bool):
        raise ValueError(f"amount must be whole VND, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"-?\d+", text):
            raise ValueError(f"amount must be whole VND in plain digits, got {value!r}")
        return int(text)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


IntAmount = Annotated[int, BeforeValidator(_int_amount)]
"""Whole VND carried as a JSON number (callback, QUERY reply)."""

StrAmount = Annotated[
    int,
    BeforeValidator(_int_amount),
    PlainSerializer(lambda v: str(v), return_type=str, when_used="always"),
]
"""Whole VND carried as a string (INIT ``SoTien``, fee ``Gia``); parsed to int, emitted as text."""
