"""A pure pydantic-core first pass for the hot wire models, the full models behind it.

The wire types of ``_types`` accept every variant seen in the wild (ints for strings, ``true`` for
``"True"``, a ``datetime`` for a date...) through small Python validators, ~40 calls a dossier;
most of a batch's validation time was spent in them. Real batches are nearly always canonical
already, so ``FastValidator`` first validates with a copy of the model's core schema in which each
of those validators is replaced by the pydantic-core constraint that accepts exactly the canonical
form (strict strings, literals for codes and flags, regular expressions for dates, procedure codes
and amounts): no Python call per field. Anything that copy refuses (a variant, or an error) is
validated again by the model itself, so every accepted input, every output and every error message
is the model's own. The rules below only ever accept a subset of what the replaced validator
accepts, with the same result: ``tests/unit/contract/test_fast_validation.py`` checks that on
generated inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError
from pydantic._internal._validators import max_length_validator
from pydantic_core import SchemaValidator, core_schema

from ._dates import validate_wire_datetime
from ._types import _check_ma_tthc, _date_in, _int_amount, _to_bit, _to_flag, _to_flag_or_empty, _to_str

T = TypeVar("T")

_YEAR = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
# Days every year has; 29 February (leap years only) is left to the full check.
_MONTH_DAY = "(?:(?:0[1-9]|1[0-2])(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])(?:29|30)|(?:0[13578]|1[02])31)"
_TIME = "(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]"
WIRE_DATE_PATTERN = f"^(?:{_YEAR}{_MONTH_DAY}{_TIME})?$"
"""``yyyyMMddHHmmss`` of a moment that exists, or ``""``: a subset of ``validate_wire_datetime``."""

MA_TTHC_PATTERN = r"^[123]\.[0-9]{6}(?:\.[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[HG][0-9]{2})?$"
"""ASCII digits only: a subset of ``MA_TTHC_RE`` (whose ``\\d`` takes any Unicode digit)."""

_AMOUNT_PATTERN = "^(?:0|[1-9][0-9]{0,17})$"

_FLAGS: dict[Callable[..., Any], list[str]] = {
    _to_flag: ["True", "False"],
    _to_flag_or_empty: ["True", "False", ""],
    _to_bit: ["0", "1", ""],
}


def _function(schema: dict[str, Any]) -> Any:
    spec = schema.get("function")
    return spec.get("function") if isinstance(spec, dict) else None


def _strict_str(schema: dict[str, Any], **extra: Any) -> dict[str, Any] | None:
    """``function-before(_to_str, str)`` → the same ``str`` schema, strict (no Python call)."""
    if schema.get("type") != "function-before" or _function(schema) is not _to_str:
        return None
    inner = schema["schema"]
    if inner.get("type") != "str" or set(inner) - {"type", "min_length", "max_length", "metadata"}:
        return None
    out = {k: v for k, v in inner.items() if k != "metadata"}
    out.update(strict=True, **extra)
    return out


def _fast(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The core-only replacement of one validator schema, or None to keep (and descend into) it."""
    kind, fn = schema.get("type"), _function(schema)
    if kind == "function-before" and fn is _to_str:
        return _strict_str(schema)
    if kind == "function-before" and fn in _FLAGS and schema["schema"] == {"type": "str"}:
        return dict(core_schema.literal_schema(_FLAGS[fn]))
    if kind != "function-after":
        return None
    inner = schema["schema"]
    allowed = getattr(fn, "allowed_codes", None)
    if allowed is not None and _strict_str(inner) is not None:
        return dict(core_schema.literal_schema(sorted(allowed)))
    if fn is _check_ma_tthc:
        return _strict_str(inner, pattern=MA_TTHC_PATTERN)
    if (
        fn is validate_wire_datetime
        and inner.get("type") == "function-before"
        and _function(inner) is _date_in
    ):
        text = inner["schema"]
        if text.get("type") != "str" or set(text) - {"type", "min_length", "max_length", "metadata"}:
            return None
        out = {k: v for k, v in text.items() if k != "metadata"}
        out.update(strict=True, pattern=WIRE_DATE_PATTERN)
        return out
    if isinstance(fn, partial) and fn.func is max_length_validator and set(fn.keywords) == {"max_length"}:
        return _strict_str(inner, max_length=fn.keywords["max_length"])
    if (
        isinstance(fn, partial)
        and fn.keywords == {"ge": 0}
        and inner.get("type") == "function-before"
        and _function(inner) is _int_amount
        and inner["schema"].get("type") == "int"
    ):
        return dict(
            core_schema.union_schema(
                [
                    core_schema.int_schema(strict=True, ge=0),
                    core_schema.chain_schema(
                        [
                            core_schema.str_schema(strict=True, pattern=_AMOUNT_PATTERN),
                            core_schema.int_schema(),
                        ]
                    ),
                ]
            )
        )
    return None


def fast_schema(schema: Any) -> Any:
    """A copy of ``schema`` with every recognised per-field Python validator replaced (see above).

    Serialization entries are dropped: the fast schema only validates, the models serialize."""
    if isinstance(schema, list):
        return [fast_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    replaced = _fast(schema)
    if replaced is not None:
        return replaced
    return {k: fast_schema(v) for k, v in schema.items() if k != "serialization"}


class FastValidator(Generic[T]):
    """``validate_json``/``validate_python`` of ``tp``: the core-only pass, then ``tp``'s own
    validation for whatever it refuses (same result, same errors as ``TypeAdapter(tp)``)."""

    def __init__(self, tp: type[T] | Any) -> None:
        self.full: TypeAdapter[T] = TypeAdapter(tp)
        schema = fast_schema(self.full.core_schema)
        self.fast = _build(schema, _model_classes(schema))

    def validate_json(self, data: bytes | str) -> T:
        try:
            return self.fast.validate_json(data)
        except ValidationError:
            return self.full.validate_json(data)

    def validate_python(self, data: Any) -> T:
        try:
            return self.fast.validate_python(data)
        except ValidationError:
            return self.full.validate_python(data)


def _model_classes(schema: Any) -> set[type]:
    if isinstance(schema, list):
        return set().union(*(_model_classes(item) for item in schema)) if schema else set()
    if not isinstance(schema, dict):
        return set()
    found = {schema["cls"]} if schema.get("type") == "model" else set()
    return found.union(*(_model_classes(v) for k, v in schema.items() if k != "cls"))


def _build(schema: Any, classes: set[type]) -> SchemaValidator:
    """pydantic-core reuses a complete model class's own validator for a ``model`` schema naming it
    (its "prebuilt" validator), which would bring back every Python validator the copy replaced:
    the classes are marked incomplete while the copy is compiled, then restored."""
    marked = [cls for cls in classes if cls.__dict__.get("__pydantic_complete__")]
    try:
        for cls in marked:
            type.__setattr__(cls, "__pydantic_complete__", False)
        return SchemaValidator(schema)
    finally:
        for cls in marked:
            type.__setattr__(cls, "__pydantic_complete__", True)
