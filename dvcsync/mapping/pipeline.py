"""The pieces of a field's pipeline that both ways of mapping a record run: the closures of
``engine`` and the generated functions of ``compiled``. Here so that neither imports the other's
internals: ``engine`` builds on ``compiled`` and this module, ``compiled`` on this module alone.

The result (``MapResult``), the per-record context, the problems a step raises (turned into
``FieldError``s by the caller), the steps and formats, and the labels errors carry.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from dvcsync.contract import (
    WireDateError,
    format_wire_datetime,
    parse_local_iso,
    parse_wire_datetime,
)
from dvcsync.errors import DvcsyncError

from .errors import FieldError
from .spec import FieldSpec

MISSING = object()


class Problem(DvcsyncError):
    """Raised inside a field's pipeline; turned into a FieldError by the caller (never leaves
    the mapping layer)."""

    def __init__(self, reason: str, value: Any = MISSING) -> None:
        super().__init__(reason)
        self.reason, self.value = reason, value


class Skipped(Problem):
    """A code table says records with this value are not sent (``skip``): not a data error."""


@dataclass
class MapResult:
    """A mapped record (``value``) or the reasons it could not be mapped (``errors``)."""

    record: str
    value: Any = None  # the contract model (outbound) or the row dict (inbound)
    errors: list[FieldError] = field(default_factory=list)
    skipped: str | None = None
    """Set when the record is not to be sent at all (a code table's ``skip``): the reason, also
    carried as the record's only error so that a caller unaware of skips quarantines it, said."""

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class Context:
    record: Mapping[str, Any]
    parent: Mapping[str, Any] | None
    record_key: str


def get_path(data: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if data is None:
            return None
        data = data.get(part) if isinstance(data, Mapping) else getattr(data, part, None)
    return data


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def has_surrogates(value: str) -> bool:
    """Broken bytes read with ``surrogateescape`` are lone surrogates, which UTF-8 cannot encode."""
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"", "0", "false", "no", "n"}
    return bool(value)


def to_ascii(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return parse_local_iso(str(value)).date()


Getter = Callable[[Context], Any]


class ChildProblems(DvcsyncError):
    """The child items' problems, carried to the record's result (never leaves the mapping layer)."""

    def __init__(self, problems: list[FieldError], partial: list[Any]) -> None:
        super().__init__(f"{len(problems)} problems in child items")
        self.problems, self.partial = problems, partial


def inline_step(table: dict[str, Any]) -> Callable[[Any, Context], Any]:
    """``map_values``: the value's entry, an error naming the expected ones when it has none."""

    def inline(value: Any, ctx: Context) -> Any:
        if is_empty(value):
            return value
        key = str(value)
        if key not in table:
            raise Problem(f"no entry in map_values (expected one of {sorted(table)})")
        return table[key]

    return inline


def clip_step(limit: int, truncate: bool) -> Callable[[Any, Context], Any]:
    """``max_length``: a longer text is cut (``on_overflow = truncate``) or refused."""

    def clip(value: Any, ctx: Context) -> Any:
        if isinstance(value, str) and len(value) > limit:
            if truncate:
                return value[:limit]
            raise Problem(f"too long: {len(value)} characters, at most {limit}")
        return value

    return clip


def need(value: Any, ctx: Context) -> Any:
    """``required``: an empty value is refused."""
    if is_empty(value):
        raise Problem("required but empty")
    return value


def check_text(value: Any, ctx: Context) -> Any:
    if isinstance(value, str) and has_surrogates(value):
        raise Problem(
            "not valid UTF-8 (broken bytes in the source)", value.encode("utf-8", "surrogateescape")
        )
    return value


def fmt_text(value: Any, ctx: Context) -> Any:
    return "" if value is None else str(value).strip()


def fmt_datetime(value: Any, ctx: Context) -> Any:
    if is_empty(value):
        return ""
    if isinstance(value, datetime):
        return format_wire_datetime(value)
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace(" ", "T", 1))
    except ValueError:
        raise Problem("not a possible date-time (ISO 8601 expected)") from None
    return format_wire_datetime(parsed)  # naive = already local: no zone arithmetic on the hot path


def fmt_wire_datetime(value: Any, ctx: Context) -> Any:
    if is_empty(value):
        return None
    try:
        parsed = parse_wire_datetime(str(value))
    except WireDateError:
        raise Problem("not a possible yyyyMMddHHmmss date-time") from None
    assert parsed is not None
    return parsed.replace(tzinfo=None).isoformat(timespec="seconds")


def fmt_int(value: Any, ctx: Context) -> Any:
    if is_empty(value):
        return None
    try:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(str(value).strip()) if not isinstance(value, float) else int(value)
    except ValueError:
        raise Problem("not a whole number") from None


def fmt_amount(value: Any, ctx: Context) -> Any:
    number = fmt_int(value, ctx)
    if number is None:
        return ""
    if number < 0:
        raise Problem("a negative amount")
    return str(number)


def fmt_bit(value: Any, ctx: Context) -> Any:
    return "1" if truthy(value) else "0"


def fmt_flag(value: Any, ctx: Context) -> Any:
    return "True" if truthy(value) else "False"


def fmt_ascii(value: Any, ctx: Context) -> Any:
    return "" if value is None else to_ascii(str(value))


def fmt_upper(value: Any, ctx: Context) -> Any:
    return "" if value is None else str(value).upper()


FORMATS: dict[str, Callable[[Any, Context], Any]] = {
    "text": fmt_text,
    "datetime": fmt_datetime,
    "wire_datetime": fmt_wire_datetime,
    "int": fmt_int,
    "amount": fmt_amount,
    "bit": fmt_bit,
    "flag": fmt_flag,
    "ascii": fmt_ascii,
    "upper": fmt_upper,
}


def source_label(fs: FieldSpec | None) -> str:
    if fs is None:
        return ""
    if fs.path is not None:
        return fs.path
    if fs.paths is not None:
        return " | ".join(fs.paths)
    if fs.first_of is not None:
        return " | ".join(label for label in map(source_label, fs.first_of) if label)
    if fs.each is not None:
        return fs.each
    if fs.concat is not None:
        return " + ".join(part.each for part in fs.concat)
    if fs.exists is not None:
        return fs.exists
    return ""


def read_path(path: str, ctx: Context) -> Any:
    parts = tuple(path.split("."))
    return get_path(ctx.parent, parts[1:]) if parts[0] == "parent" else get_path(ctx.record, parts)


def raw_source(fs: FieldSpec, ctx: Context) -> Any:
    if fs.path is not None:
        return read_path(fs.path, ctx)
    if fs.paths is not None:
        return [read_path(p, ctx) for p in fs.paths]
    if fs.first_of is not None:
        return [raw_source(alt, ctx) for alt in fs.first_of]
    return None


def loc_label(loc: tuple[Any, ...]) -> str:
    label = ""
    for part in loc:
        label += f"[{part}]" if isinstance(part, int) else (f".{part}" if label else str(part))
    return label


def clean_reason(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def nest(err: FieldError, position: str, source_index: int) -> FieldError:
    source = f"{err.source}" if err.source else ""
    return FieldError(err.record, f"{position}.{err.field}", source, err.value, err.reason)


def prefix(err: FieldError, name: str) -> FieldError:
    return FieldError(err.record, f"{name}{err.field}", err.source, err.value, err.reason)
