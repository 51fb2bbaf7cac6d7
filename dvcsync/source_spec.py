"""Where a mapping's records come from in the province's database: a table, its key, its
change-tracking column, its child tables and which of its rows are records at all (``where``).

Shared by ``dvcsync.mapping`` (specs declare it) and ``dvcsync.province`` (the source reads by
it), which must not depend on each other: it sits below both, like ``dvcsync.contract``.

Nothing here defaults to a table or column name of the sample schema: a spec written for another
schema that forgets a key fails at load time naming it, not at SQL time with ``no such column``.

Row conditions (``where`` of a source, of ``each``/``exists``, and ``applies_to``) are one small
declarative language: a column and a test, written in YAML, compiled to SQL with bound
parameters only (``RowFilter.sql``) and checked on a row in Python (``RowFilter.matches``) with
the same meaning, NULL included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Scalar = str | int | bool | None

Op = Literal["equals", "in", "not", "not_in", "not_null", "filled"]
OPS: tuple[str, ...] = ("equals", "in", "not", "not_in", "not_null", "filled")
_LIST_OPS = frozenset({"in", "not_in"})
_FLAG_OPS = frozenset({"not_null", "filled"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _norm(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def same(value: Any, wanted: Any) -> bool:
    """Equality as a database compares a column with a parameter: ``5`` and ``"5"`` are the same,
    ``true`` is ``1``; NULL is never equal to anything (callers test it apart)."""
    if value is None or wanted is None:
        return False
    a, b = _norm(value), _norm(wanted)
    return bool(a == b) or str(a) == str(b)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


class Condition(_Strict):
    """One column's test. Written in YAML as ``value`` (equals), ``[a, b]`` (in) or
    ``{equals|in|not|not_in|not_null|filled: ...}``; NULL never matches ``not``/``not_in`` (as
    in SQL) and matches ``equals: null`` or a ``null`` in an ``in`` list."""

    op: Op
    values: tuple[Scalar, ...] = ()
    flag: bool = True  # not_null / filled: true, or their negation (is null / is blank)

    def matches(self, value: Any) -> bool:
        op, values = self.op, self.values
        if op == "not_null":
            return (value is not None) == self.flag
        if op == "filled":
            return (not _blank(value)) == self.flag
        if op in ("equals", "in"):
            if value is None:
                return None in values
            return any(same(value, wanted) for wanted in values)
        # not / not_in
        return value is not None and not any(same(value, wanted) for wanted in values if wanted is not None)

    def sql(self, column: str, bind: Callable[[Any], str]) -> str:
        """This test as SQL over ``column`` (already quoted); ``bind(value)`` names a parameter."""
        op = self.op
        if op == "not_null":
            return f"{column} IS NOT NULL" if self.flag else f"{column} IS NULL"
        if op == "filled":
            # VARCHAR with a length: MariaDB casts to no bare VARCHAR (PostgreSQL, SQLite: either)
            filled = f"({column} IS NOT NULL AND TRIM(CAST({column} AS VARCHAR(4000))) <> '')"
            return filled if self.flag else f"NOT {filled}"
        present = [v for v in self.values if v is not None]
        has_null = len(present) != len(self.values)
        names = ", ".join(bind(v) for v in present)
        if op in ("equals", "in"):
            parts = []
            if present:
                parts.append(f"{column} = {names}" if len(present) == 1 else f"{column} IN ({names})")
            if has_null:
                parts.append(f"{column} IS NULL")
            return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
        if not present:
            return f"{column} IS NOT NULL"
        return f"{column} <> {names}" if len(present) == 1 else f"{column} NOT IN ({names})"

    def describe(self) -> str:
        """The test as a person reads it (error messages, ``mappings check``)."""
        if self.op in _FLAG_OPS:
            word = "not null" if self.op == "not_null" else "filled"
            return word if self.flag else f"not {word}"
        shown = ", ".join("null" if v is None else repr(v) for v in self.values)
        return {
            "equals": f"= {shown}",
            "in": f"in ({shown})",
            "not": f"!= {shown}",
            "not_in": f"not in ({shown})",
        }[self.op]


def _scalar_ok(value: Any) -> bool:
    return value is None or isinstance(value, str | int | bool)


def condition_from(op: str, value: Any) -> Condition:
    """``op: value`` as written in a spec → a Condition, or ValueError saying what is wrong."""
    if op not in OPS:
        raise ValueError(f"unknown test {op!r} (one of: {', '.join(OPS)})")
    if op in _FLAG_OPS:
        if not isinstance(value, bool):
            raise ValueError(f"'{op}' takes true or false, not {value!r}")
        return Condition(op=op, flag=value)
    if op in _LIST_OPS:
        if not isinstance(value, list) or not value:
            raise ValueError(f"'{op}' takes a non-empty list of values, not {value!r}")
        bad = [v for v in value if not _scalar_ok(v)]
        if bad:
            raise ValueError(f"'{op}' values must be text, numbers, true/false or null, not {bad[0]!r}")
        return Condition(op=op, values=tuple(value))
    if not _scalar_ok(value):
        raise ValueError(f"'{op}' takes one value (text, number, true/false or null), not {value!r}")
    return Condition(op=op, values=(value,))


def _parse_condition(raw: Any) -> Any:
    if isinstance(raw, Condition):
        return raw
    if isinstance(raw, dict):
        if len(raw) != 1:
            raise ValueError(f"a test is one of {', '.join(OPS)}, not {sorted(raw) or 'nothing'}")
        [(op, value)] = raw.items()
        return condition_from(str(op), value)
    if isinstance(raw, list):
        return condition_from("in", raw)
    return condition_from("equals", raw)


_SCALAR_SCHEMA: dict[str, Any] = {"type": ["string", "integer", "boolean", "null"]}
_LIST_SCHEMA: dict[str, Any] = {"type": "array", "items": _SCALAR_SCHEMA, "minItems": 1}
_CONDITION_SCHEMA: dict[str, Any] = {
    "description": "value (equals), [values] (in), or one of {equals, in, not, not_in, not_null, filled}",
    "anyOf": [
        _SCALAR_SCHEMA,
        _LIST_SCHEMA,
        {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
            "properties": {
                "equals": _SCALAR_SCHEMA,
                "in": _LIST_SCHEMA,
                "not": _SCALAR_SCHEMA,
                "not_in": _LIST_SCHEMA,
                "not_null": {"type": "boolean"},
                "filled": {"type": "boolean"},
            },
        },
    ],
}

ConditionIn = Annotated[Condition, BeforeValidator(_parse_condition), WithJsonSchema(_CONDITION_SCHEMA)]
RowFilter = dict[Identifier, ConditionIn]
"""Column → test; a row matches when every test holds (AND)."""


def filter_matches(where: Mapping[str, Condition] | None, row: Mapping[str, Any]) -> bool:
    """Whether ``row`` satisfies every test of ``where`` (no filter: every row does)."""
    if not where:
        return True
    return all(test.matches(row.get(column)) for column, test in where.items())


def filter_sql(
    where: Mapping[str, Condition] | None, quote: Callable[[str], str], prefix: str = "_where"
) -> tuple[str, dict[str, Any]]:
    """``where`` as one SQL condition and its bound parameters (``:<prefix>0``, ...): values are
    never written into the SQL. ``("", {})`` without a filter. ``quote`` quotes a column name
    (the dialect's identifier preparer)."""
    if not where:
        return "", {}
    params: dict[str, Any] = {}

    def bind(value: Any) -> str:
        name = f"{prefix}{len(params)}"
        params[name] = value
        return f":{name}"

    parts = [test.sql(quote(column), bind) for column, test in where.items()]
    return "(" + " AND ".join(parts) + ")", params


def describe_filter(where: Mapping[str, Condition] | None) -> str:
    return " and ".join(f"{column} {test.describe()}" for column, test in (where or {}).items())


class ChildSpec(_Strict):
    """A child table read with its parent: ``<table>.<foreign_key> = parent.<source key>``,
    ordered by ``foreign_key`` then ``order_by``. Every name is required (no sample defaults)."""

    table: Identifier
    key: Identifier = Field(description="the child row's identity column (e.g. a step's id)")
    foreign_key: Identifier = Field(description="the child's column holding the parent's key")
    order_by: list[Identifier] = Field(min_length=1, description="the children's order (e.g. a step number)")


class SourceSpec(_Strict):
    """Where the records come from in the province's database."""

    table: Identifier
    key: Identifier = Field(description="the table's primary key column (keyset paging, children)")
    record_key: Identifier = Field(description="column that names the record in errors (the local number)")
    updated_at: Identifier | None = Field(default=None, description="change-tracking column")
    where: RowFilter | None = Field(
        default=None,
        description="only rows matching these tests are records (e.g. drafts left out); applied to"
        " every read: pages, changes, get by key, count",
    )
    children: dict[Identifier, ChildSpec] = Field(default_factory=dict)

    def takes(self, row: Mapping[str, Any]) -> bool:
        """Whether a row of the table is one of this source's records (its ``where``)."""
        return filter_matches(self.where, row)

    def where_sql(self, quote: Callable[[str], str], prefix: str = "_where") -> tuple[str, dict[str, Any]]:
        """The ``where`` as SQL with bound parameters, for every query of the table (see filter_sql)."""
        return filter_sql(self.where, quote, prefix)


__all__ = [
    "OPS",
    "ChildSpec",
    "Condition",
    "ConditionIn",
    "Identifier",
    "RowFilter",
    "Scalar",
    "SourceSpec",
    "condition_from",
    "describe_filter",
    "filter_matches",
    "filter_sql",
    "same",
]
