"""Mapping specs compiled to Python: one generated function per spec, instead of a closure per field.

The closure pipeline of ``engine`` costs a Python call per field and per step, for every record.
Here the validated spec becomes the source text of one function that maps a dict record straight
through: column reads are ``record.get``, ``map_values`` and plain code tables are dict look-ups
bound into its namespace, formats, clipping and required checks are inline, child lists (``each``,
``concat``, ``exists``) are loops with their ``where`` tests inline, calling the child's function
directly; a plain ``yyyy-mm-ddThh:mm:ss`` becomes its digits without a parse (a regular expression
admits only moments that exist); a dated table read ``as_of`` a column keeps its answers per (key,
day), and the validation tries the model's core-only copy (``FastValidator``) inline. What is rare or
intricate (reverse look-ups, templates, ``paths``, ``first_of``, a miss in a code table or its
cache, any other date text, a record the core-only copy refuses) calls the engine's own closures
(or the steps of ``pipeline`` they share), so its behaviour and error texts are the engine's by
construction; a failing field goes through the same handlers
(record, field, source, value, reason). Each field's code has a branch for a ``str`` (the common
case) whose checks know what holds of it (``shapes.Known``); what a code table's values or the
output model show (``shapes``) decides which checks are written and whether the model is built
without validation. Code tables and closures are bound, not written in; the compiled code is
cached by the spec's hash and kept while its source text is the same; ``source_of`` shows it
(``dvcsync mappings compile --show NAME``). Records that are not dicts take the closure pipeline.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from types import CodeType
from typing import Any, Protocol

from pydantic import ValidationError

from dvcsync.source_spec import Condition, filter_matches, same

from . import pipeline
from .codes import CodeTable
from .errors import FieldError, show
from .pipeline import Context, Getter, MapResult
from .shapes import ANY, STR, WIRE_DATE, Known, RawPlan, known_of, raw_plan, wire_date_text
from .spec import FieldSpec, MappingSpec

MapFunction = Callable[[dict[str, Any], Any, "str | None", bool], MapResult]
"""(record, parent, record key, validate). Called with ``validate=None`` (only by the generated code,
for a child row) it gives ``(value, errors)`` instead, or the ``MapResult`` of a skipped record."""
Finish = Callable[[Known], list[str]]


class CompiledMapping(Protocol):
    """What the generated function is built from and bound to: ``engine.CompiledMapping``, named
    here by shape so that this module does not import the engine that imports it."""

    spec: MappingSpec
    model: Any
    _codes: Mapping[str, CodeTable]
    _record_key: str | None
    _where: Any
    _outside: str
    _resolve: Callable[[str], Any]
    _compiled: Any
    _fast: Any

    def _compile_source(self, fs: FieldSpec) -> Getter: ...

    def _code_step(self, fs: FieldSpec) -> Callable[[Any, Context], Any]: ...

    def _key_of(self, record: Mapping[str, Any]) -> str: ...

    def _validate(self, key: str, out: dict[str, Any], check: Any = None) -> MapResult: ...


_CACHE: dict[str, tuple[str, CodeType]] = {}
_MISS = object()
_NO_CTX: Any = None  # the formats never read their context

_YEAR = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
# Days every year has; 29 February (leap years only) is left to the full parse.
_MONTH_DAY = (
    "(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
)
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
_LOCAL_DATETIME = re.compile(f"{_YEAR}-{_MONTH_DAY}[T ]{_TIME}", re.ASCII).fullmatch
"""``yyyy-mm-ddThh:mm:ss`` (or a space for the ``T``) of a moment that exists: the text the
``datetime`` format turns into its digits, and whose date is its first ten characters."""

_DATED_CACHE_LIMIT = 65_536
"""Entries kept per dated look-up (key, day) before the cache starts over: bounded memory."""

# A format's inline text, and whether it leaves a ``str`` (then the checks after it are simpler).
_FAST_FORMATS = {
    "text": 'v.strip() if type(v) is str else "" if v is None else str(v).strip()',
    "datetime": (
        'v.replace("-", "").replace(":", "").replace(v[10], "")'
        ' if type(v) is str and local_datetime(v) is not None else "" if v is None else fmt_datetime(v)'
    ),
}
# Formats that always give text (or raise): ``pipeline``'s ``fmt_*`` of these names.
_TEXT_FORMATS = frozenset({"text", "datetime", "amount", "bit", "flag", "ascii", "upper"})
# ... and, of those, the ones whose text has no surrounding blanks (empty is then ``not v``).
_STRIPPED_FORMATS = frozenset({"text", "datetime", "amount", "bit", "flag"})


def _empty(var: str) -> str:
    """The engine's ``_is_empty``, inline."""
    return f"({var} is None or (isinstance({var}, str) and {var}.strip() == ''))"


_CONTEXT = "Context(record=record, parent=parent, record_key=key)"


def _blank_test(known: Known) -> str | None:
    """The test that a known ``str`` is not blank (None: it cannot be)."""
    return None if known.not_blank else "v" if known.stripped else "v.strip()"


def _under(test: str | None, body: list[str]) -> list[str]:
    """``body`` as is, or indented under ``if test:``."""
    return body if test is None else [f"if {test}:"] + ["    " + line for line in body]


def spec_hash(cm: CompiledMapping) -> str:
    """The cache key of the generated source: the spec, whether it has a model, its code tables'
    kinds (the text also depends on the tables' values and the model: ``compile_mapping`` compares it)."""
    kinds = sorted((name, _fast_table(cm, name) is not None) for name in _codes_used(cm.spec.fields.values()))
    text = cm.spec.model_dump_json(by_alias=True) + repr((cm.model is not None, kinds))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _codes_used(fields: Any) -> set[str]:
    return {fs.code for fs in fields if fs.code is not None}


def _fast_table(cm: CompiledMapping, name: str) -> dict[str, Any] | None:
    """A plain table with its overlay folded in (skipped keys left out: they take the slow path,
    which raises the skip), or None for a dated table."""
    table = cm._codes[name]
    if table.dated:
        return None
    overlay = table.overlay
    own = dict(table._plain)
    if overlay is None:
        return own
    return {**{k: v for k, v in own.items() if k not in overlay.skip}, **overlay._plain}


class _Builder:
    """The source text of one spec's function and the names it needs bound."""

    def __init__(self, cm: CompiledMapping) -> None:
        self.cm = cm
        self.lines: list[str] = []
        self.names: dict[str, Any] = {}
        self.needs_ctx = False
        self.plan: RawPlan | None = raw_plan(cm.model, cm.spec.fields)

    def bind(self, prefix: str, value: Any) -> str:
        name = f"{prefix}_{len(self.names)}"
        self.names[name] = value
        return name

    def emit(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)

    def build(self) -> str:
        cm, spec = self.cm, self.cm.spec
        body: list[str] = []
        self.lines = body
        for index, (name, fs) in enumerate(spec.fields.items()):
            self.field(index, name, fs)
        head: list[str] = []
        self.lines = head
        self.emit(0, f"def map_{spec.name}(record, parent, record_key, validate):")
        self.emit(1, f'"""{spec.name}: {len(spec.fields)} fields, compiled from its spec."""')
        self.emit(1, "get = record.get")
        record_key = cm._record_key
        if record_key is not None and "." not in record_key:
            self.emit(1, "if record_key is None:")
            self.emit(2, f"k = get({record_key!r})")
            self.emit(2, f"key = str(k) if not {_empty('k')} else key_of(record)")
            self.emit(1, "else:")
            self.emit(2, "key = record_key")
        else:
            self.emit(1, "key = record_key if record_key is not None else key_of(record)")
        if cm._where is not None:
            self.emit(1, "if not filter_matches(where, record):")
            self.emit(2, "return outside(key)")
        if self.needs_ctx:
            self.emit(1, "ctx = Context(record=record, parent=parent, record_key=key)")
        self.emit(1, "out = {}")
        self.emit(1, "errors = []")
        self.emit(1, "reported = None  # made by on_problem when a field first fails")
        if self.plan is not None:
            self.emit(1, "checked = True  # every field shown to be what the model accepts")
        self.lines = head + body
        self.emit(1, "if validate is None:  # a row of another spec's child list: no MapResult of its own")
        self.emit(2, "return out, errors")
        self.emit(1, "if errors or not validate or model is None:")
        self.emit(2, "value = out if not errors or not validate else None")
        self.emit(2, "return MapResult(record=key, value=value, errors=errors)")
        if self.plan is not None:
            self.emit(1, "if checked:  # built as the core-only validation would build it (``shapes``)")
            self.emit(2, "return MapResult(record=key, value=build_raw(out))")
        self.emit(1, "try:  # the core-only copy of the model; on any refusal, the model itself")
        self.emit(2, "return MapResult(record=key, value=fast_validate(out))")
        self.emit(1, "except ValidationError:")
        self.emit(2, "return validate_(key, out)")
        return "\n".join(self.lines) + "\n"

    # ------------------------------------------------------------ one field

    def field(self, index: int, name: str, fs: FieldSpec) -> None:
        fs_name = self.bind("fs", fs)
        self.emit(1, f"# {name}")
        self.emit(1, "try:")
        source = self.source(fs)
        ops = self.ops_of(fs)
        text = fs.format is not None and fs.format in _TEXT_FORMATS
        finish = self.finish(name, store_none=self.cm.model is not None and not text)
        if ops:
            # The common case first: a ``str`` read from the row, its checks knowing it is one.
            self.emit(2, "if type(v) is str:")
            self.utf8_check(3, known_str=True)
            self.lines += ["    " * 3 + line for line in self.render(ops, STR, finish) or ["pass"]]
            self.emit(2, "elif type(v) is not list:")  # not a str: no UTF-8 to check
            self.lines += ["    " * 3 + line for line in self.render(ops, ANY, finish) or ["pass"]]
            if self.plan is not None:
                self.emit(2, "else:")
                self.emit(3, "checked = False")
        else:
            if source is None:
                self.utf8_check(2)
            self.lines += ["    " * 2 + line for line in finish(source or ANY)]
        self.emit(1, "except Skipped as exc:")
        self.emit(2, f"return on_skip({fs_name}, {name!r}, key, exc, record, parent)")
        self.emit(1, "except ChildProblems as exc:")
        self.emit(2, f"errors.extend(prefix(err, {name!r}) for err in exc.problems)")
        self.emit(2, f"out[{name!r}] = exc.partial")
        self.emit(1, "except Problem as exc:")
        self.emit(
            2, f"reported = on_problem({fs_name}, {name!r}, key, exc, record, parent, errors, reported)"
        )
        self.emit(1, "else:")
        indent = 2
        if fs.omit_empty:
            self.emit(2, f"if not ({_empty('v')} or v == []):")
            indent = 3
        if self.cm.model is not None and not text:
            self.emit(indent, f'out[{name!r}] = "" if v is None else v')
        else:
            self.emit(indent, f"out[{name!r}] = v")

    def finish(self, name: str, *, store_none: bool) -> Finish:
        """The tests, at the end of each branch of a field, of what its model field needs and the
        branch does not show (``shapes``): one fails, the record is validated (``checked``)."""
        plan = self.plan
        if plan is None:
            return lambda known: []
        need = plan.needs[name]
        literal = self.bind("literal", need.literal) if need.literal is not None else ""

        def tests(known: Known) -> list[str]:
            if store_none and not known.text:
                return ["checked = False"]  # ``None`` is stored as "": not worth proving
            failing = need.tests(known, literal)
            return [f"if {' or '.join(failing)}: checked = False"] if failing else []

        return tests

    def utf8_check(self, indent: int, *, known_str: bool = False) -> None:
        """``_check_text`` raises exactly when UTF-8 cannot encode the text: tried inline first."""
        self.emit(indent, "if not v.isascii():" if known_str else "if type(v) is str and not v.isascii():")
        self.emit(indent + 1, "try:")
        self.emit(indent + 2, "v.encode('utf-8')")
        self.emit(indent + 1, "except UnicodeEncodeError:")
        self.emit(indent + 2, "check_text(v, None)")

    def source(self, fs: FieldSpec) -> Known | None:
        """``v = `` the field's source; what holds of it, or None when it may be any text (then
        it takes the UTF-8 check)."""
        if fs.path is not None:
            parts = tuple(fs.path.split("."))
            if parts[0] == "parent":
                rest = parts[1:]
                if len(rest) == 1:
                    read = f"get_(parent, {rest!r})"
                    self.emit(2, f"v = parent.get({rest[0]!r}) if type(parent) is dict else {read}")
                else:
                    self.emit(2, f"v = get_(parent, {rest!r})")
            elif len(parts) == 1:
                self.emit(2, f"v = get({parts[0]!r})")
            else:
                self.emit(2, f"v = get_(record, {parts!r})")
            return None
        others = ("paths", "first_of", "template", "each", "concat", "exists")
        if fs.const is not None and all(getattr(fs, other) is None for other in others):
            self.emit(2, f"v = {self.bind('const', fs.const)}")
            return None if type(fs.const) is str and not fs.const.isascii() else known_of([fs.const])
        if fs.exists is not None:
            self.emit(2, 'v = "0"')
            self.emit(2, f"for item in get({fs.exists!r}) or ():")
            self.emit(3, f"if {self.test(fs.where)}:")
            self.emit(4, 'v = "1"')
            self.emit(4, "break")
            return known_of(["0", "1"])
        if fs.each is not None and fs.mapping is not None:
            self.items([(fs.each, fs.mapping, fs.where)])
            return ANY
        if fs.concat is not None:
            self.items([(part.each, part.mapping, part.where) for part in fs.concat])
            return ANY
        self.needs_ctx = True
        self.emit(2, f"v = {self.bind('src', self.cm._compile_source(fs))}(ctx)")
        return None

    def test(self, where: Mapping[str, Condition] | None) -> str:
        """``filter_matches(where, item)`` as an expression; an ``equals`` of one text or number
        is compared inline (the same answer as ``same``, which only differs across types)."""
        tests = []
        for column, condition in (where or {}).items():
            wanted = condition.values[0] if len(condition.values) == 1 else None
            if condition.op == "equals" and type(wanted) in (str, int):
                name = self.bind("wanted", wanted)
                kind = type(wanted).__name__
                tests.append(
                    f"((x := item.get({column!r})) == {name} or (type(x) is not {kind} and same(x, {name})))"
                )
            else:
                tests.append(f"{self.bind('test', condition)}.matches(item.get({column!r}))")
        return " and ".join(tests) or "True"

    def items(self, parts: list[tuple[str, str, Mapping[str, Condition] | None]]) -> None:
        """The engine's ``_list_getter`` inline: each part's matching child rows through its mapping."""
        self.emit(2, "v = []")
        self.emit(2, "problems = None")
        for child, mapping, where in parts:
            holder = self.bind("child", [None])
            self.emit(2, f"child = {holder}[0]")
            self.emit(2, "if child is None:")
            self.emit(3, f"child = {holder}[0] = resolve({mapping!r})")
            self.emit(2, "child_fn = child._compiled")
            self.emit(2, f"for item in get({child!r}) or ():")
            if where:
                self.emit(3, f"if not ({self.test(where)}):")
                self.emit(4, "continue")
            self.emit(3, "if type(item) is dict:  # what ``map`` would call, without its own call")
            self.emit(4, "result = child_fn(item, record, key, None)  # (value, errors) unless skipped")
            self.emit(4, "if type(result) is tuple:")
            self.emit(5, "value, errs = result")
            self.emit(4, "else:")
            self.emit(5, "value, errs = result.value, result.errors")
            self.emit(3, "else:")
            self.emit(4, "result = child.map(item, parent=record, record_key=key, validate=False)")
            self.emit(4, "value, errs = result.value, result.errors")
            self.emit(3, "if errs:")
            self.emit(4, "position = f'[{len(v)}]'")
            self.emit(4, "problems = problems or []")
            self.emit(4, "problems.extend(nest(err, position, 0) for err in errs)")
            self.emit(3, "v.append(value)")
        self.emit(2, "if problems:")
        self.emit(3, "raise ChildProblems(problems, v)")

    def ops_of(self, fs: FieldSpec) -> list[tuple[Any, ...]]:
        """The engine's ``_compile_steps`` in its order, each with the names it needs bound (once:
        ``render`` writes them twice, for a ``str`` and for anything else)."""
        ops: list[tuple[Any, ...]] = []
        if fs.map_values is not None:
            table = {str(k): v for k, v in fs.map_values.items()}
            reason = f"no entry in map_values (expected one of {sorted(table)})"
            ops.append(("map_values", self.bind("values", table), reason, known_of(table.values())))
        if fs.code is not None:
            ops.append(self.code_op(fs))
        if fs.default is not None:
            ops.append(("default", self.bind("default", fs.default), fs.default))
        if fs.format is not None:
            bound = None if fs.format in _FAST_FORMATS else self.bind("fmt", pipeline.FORMATS[fs.format])
            ops.append(("format", fs.format, bound))
        if fs.max_length is not None:
            ops.append(("max_length", fs.max_length, fs.on_overflow == "truncate"))
        if fs.required:
            ops.append(("required",))
        return ops

    def render(self, ops: list[tuple[Any, ...]], known: Known, finish: Finish) -> list[str]:
        """The lines of ``ops`` for a value of which ``known`` holds, ``finish`` (what holds at the
        end) after them. Knowing a ``str`` (stripped, not blank, of a bounded length) drops the
        type tests and the checks it already passes; a code table's hit continues knowing its
        values (checked here, at load time), its miss knowing nothing; so does the inline
        ``datetime`` format's match (a moment that exists), its other texts."""
        lines: list[str] = []
        for position, op in enumerate(ops):
            kind = op[0]
            if kind == "code" and op[1] == "plain" and known.text:
                return lines + self._code_branches(op, ops[position + 1 :], known, finish)
            if kind == "format" and op[1] == "datetime" and known.text:
                return lines + self._datetime_branches(ops[position + 1 :], finish)
            if kind == "map_values":
                step, known = self._map_values(op, known)
            elif kind == "code":
                step, known = self._code_any(op)
            elif kind == "default":
                step, known = self._default(op, known)
            elif kind == "format":
                step, known = self._format(op, known)
            elif kind == "max_length":
                step, known = self._max_length(op, known)
            else:
                step, known = self._required(known)
            lines += step
        return lines + finish(known)

    @staticmethod
    def _map_values(op: tuple[Any, ...], known: Known) -> tuple[list[str], Known]:
        _, table, reason, values = op
        if not known.text:
            return [
                f"if not {_empty('v')}:",
                f"    v = {table}.get(str(v), MISS)",
                "    if v is MISS:",
                f"        raise Problem({reason!r})",
            ], ANY
        body = [f"v = {table}.get(v, MISS)", "if v is MISS:", f"    raise Problem({reason!r})"]
        return _under(_blank_test(known), body), STR if values.text else ANY

    @staticmethod
    def _code_any(op: tuple[Any, ...]) -> tuple[list[str], Known]:
        if op[1] != "plain":
            return list(op[2]), ANY
        _, _, table, slow, _ = op
        return [  # a text key first: no emptiness test (blank keys are left out)
            f"found = {table}.get(v, MISS) if type(v) is str else MISS",
            "if found is not MISS:",
            "    v = found",
            f"elif not {_empty('v')}:",
            f"    found = {table}.get(str(v), MISS)",
            f"    v = {slow}(v, {_CONTEXT}) if found is MISS else found",
        ], ANY

    def _code_branches(
        self, op: tuple[Any, ...], rest: list[tuple[Any, ...]], known: Known, finish: Finish
    ) -> list[str]:
        """A plain table read with a ``str``: a hit goes on knowing the table's values, a miss
        (the engine's look-up, for a text that is not blank) knowing nothing."""
        _, _, table, slow, values = op
        hit = self.render(rest, values, finish)
        miss = self.render(rest, ANY, finish)
        lines = [f"found = {table}.get(v, MISS)", "if found is not MISS:", "    v = found"]
        lines += ["    " + line for line in hit]
        lines += ["else:"]
        lines += ["    " + line for line in _under(_blank_test(known), [f"v = {slow}(v, {_CONTEXT})"])]
        lines += ["    " + line for line in miss]
        return lines

    def _datetime_branches(self, rest: list[tuple[Any, ...]], finish: Finish) -> list[str]:
        """The ``datetime`` format of a ``str``: ``yyyy-mm-ddThh:mm:ss`` of a moment that exists
        becomes its digits (a wire date), any other text takes the engine's format."""
        lines = ["if local_datetime(v) is not None:"]
        lines.append('    v = v.replace("-", "").replace(":", "").replace(v[10], "")')
        lines += ["    " + line for line in self.render(rest, WIRE_DATE, finish)]
        lines += ["else:", "    v = fmt_datetime(v)"]
        lines += ["    " + line for line in self.render(rest, Known(True, True, False, None), finish)]
        return lines

    @staticmethod
    def _default(op: tuple[Any, ...], known: Known) -> tuple[list[str], Known]:
        _, name, value = op
        if not known.text:
            return [f"if {_empty('v')}: v = {name}"], ANY
        if known.not_blank:
            return [], known
        kept = Known(True, known.stripped, True, known.max_length)  # v when it was not blank
        return [f"if not {'v' if known.stripped else 'v.strip()'}: v = {name}"], known_of([value]).join(kept)

    @staticmethod
    def _format(op: tuple[Any, ...], known: Known) -> tuple[list[str], Known]:
        _, fmt, bound = op
        if fmt == "text" and known.text:
            if known.stripped:
                return [], known
            return ["v = v.strip()"], Known(True, True, known.not_blank, known.max_length)
        line = f"v = {_FAST_FORMATS[fmt]}" if bound is None else f"v = {bound}(v, None)"
        text = fmt in _TEXT_FORMATS
        return [line], Known(text, text and fmt in _STRIPPED_FORMATS, False, None)

    @staticmethod
    def _max_length(op: tuple[Any, ...], known: Known) -> tuple[list[str], Known]:
        _, limit, truncate = op
        if known.text and known.max_length is not None and known.max_length <= limit:
            return [], known
        bound = limit if known.text else None
        lines = [f"if len(v) > {limit}:" if known.text else f"if isinstance(v, str) and len(v) > {limit}:"]
        if not truncate:
            lines.append(f'    raise Problem(f"too long: {{len(v)}} characters, at most {limit}")')
            return lines, replace(known, max_length=bound) if known.text else ANY
        lines.append(f"    v = v[:{limit}]")
        # a cut may end in a blank; a stripped text that is not blank still starts with a letter
        return lines, Known(known.text, False, known.not_blank and known.stripped and limit >= 1, bound)

    @staticmethod
    def _required(known: Known) -> tuple[list[str], Known]:
        if not known.text:
            return [f"if {_empty('v')}: raise Problem('required but empty')"], ANY
        if known.not_blank:
            return [], known
        empty = "not v" if known.stripped else "not v.strip()"
        return [f"if {empty}: raise Problem('required but empty')"], known.checked()

    def code_op(self, fs: FieldSpec) -> tuple[Any, ...]:
        """A code table's look-up: a dict read for a plain table, a cache per (key, day) for a
        dated one read ``as_of`` a column; a miss (no entry, a skip, a default, a date that is not
        plain) is the engine's look-up, errors and all."""
        slow = self.bind("lookup", self.cm._code_step(fs))
        fast = self._fast_lookup(fs)
        if fast is not None:
            entries = {k: v for k, v in fast.items() if k.strip()}
            return ("code", "plain", self.bind("code", entries), slow, known_of(entries.values()))
        assert fs.code is not None
        if fs.reverse or fs.as_of is None or "." in fs.as_of or not self.cm._codes[fs.code].dated:
            self.needs_ctx = True
            return ("code", "other", [f"v = {slow}(v, ctx)"])
        cache = self.bind("dated", {})
        return (
            "code",
            "dated",
            [
                f"if not {_empty('v')}:",
                f"    w = get({fs.as_of!r})",
                "    day = (str(v), w[:10]) if type(w) is str and local_datetime(w) is not None else None",
                f"    found = {cache}.get(day, MISS) if day is not None else MISS",
                "    if found is MISS:",
                f"        v = {slow}(v, {_CONTEXT})",
                "        if day is not None:",
                f"            remember({cache}, day, v)",
                "    else:",
                "        v = found",
            ],
        )

    def _fast_lookup(self, fs: FieldSpec) -> dict[str, Any] | None:
        """Key → result for a plain table read forward without a date; misses take the slow path."""
        if fs.reverse or fs.as_of is not None or fs.code is None:
            return None
        table = _fast_table(self.cm, fs.code)
        if table is None:
            return None
        if fs.attr is None:
            return table
        attr = fs.attr
        return {k: v[attr] for k, v in table.items() if isinstance(v, Mapping) and attr in v}


def _fmt_datetime(value: Any) -> Any:
    """The engine's ``datetime`` format, without its parse-and-print round trip for the common
    ``yyyy-mm-ddThh:mm:ss`` text (still parsed, so an impossible date fails as there)."""
    if value is None:
        return ""
    reference = pipeline.fmt_datetime
    if type(value) is str and len(value) == 19 and value[10] in "T ":
        digits = value[0:4] + value[5:7] + value[8:10] + value[11:13] + value[14:16] + value[17:19]
        if (
            digits.isascii()
            and digits.isdigit()
            and value[4] == "-"
            and value[7] == "-"
            and value[13] == ":"
            and value[16] == ":"
        ):
            try:
                datetime.fromisoformat(value[:10] + "T" + value[11:])
            except ValueError:
                return reference(value, _NO_CTX)  # the engine's error
            return digits
    return reference(value, _NO_CTX)


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    """A dated look-up's result kept for its (key, day); the cache starts over when full."""
    if len(cache) >= _DATED_CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def source_of(cm: CompiledMapping) -> str:
    """The generated source text of a compiled mapping's function."""
    return _Builder(cm).build()


def compile_mapping(cm: CompiledMapping) -> MapFunction:
    """The spec's function: its code compiled once per spec hash, its names bound to ``cm``."""
    builder = _Builder(cm)
    text = builder.build()
    digest = spec_hash(cm)
    cached = _CACHE.get(digest)
    if cached is None or cached[0] != text:
        cached = (text, compile(text, f"<mapping {cm.spec.name} {digest[:12]}>", "exec"))
        _CACHE[digest] = cached

    def on_skip(fs: FieldSpec, name: str, key: str, exc: Any, record: Any, parent: Any) -> MapResult:
        ctx = pipeline.Context(record=record, parent=parent, record_key=key)
        shown = show(pipeline.raw_source(fs, ctx), personal=fs.personal)
        error = FieldError(key, name, pipeline.source_label(fs), shown, exc.reason)
        return pipeline.MapResult(record=key, errors=[error], skipped=exc.reason)

    def on_problem(
        fs: FieldSpec,
        name: str,
        key: str,
        exc: Any,
        record: Any,
        parent: Any,
        errors: list[FieldError],
        reported: set[tuple[str, str]] | None,
    ) -> set[tuple[str, str]]:
        if exc.value is not pipeline.MISSING:
            raw = exc.value
        else:
            raw = pipeline.raw_source(fs, pipeline.Context(record=record, parent=parent, record_key=key))
        seen = (fs.path or f"={name}", exc.reason)
        if reported is None:
            reported = set()
        elif seen in reported:
            return reported  # one bad column read by several fields is one problem
        reported.add(seen)
        errors.append(
            FieldError(
                record=key,
                field=name,
                source=pipeline.source_label(fs),
                value=show(raw, personal=fs.personal),
                reason=exc.reason,
            )
        )
        return reported

    def outside(key: str) -> MapResult:
        error = FieldError(key, "(record)", "", "", cm._outside)
        return pipeline.MapResult(record=key, errors=[error], skipped=cm._outside)

    namespace: dict[str, Any] = {
        **builder.names,
        "MISS": _MISS,
        "Problem": pipeline.Problem,
        "Skipped": pipeline.Skipped,
        "ChildProblems": pipeline.ChildProblems,
        "Context": pipeline.Context,
        "MapResult": pipeline.MapResult,
        "check_text": pipeline.check_text,
        "get_": pipeline.get_path,
        "prefix": pipeline.prefix,
        "nest": pipeline.nest,
        "same": same,
        "resolve": cm._resolve,
        "filter_matches": filter_matches,
        "fmt_datetime": _fmt_datetime,
        "local_datetime": _LOCAL_DATETIME,
        "wire_date_text": wire_date_text,
        "build_raw": builder.plan.builder() if builder.plan is not None else None,
        "remember": _remember,
        "where": cm._where,
        "model": cm.model,
        "key_of": cm._key_of,
        "validate_": cm._validate,
        "fast_validate": cm._fast.fast.validate_python if cm._fast is not None else None,
        "ValidationError": ValidationError,
        "on_skip": on_skip,
        "on_problem": on_problem,
        "outside": outside,
    }
    exec(cached[1], namespace)
    function: MapFunction = namespace[f"map_{cm.spec.name}"]
    return function
