"""The mapping engine: specs compiled once into small closures, then applied per record.

The closures are the reference semantics; ``compiled`` turns each spec into one generated
function built on them (the fast path for dict records, which every source yields).

A record is a dict of the source row's columns plus, under the names of ``source.children``,
lists of its child rows. Mapping never raises on bad data: every failing field becomes a
``FieldError`` and the other fields (and records) go on.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from dvcsync.contract import (
    PERSONAL_WIRE_FIELDS,
    WireDateError,
    format_wire_datetime,
    parse_local_iso,
    parse_wire_datetime,
)
from dvcsync.source_spec import Condition, describe_filter, filter_matches

from .codes import CodeLookupError, CodeSkipped, CodeTable
from .errors import FieldError, show
from .spec import FieldSpec, MappingSpec, template_fields

# A record its source's ``where`` leaves out is not this mapping's: said so, not mapped.
OUTSIDE_WHERE = "not sent: outside the source's where"

_MISSING = object()


class _Problem(Exception):
    """Raised inside a field's pipeline; turned into a FieldError by the caller."""

    def __init__(self, reason: str, value: Any = _MISSING) -> None:
        super().__init__(reason)
        self.reason, self.value = reason, value


class _Skipped(_Problem):
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
class _Context:
    record: Mapping[str, Any]
    parent: Mapping[str, Any] | None
    record_key: str


def _get(data: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if data is None:
            return None
        data = data.get(part) if isinstance(data, Mapping) else getattr(data, part, None)
    return data


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _has_surrogates(value: str) -> bool:
    """Broken bytes read with ``surrogateescape`` are lone surrogates, which UTF-8 cannot encode."""
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"", "0", "false", "no", "n"}
    return bool(value)


def _to_ascii(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return parse_local_iso(str(value)).date()


Getter = Callable[[_Context], Any]


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
        from .compiled import compile_mapping  # it builds on this module's closures

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

            def copy(ctx: _Context) -> Any:
                value = source(ctx)
                if type(value) is str and not value.isascii():
                    _check_text(value, ctx)
                return value

            return copy

        def run(ctx: _Context) -> Any:
            value = source(ctx)
            if type(value) is list:
                return value
            if type(value) is str and not value.isascii():
                _check_text(value, ctx)
            for step in steps:
                value = step(value, ctx)
            return value

        return run

    def _compile_source(self, fs: FieldSpec) -> Getter:
        if fs.path is not None:
            return self._path_getter(fs.path)
        if fs.paths is not None:
            getters = [self._path_getter(p) for p in fs.paths]

            def first(ctx: _Context) -> Any:
                for getter in getters:
                    value = getter(ctx)
                    if not _is_empty(value):
                        return value
                return None

            return first
        if fs.first_of is not None:
            return self._first_of_getter(fs.first_of)
        if fs.template is not None:
            return self._template_getter(fs.template)
        if fs.exists is not None:
            child, where = fs.exists, fs.where

            def exists(ctx: _Context) -> Any:
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

        def fill(ctx: _Context) -> Any:
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
                    raise _Problem(f"template {template!r} failed: {exc}") from None
            return "".join(out)

        return fill

    def _first_of_getter(self, alternatives: list[FieldSpec]) -> Getter:
        """The first alternative that gives a non-empty value without failing; a failing one (no
        code for a sub-status, say) falls through to the next, a code table's skip does not."""
        compiled = [(alt, self._compile(alt)) for alt in alternatives]

        def first(ctx: _Context) -> Any:
            reasons: list[str] = []
            for alt, getter in compiled:
                try:
                    value = getter(ctx)
                except _Skipped:
                    raise
                except _Problem as exc:
                    reasons.append(f"{_source_label(alt) or 'const'}: {exc.reason}")
                    continue
                if not _is_empty(value):
                    return value
            if reasons:
                raise _Problem("no alternative gave a value (" + "; ".join(reasons) + ")")
            return None

        return first

    def _path_getter(self, path: str) -> Getter:
        parts = tuple(path.split("."))
        if parts[0] == "parent":
            rest = parts[1:]
            return lambda ctx: _get(ctx.parent, rest)
        if len(parts) == 1:  # a column of the record: one dict look-up for source rows
            name = parts[0]

            def column(ctx: _Context) -> Any:
                record = ctx.record
                return record.get(name) if type(record) is dict else _get(record, parts)

            return column
        return lambda ctx: _get(ctx.record, parts)

    def _list_getter(self, parts: list[tuple[str, str, dict[str, Condition] | None]]) -> Getter:
        """One list from its parts, in order: each part's (matching) child items through its
        mapping. ``each`` is one part; ``concat`` several (several child lists, or one child
        list through several mappings: one row → several items)."""

        def items(ctx: _Context) -> Any:
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
                        problems.extend(_nest(err, f"[{position}]", index) for err in result.errors)
                    out.append(result.value)
            if problems:
                raise _ChildProblems(problems, out)
            return out

        return items

    def _compile_steps(self, fs: FieldSpec) -> list[Callable[[Any, _Context], Any]]:
        steps: list[Callable[[Any, _Context], Any]] = []  # the UTF-8 check runs first, in _compile
        if fs.map_values is not None:
            steps.append(_inline_step({str(k): v for k, v in fs.map_values.items()}))
        if fs.code is not None:
            steps.append(self._code_step(fs))
        if fs.default is not None:
            default = fs.default
            steps.append(lambda value, ctx: default if _is_empty(value) else value)
        if fs.format is not None:
            steps.append(_FORMATS[fs.format])
        if fs.max_length is not None:
            steps.append(_clip_step(fs.max_length, fs.on_overflow == "truncate"))
        if fs.required:
            steps.append(_need)
        return steps

    def _code_step(self, fs: FieldSpec) -> Callable[[Any, _Context], Any]:
        assert fs.code is not None
        table = self._codes[fs.code]
        attr, reverse = fs.attr, fs.reverse
        as_of = self._path_getter(fs.as_of) if fs.as_of else None

        def lookup(value: Any, ctx: _Context) -> Any:
            if _is_empty(value):
                return value
            try:
                if reverse:
                    return table.reverse_lookup(str(value), attr)
                when = None
                if as_of is not None:
                    raw = as_of(ctx)
                    if not _is_empty(raw):
                        try:
                            when = _as_date(raw)
                        except (WireDateError, ValueError):
                            raise _Problem(f"cannot read the date {raw!r} used to resolve it") from None
                found = table.lookup(str(value), when)
            except CodeSkipped as exc:
                raise _Skipped(str(exc)) from None
            except CodeLookupError as exc:
                raise _Problem(str(exc)) from None
            if attr is not None:
                if not isinstance(found, Mapping) or attr not in found:
                    raise _Problem(f"entry of code table {table.name!r} has no attribute {attr!r}")
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
        ctx = _Context(record=record, parent=parent, record_key=key)
        out: dict[str, Any] = {}
        errors: list[FieldError] = []
        reported: set[tuple[str, str]] = set()
        for name, fs, getter in self._fields:
            try:
                value = getter(ctx)
            except _Skipped as exc:  # the whole record is left out: its other fields do not matter
                shown = show(_raw_source(fs, ctx), personal=fs.personal)
                error = FieldError(key, name, _source_label(fs), shown, exc.reason)
                return MapResult(record=key, errors=[error], skipped=exc.reason)
            except _ChildProblems as exc:
                errors.extend(_prefix(err, name) for err in exc.problems)
                out[name] = exc.partial
                continue
            except _Problem as exc:
                raw = exc.value if exc.value is not _MISSING else _raw_source(fs, ctx)
                seen = (fs.path or f"={name}", exc.reason)
                if seen in reported:
                    continue  # one bad column read by several fields is one problem
                reported.add(seen)
                errors.append(
                    FieldError(
                        record=key,
                        field=name,
                        source=_source_label(fs),
                        value=show(raw, personal=fs.personal),
                        reason=exc.reason,
                    )
                )
                continue
            if fs.omit_empty and (_is_empty(value) or value == []):
                continue
            out[name] = "" if value is None and self.model is not None else value
        if errors or not validate or self.model is None:
            return MapResult(record=key, value=out if not errors or not validate else None, errors=errors)
        return self._validate(key, out)

    def _validate(self, key: str, out: dict[str, Any]) -> MapResult:
        assert self.model is not None
        try:
            return MapResult(record=key, value=self.model.model_validate(out))
        except ValidationError as exc:
            errors = []
            for problem in exc.errors(include_url=False):
                loc = problem.get("loc", ())
                reason = _clean_reason(problem.get("msg", "invalid"))
                raw = problem.get("input")
                if not loc:  # a whole-record rule: name the first field its message names
                    named = next((n for n in out if n in reason), "")
                    loc, raw = ((named,), out.get(named)) if named else ((), None)
                field_name = _loc_label(loc) or "(record)"
                top = str(loc[0]) if loc else ""
                personal = top in self.personal_fields or top in PERSONAL_WIRE_FIELDS
                fs = self.spec.fields.get(top)
                errors.append(
                    FieldError(
                        record=key,
                        field=field_name,
                        source=_source_label(fs) if fs else "",
                        value=show(raw, personal=personal),
                        reason=reason,
                    )
                )
            return MapResult(record=key, errors=errors)

    def _key_of(self, record: Mapping[str, Any]) -> str:
        """The record's name in errors; when that column is empty, the row's primary key."""
        value = _get(record, tuple(self._record_key.split("."))) if self._record_key else None
        if not _is_empty(value):
            return str(value)
        source = self.spec.source
        if source is not None and record.get(source.key) is not None:
            return f"{source.table} {source.key}={record[source.key]}"
        return "(record without a key)"


class _ChildProblems(Exception):
    def __init__(self, problems: list[FieldError], partial: list[Any]) -> None:
        super().__init__(f"{len(problems)} problems in child items")
        self.problems, self.partial = problems, partial


def _inline_step(table: dict[str, Any]) -> Callable[[Any, _Context], Any]:
    """``map_values``: the value's entry, an error naming the expected ones when it has none."""

    def inline(value: Any, ctx: _Context) -> Any:
        if _is_empty(value):
            return value
        key = str(value)
        if key not in table:
            raise _Problem(f"no entry in map_values (expected one of {sorted(table)})")
        return table[key]

    return inline


def _clip_step(limit: int, truncate: bool) -> Callable[[Any, _Context], Any]:
    """``max_length``: a longer text is cut (``on_overflow = truncate``) or refused."""

    def clip(value: Any, ctx: _Context) -> Any:
        if isinstance(value, str) and len(value) > limit:
            if truncate:
                return value[:limit]
            raise _Problem(f"too long: {len(value)} characters, at most {limit}")
        return value

    return clip


def _need(value: Any, ctx: _Context) -> Any:
    """``required``: an empty value is refused."""
    if _is_empty(value):
        raise _Problem("required but empty")
    return value


def _check_text(value: Any, ctx: _Context) -> Any:
    if isinstance(value, str) and _has_surrogates(value):
        raise _Problem(
            "not valid UTF-8 (broken bytes in the source)", value.encode("utf-8", "surrogateescape")
        )
    return value


def _fmt_text(value: Any, ctx: _Context) -> Any:
    return "" if value is None else str(value).strip()


def _fmt_datetime(value: Any, ctx: _Context) -> Any:
    if _is_empty(value):
        return ""
    if isinstance(value, datetime):
        return format_wire_datetime(value)
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace(" ", "T", 1))
    except ValueError:
        raise _Problem("not a possible date-time (ISO 8601 expected)") from None
    return format_wire_datetime(parsed)  # naive = already local: no zone arithmetic on the hot path


def _fmt_wire_datetime(value: Any, ctx: _Context) -> Any:
    if _is_empty(value):
        return None
    try:
        parsed = parse_wire_datetime(str(value))
    except WireDateError:
        raise _Problem("not a possible yyyyMMddHHmmss date-time") from None
    assert parsed is not None
    return parsed.replace(tzinfo=None).isoformat(timespec="seconds")


def _fmt_int(value: Any, ctx: _Context) -> Any:
    if _is_empty(value):
        return None
    try:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(str(value).strip()) if not isinstance(value, float) else int(value)
    except ValueError:
        raise _Problem("not a whole number") from None


def _fmt_amount(value: Any, ctx: _Context) -> Any:
    number = _fmt_int(value, ctx)
    if number is None:
        return ""
    if number < 0:
        raise _Problem("a negative amount")
    return str(number)


def _fmt_bit(value: Any, ctx: _Context) -> Any:
    return "1" if _truthy(value) else "0"


def _fmt_flag(value: Any, ctx: _Context) -> Any:
    return "True" if _truthy(value) else "False"


def _fmt_ascii(value: Any, ctx: _Context) -> Any:
    return "" if value is None else _to_ascii(str(value))


def _fmt_upper(value: Any, ctx: _Context) -> Any:
    return "" if value is None else str(value).upper()


_FORMATS: dict[str, Callable[[Any, _Context], Any]] = {
    "text": _fmt_text,
    "datetime": _fmt_datetime,
    "wire_datetime": _fmt_wire_datetime,
    "int": _fmt_int,
    "amount": _fmt_amount,
    "bit": _fmt_bit,
    "flag": _fmt_flag,
    "ascii": _fmt_ascii,
    "upper": _fmt_upper,
}


def _source_label(fs: FieldSpec | None) -> str:
    if fs is None:
        return ""
    if fs.path is not None:
        return fs.path
    if fs.paths is not None:
        return " | ".join(fs.paths)
    if fs.first_of is not None:
        return " | ".join(label for label in map(_source_label, fs.first_of) if label)
    if fs.each is not None:
        return fs.each
    if fs.concat is not None:
        return " + ".join(part.each for part in fs.concat)
    if fs.exists is not None:
        return fs.exists
    return ""


def _read(path: str, ctx: _Context) -> Any:
    parts = tuple(path.split("."))
    return _get(ctx.parent, parts[1:]) if parts[0] == "parent" else _get(ctx.record, parts)


def _raw_source(fs: FieldSpec, ctx: _Context) -> Any:
    if fs.path is not None:
        return _read(fs.path, ctx)
    if fs.paths is not None:
        return [_read(p, ctx) for p in fs.paths]
    if fs.first_of is not None:
        return [_raw_source(alt, ctx) for alt in fs.first_of]
    return None


def _loc_label(loc: tuple[Any, ...]) -> str:
    label = ""
    for part in loc:
        label += f"[{part}]" if isinstance(part, int) else (f".{part}" if label else str(part))
    return label


def _clean_reason(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _nest(err: FieldError, position: str, source_index: int) -> FieldError:
    source = f"{err.source}" if err.source else ""
    return FieldError(err.record, f"{position}.{err.field}", source, err.value, err.reason)


def _prefix(err: FieldError, name: str) -> FieldError:
    return FieldError(err.record, f"{name}{err.field}", err.source, err.value, err.reason)
