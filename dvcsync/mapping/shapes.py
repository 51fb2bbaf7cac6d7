"""What a generated mapping function knows of its values, and the output model built from them
without validation where that knowledge (or a cheap inline test) shows the model would accept them.

``compiled`` tracks, through each field's steps, what holds of ``v`` (``Known``: a ``str``, stripped,
not blank, its longest length, the finite set of values a code table or a constant can give, a
``yyyyMMddHHmmss`` moment that exists). The output model's core-only schema (``contract._fast``)
says, per field, what it accepts (``Need``: a strict ``str`` with lengths and the wire-date
pattern, or one of a few texts). Where ``Known`` does not imply the ``Need``, the generated code
tests what is left inline; when every field passes, the record is built the way
``model_construct`` builds one (``RawPlan.build``): the same ``__dict__`` (the model's field order,
defaults filled in), fields set, extra and private parts as the core-only validation gives, since
the core-only schema returns a strict ``str`` or literal as is. Anything else (a field of another
kind, a model with a validator of its own, nested models, a value that fails a test) is validated
as before, so every error stays the model's own. ``tests/unit/mapping/test_prebuilt.py`` compares
both over both profiles' samples with bad values planted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel

from dvcsync.contract._fast import WIRE_DATE_PATTERN, fast_schema

from .spec import FieldSpec

wire_date_text = re.compile(WIRE_DATE_PATTERN).fullmatch
"""The core-only schema's wire-date pattern (``^…$``: ``fullmatch`` refuses a final newline too)."""


@dataclass(frozen=True)
class Known:
    """What the generated code knows of ``v`` at a point: a ``str`` (``text``), equal to its
    ``strip()``, not blank, at most ``max_length`` characters (None: unknown), one of ``values``
    (None: any), a ``yyyyMMddHHmmss`` moment that exists or ``""`` (``wire_date``)."""

    text: bool
    stripped: bool
    not_blank: bool
    max_length: int | None
    values: frozenset[str] | None = None
    wire_date: bool = False

    def join(self, other: Known) -> Known:
        """What holds after either of two branches."""
        both = self.text and other.text
        longest = None
        if both and self.max_length is not None and other.max_length is not None:
            longest = max(self.max_length, other.max_length)
        values = None
        if self.values is not None and other.values is not None:
            values = self.values | other.values
        return Known(
            both,
            self.stripped and other.stripped,
            self.not_blank and other.not_blank,
            longest,
            values,
            self.wire_date and other.wire_date,
        )

    def checked(self) -> Known:
        """After the ``required`` check: not blank."""
        return replace(self, not_blank=True)


ANY = Known(False, False, False, None)
STR = Known(True, False, False, None)
WIRE_DATE = Known(True, True, True, 14, wire_date=True)
"""The inline ``datetime`` format's digits of a moment that exists (its regular expression's)."""


def known_of(values: Any) -> Known:
    """What holds of every value of a table or constant (fixed once loaded)."""
    values = list(values)
    if not values or not all(type(v) is str for v in values):
        return ANY
    return Known(
        True,
        all(v == v.strip() for v in values),
        all(v.strip() for v in values),
        max(len(v) for v in values),
        frozenset(values),
        all(wire_date_text(v) is not None for v in values),
    )


@dataclass(frozen=True)
class Need:
    """What the core-only schema of one field accepts: a strict ``str`` of these lengths (and the
    wire-date pattern), or, with ``literal``, one of those texts."""

    min_length: int = 0
    max_length: int | None = None
    wire_date: bool = False
    literal: frozenset[str] | None = None

    def accepts(self, value: str) -> bool:
        if self.literal is not None:
            return value in self.literal
        if len(value) < self.min_length or (self.max_length is not None and len(value) > self.max_length):
            return False
        return not self.wire_date or wire_date_text(value) is not None

    def tests(self, known: Known, literal_name: str) -> list[str]:
        """Inline tests of ``v`` that are true when the schema might refuse it (none: proven)."""
        if known.values is not None and all(self.accepts(v) for v in known.values):
            return []
        if self.literal is not None:
            return ["type(v) is not str", f"v not in {literal_name}"]
        out = [] if known.text else ["type(v) is not str"]
        long_enough = known.text and (
            self.min_length <= 0
            or (self.min_length == 1 and known.not_blank)
            or (known.wire_date and known.not_blank and self.min_length <= 14)
        )
        if not long_enough:
            out.append(f"len(v) < {self.min_length}")
        if self.max_length is not None and not (
            known.text and known.max_length is not None and known.max_length <= self.max_length
        ):
            out.append(f"len(v) > {self.max_length}")
        if self.wire_date and not (known.text and known.wire_date):
            out.append("wire_date_text(v) is None")
        return out


_MISSING = object()


def _need(schema: Mapping[str, Any]) -> tuple[Need | None, Any]:
    """A model field's ``Need`` (None: not one this module proves) and its default."""
    default: Any = _MISSING
    if schema.get("type") == "default":
        if set(schema) - {"type", "schema", "default"}:
            return None, _MISSING
        default, schema = schema["default"], schema["schema"]
    if schema.get("type") == "nullable":
        if set(schema) - {"type", "schema"}:
            return None, default
        schema = schema["schema"]
    kind = schema.get("type")
    if kind == "literal" and set(schema) == {"type", "expected"}:
        expected = schema["expected"]
        if all(type(v) is str for v in expected):
            return Need(literal=frozenset(expected)), default
        return None, default
    if kind != "str" or schema.get("strict") is not True:
        return None, default
    if set(schema) - {"type", "strict", "min_length", "max_length", "pattern"}:
        return None, default
    pattern = schema.get("pattern")
    if pattern not in (None, WIRE_DATE_PATTERN):
        return None, default
    need = Need(schema.get("min_length", 0), schema.get("max_length"), pattern is not None)
    return need, default


@dataclass(frozen=True)
class RawPlan:
    """How a model is built without validation from a spec's output: each mapped field's ``Need``,
    every field's default in the model's order, what validation leaves as extra."""

    model: type[BaseModel]
    needs: dict[str, Need]
    template: dict[str, Any]
    extra: dict[str, Any] | None
    in_order: bool

    def builder(self) -> Callable[[dict[str, Any]], Any]:
        """``out`` → the model, as ``model_construct`` builds it (no validation). ``out`` is the
        generated function's own new dict in the spec's order, never seen by anyone else: when
        the spec maps every field in the model's order (``in_order``), it is the model's."""
        cls, template, allow = self.model, self.template, self.extra is not None
        new, set_ = object.__new__, object.__setattr__
        if self.in_order:  # every field mapped, in the model's order: ``out`` is the ``__dict__``

            def build_all(out: dict[str, Any]) -> Any:
                model = new(cls)
                set_(model, "__dict__", out)
                set_(model, "__pydantic_fields_set__", set(out))
                set_(model, "__pydantic_extra__", {} if allow else None)
                set_(model, "__pydantic_private__", None)
                return model

            return build_all

        def build(out: dict[str, Any]) -> Any:
            model = new(cls)
            values = template.copy()
            values.update(out)
            set_(model, "__dict__", values)
            set_(model, "__pydantic_fields_set__", set(out))
            set_(model, "__pydantic_extra__", {} if allow else None)
            set_(model, "__pydantic_private__", None)
            return model

        return build


def raw_plan(model: type[BaseModel] | None, fields: Mapping[str, FieldSpec]) -> RawPlan | None:
    """The plan for a spec's output model, or None when the model needs its own validation: a
    validator of the whole model, private attributes, a field of another kind than a strict text or
    a literal (nested models, numbers), a mapped field the model does not have, ``omit_empty``."""
    if model is None or model.__private_attributes__:
        return None
    schema = fast_schema(model.__pydantic_core_schema__)
    if schema.get("type") != "model" or schema.get("custom_init") or schema.get("post_init"):
        return None
    if schema.get("root_model"):
        return None
    inner = schema["schema"]
    if inner.get("type") != "model-fields" or inner.get("computed_fields") or inner.get("extras_schema"):
        return None
    if any(fs.omit_empty for fs in fields.values()) or set(fields) - set(inner["fields"]):
        return None
    needs: dict[str, Need] = {}
    template: dict[str, Any] = {}
    for name, field in inner["fields"].items():
        if field.get("type") != "model-field" or set(field) - {"type", "schema", "metadata"}:
            return None
        need, default = _need(field["schema"])
        if name in fields:
            if need is None:
                return None
            needs[name] = need
        elif default is _MISSING or not (default is None or type(default) is str):
            return None
        template[name] = None if default is _MISSING else default
    allow = schema.get("config", {}).get("extra_fields_behavior") == "allow"
    extra: dict[str, Any] | None = {} if allow else None
    return RawPlan(model, needs, template, extra, list(fields) == list(template))
