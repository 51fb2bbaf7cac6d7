"""The mapping engine: specs compiled once into small closures, then applied per record.

The closures are the reference semantics; ``compiled`` turns each spec into one generated
function built on them (the fast path for dict records, which every source yields). What both
run (steps, formats, the result and its errors) is in ``pipeline``, so ``compiled`` needs nothing
of this module and the two do not import each other.

A record is a dict of the source row's columns plus, under the names of ``source.children``,
lists of its child rows. Mapping never raises on bad data: every failing field becomes a
``FieldError`` and the other fields (and records) go on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from dvcsync.contract import PERSONAL_WIRE_FIELDS, WireDateError
from dvcsync.contract._fast import FastValidator
from dvcsync.source_spec import Condition, describe_filter, filter_matches

from .codes import CodeLookupError, CodeSkipped, CodeTable
from .compiled import compile_mapping
from .errors import FieldError, show
from .pipeline import (
    FORMATS,
    MISSING,
    ChildProblems,
    Context,
    Getter,
    MapResult,
    Problem,
    Skipped,
    as_date,
    check_text,
    clean_reason,
    clip_step,
    fmt_datetime,
    fmt_wire_datetime,
    get_path,
    inline_step,
    is_empty,
    loc_label,
    need,
    nest,
    prefix,
    raw_source,
    source_label,
)
from .spec import FieldSpec, MappingSpec, template_fields

__all__ = ["OUTSIDE_WHERE", "CompiledMapping", "MapResult"]

# A record its source's ``where`` leaves out is not this mapping's: said so, not mapped.
OUTSIDE_WHERE = "not sent: outside the source's where"


# One core-only validator per output model, built on first use (a few ms each) and shared by every
# mapping set of the process: the models are module-level classes, never rebuilt.
@functools.cache
def fast_validator(model: type[BaseModel]) -> FastValidator[Any]:
    """``model.model_validate`` with the same outputs and errors, but pydantic-core alone for the
    canonical records a mapping produces (``FastValidator``; anything it refuses goes to the
    model itself, so every error is the model's own). One per model, built on first use."""
    return FastValidator(model)


# The formats' names before they moved to ``pipeline`` (tests/unit/mapping/test_properties.py).
_fmt_datetime, _fmt_wire_datetime = fmt_datetime, fmt_wire_datetime


class CompiledMapping:
    """One spec, compiled against its code tables and the other mappings it refers to."""

    def __init__(
        self,
        spec: MappingSpec,
        codes: Mapping[str, CodeTable],
        model: type[BaseModel] | None,
        resolve: Callable[[str], CompiledMapping],
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.model = model
        self._fast = fast_validator(model) if model is not None else None
        self._codes = codes
        self._resolve = resolve
        self._record_key = spec.record_key or (spec.source.record_key if spec.source else None)
        self._fields: list[tuple[str, FieldSpec, Getter]] = [
            (name, fs, self._compile(fs)) for name, fs in spec.fields.items()
        ]
        self.personal_fields = frozenset(name for name, fs, _ in self._fields if fs.personal)
        source = spec.source
        self._where = source.where if source is not None and source.where else None
        self._outside = f"{OUTSIDE_WHERE} ({describe_filter(self._where)})" if self._where else ""
        self._compiled = compile_mapping(self)

    def applies(self, record: Mapping[str, Any]) -> bool:
        """Whether this mapping's ``applies_to`` takes ``record`` (False without one): a source row
        it maps instead of the default mapping (e.g. a portal-submitted dossier's status report)."""
        applies_to = self.spec.applies_to
        return applies_to is not None and applies_to.matches(record)

    # ------------------------------------------------------------------ compile

    def _compile(self, fs: FieldSpec) -> Getter:
        source = self._compile_source(fs)
        steps = self._compile_steps(fs)
        # Most fields copy a column as is: the UTF-8 check inlined, no step loop (the hot path).
        if not steps:

            def copy(ctx: Context) -> Any:
                value = source(ctx)
                if type(value) is str and not value.isascii():
                    check_text(value, ctx)
                return value

            return copy

        def run(ctx: Context) -> Any:
            value = source(ctx)
            if type(value) is list:
                return value
            if type(value) is str and not value.isascii():
                check_text(value, ctx)
            for step in steps:
                value = step(value, ctx)
            return value

        return run

    def _compile_source(self, fs: FieldSpec) -> Getter:
        if fs.path is not None:
            return self._path_getter(fs.path)
        if fs.paths is not None:
            getters = [self._path_getter(p) for p in fs.paths]

            def first(ctx: Context) -> Any:
                for getter in getters:
                    value = getter(ctx)
                    if not is_empty(value):
                        return value
                return None

            return first
        if fs.first_of is not None:
            return self._first_of_getter(fs.first_of)
        if fs.template is not None:
            return self._template_getter(fs.template)
        if fs.exists is not None:
            child, where = fs.exists, fs.where

            def exists(ctx: Context) -> Any:
                items = ctx.record.get(child) or []
                return "1" if any(filter_matches(where, item) for item in items) else "0"

            return exists
        if fs.each is not None:
            assert fs.mapping is not None
            return self._list_getter([(fs.each, fs.mapping, fs.where)])
        if fs.concat is not None:
            return self._list_getter([(part.each, part.mapping, part.where) for part in fs.concat])
        const = fs.const
        return lambda ctx: const

    def _template_getter(self, template: str) -> Getter:
        """``{path}`` placeholders read like ``path`` (``{parent.x}`` too); empty is ``""``."""
        pieces = [
            (literal, self._path_getter(name) if name is not None else None, spec, conversion)
            for literal, name, spec, conversion in template_fields(template)
        ]

        def fill(ctx: Context) -> Any:
            out: list[str] = []
            for literal, getter, spec, conversion in pieces:
                out.append(literal)
                if getter is None:
                    continue
                value = getter(ctx)
                value = "" if value is None else value
                if conversion:
                    value = {"r": repr, "a": ascii}.get(conversion, str)(value)
                try:
                    out.append(format(value, spec))
                except (ValueError, TypeError) as exc:
                    raise Problem(f"template {template!r} failed: {exc}") from None
            return "".join(out)

        return fill

    def _first_of_getter(self, alternatives: list[FieldSpec]) -> Getter:
        """The first alternative that gives a non-empty value without failing; a failing one (no
        code for a sub-status, say) falls through to the next, a code table's skip does not."""
        compiled = [(alt, self._compile(alt)) for alt in alternatives]

        def first(ctx: Context) -> Any:
            reasons: list[str] = []
            for alt, getter in compiled:
                try:
                    value = getter(ctx)
                except Skipped:
                    raise
                except Problem as exc:
                    reasons.append(f"{source_label(alt) or 'const'}: {exc.reason}")
                    continue
                if not is_empty(value):
                    return value
            if reasons:
                raise Problem("no alternative gave a value (" + "; ".join(reasons) + ")")
            return None

        return first

    def _path_getter(self, path: str) -> Getter:
        parts = tuple(path.split("."))
        if parts[0] == "parent":
            rest = parts[1:]
            return lambda ctx: get_path(ctx.parent, rest)
        if len(parts) == 1:  # a column of the record: one dict look-up for source rows
            name = parts[0]

            def column(ctx: Context) -> Any:
                record = ctx.record
                return record.get(name) if type(record) is dict else get_path(record, parts)

            return column
        return lambda ctx: get_path(ctx.record, parts)

    def _list_getter(self, parts: list[tuple[str, str, dict[str, Condition] | None]]) -> Getter:
        """One list from its parts, in order: each part's (matching) child items through its
        mapping. ``each`` is one part; ``concat`` several (several child lists, or one child
        list through several mappings: one row → several items)."""

        def items(ctx: Context) -> Any:
            out: list[Any] = []
            problems: list[FieldError] = []
            for child_name, mapping_name, where in parts:
                child = self._resolve(mapping_name)
                for index, item in enumerate(ctx.record.get(child_name) or []):
                    if where and not filter_matches(where, item):
                        continue
                    result = child.map(item, parent=ctx.record, record_key=ctx.record_key, validate=False)
                    if result.errors:
                        position = len(out)
                        problems.extend(nest(err, f"[{position}]", index) for err in result.errors)
                    out.append(result.value)
            if problems:
                raise ChildProblems(problems, out)
            return out

        return items

    def _compile_steps(self, fs: FieldSpec) -> list[Callable[[Any, Context], Any]]:
        steps: list[Callable[[Any, Context], Any]] = []  # the UTF-8 check runs first, in _compile
        if fs.map_values is not None:
            steps.append(inline_step({str(k): v for k, v in fs.map_values.items()}))
        if fs.code is not None:
            steps.append(self._code_step(fs))
        if fs.default is not None:
            default = fs.default
            steps.append(lambda value, ctx: default if is_empty(value) else value)
        if fs.format is not None:
            steps.append(FORMATS[fs.format])
        if fs.max_length is not None:
            steps.append(clip_step(fs.max_length, fs.on_overflow == "truncate"))
        if fs.required:
            steps.append(need)
        return steps

    def _code_step(self, fs: FieldSpec) -> Callable[[Any, Context], Any]:
        assert fs.code is not None
        table = self._codes[fs.code]
        attr, reverse = fs.attr, fs.reverse
        as_of = self._path_getter(fs.as_of) if fs.as_of else None

        def lookup(value: Any, ctx: Context) -> Any:
            if is_empty(value):
                return value
            try:
                if reverse:
                    return table.reverse_lookup(str(value), attr)
                when = None
                if as_of is not None:
                    raw = as_of(ctx)
                    if not is_empty(raw):
                        try:
                            when = as_date(raw)
                        except (WireDateError, ValueError):
                            raise Problem(f"cannot read the date {raw!r} used to resolve it") from None
                found = table.lookup(str(value), when)
            except CodeSkipped as exc:
                raise Skipped(str(exc)) from None
            except CodeLookupError as exc:
                raise Problem(str(exc)) from None
            if attr is not None:
                if not isinstance(found, Mapping) or attr not in found:
                    raise Problem(f"entry of code table {table.name!r} has no attribute {attr!r}")
                return found[attr]
            return found

        return lookup

    # ------------------------------------------------------------------ apply

    def map(
        self,
        record: Mapping[str, Any],
        *,
        parent: Mapping[str, Any] | None = None,
        record_key: str | None = None,
        validate: bool = True,
    ) -> MapResult:
        if type(record) is dict:
            return self._compiled(record, parent, record_key, validate)
        return self.map_closures(record, parent=parent, record_key=record_key, validate=validate)

    def map_closures(
        self,
        record: Mapping[str, Any],
        *,
        parent: Mapping[str, Any] | None = None,
        record_key: str | None = None,
        validate: bool = True,
    ) -> MapResult:
        """The closure pipeline: the reference the compiled function must equal (and the path of
        records that are not plain dicts)."""
        key = record_key if record_key is not None else self._key_of(record)
        if self._where is not None and not filter_matches(self._where, record):
            error = FieldError(key, "(record)", "", "", self._outside)
            return MapResult(record=key, errors=[error], skipped=self._outside)
        ctx = Context(record=record, parent=parent, record_key=key)
        out: dict[str, Any] = {}
        errors: list[FieldError] = []
        reported: set[tuple[str, str]] = set()
        for name, fs, getter in self._fields:
            try:
                value = getter(ctx)
            except Skipped as exc:  # the whole record is left out: its other fields do not matter
                shown = show(raw_source(fs, ctx), personal=fs.personal)
                error = FieldError(key, name, source_label(fs), shown, exc.reason)
                return MapResult(record=key, errors=[error], skipped=exc.reason)
            except ChildProblems as exc:
                errors.extend(prefix(err, name) for err in exc.problems)
                out[name] = exc.partial
                continue
            except Problem as exc:
                raw = exc.value if exc.value is not MISSING else raw_source(fs, ctx)
                seen = (fs.path or f"={name}", exc.reason)
                if seen in reported:
                    continue  # one bad column read by several fields is one problem
                reported.add(seen)
                errors.append(
                    FieldError(
                        record=key,
                        field=name,
                        source=source_label(fs),
                        value=show(raw, personal=fs.personal),
                        reason=exc.reason,
                    )
                )
                continue
            if fs.omit_empty and (is_empty(value) or value == []):
                continue
            out[name] = "" if value is None and self.model is not None else value
        if errors or not validate or self.model is None:
            return MapResult(record=key, value=out if not errors or not validate else None, errors=errors)
        return self._validate(key, out)

    def _validate(
        self, key: str, out: dict[str, Any], check: Callable[[Any], Any] | None = None
    ) -> MapResult:
        """``out`` as the output model, or the model's errors as ``FieldError``s. ``check`` is the
        fast path (``fast_validator``) unless given: tests pass ``model.model_validate`` to compare.
        (The compiled functions try the fast copy inline first, then come here.)"""
        assert self.model is not None and self._fast is not None
        try:
            return MapResult(record=key, value=(check or self._fast.validate_python)(out))
        except ValidationError as exc:
            errors = []
            for problem in exc.errors(include_url=False):
                loc = problem.get("loc", ())
                reason = clean_reason(problem.get("msg", "invalid"))
                raw = problem.get("input")
                if not loc:  # a whole-record rule: name the first field its message names
                    named = next((n for n in out if n in reason), "")
                    loc, raw = ((named,), out.get(named)) if named else ((), None)
                field_name = loc_label(loc) or "(record)"
                top = str(loc[0]) if loc else ""
                personal = top in self.personal_fields or top in PERSONAL_WIRE_FIELDS
                fs = self.spec.fields.get(top)
                errors.append(
                    FieldError(
                        record=key,
                        field=field_name,
                        source=source_label(fs) if fs else "",
                        value=show(raw, personal=personal),
                        reason=reason,
                    )
                )
            return MapResult(record=key, errors=errors)

    def _key_of(self, record: Mapping[str, Any]) -> str:
        """The record's name in errors; when that column is empty, the row's primary key."""
        value = get_path(record, tuple(self._record_key.split("."))) if self._record_key else None
        if not is_empty(value):
            return str(value)
        source = self.spec.source
        if source is not None and record.get(source.key) is not None:
            return f"{source.table} {source.key}={record[source.key]}"
        return "(record without a key)"
