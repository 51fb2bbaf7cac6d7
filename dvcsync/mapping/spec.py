"""The mapping-spec format: pydantic models that reject anything unknown at load time.

A spec says how one provincial record becomes one contract record (or, inbound, one provincial
row). Every field takes its value from exactly one *source* (``path``, ``paths``, ``first_of``,
``const``, ``template``, ``each``, ``concat``, ``exists``) and then goes through optional
transforms (``code``, ``map_values``, ``format``, ``default``, ``max_length``) and checks
(``required``). Row tests (``where``, ``applies_to``) are the language of ``dvcsync.source_spec``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from string import Formatter
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, model_validator

from dvcsync.source_spec import Condition, Identifier, RowFilter, SourceSpec, condition_from

DottedPath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")]
Scalar = str | int | bool | None

Format = Literal[
    "text",  # str(value), stripped
    "datetime",  # ISO 8601 local (province) → yyyyMMddHHmmss (wire)
    "wire_datetime",  # yyyyMMddHHmmss (wire) → ISO 8601 local (province)
    "int",  # whole number
    "amount",  # whole VND as text
    "bit",  # truthy → "1", falsy → "0"
    "flag",  # truthy → "True", falsy → "False"
    "ascii",  # strip diacritics (payment texts must be plain ASCII)
    "upper",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SOURCES = ("path", "paths", "first_of", "const", "template", "each", "concat", "exists")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def template_fields(template: str) -> list[tuple[str, str | None, str, str | None]]:
    """A template's pieces (literal text, placeholder path, format spec, conversion), or
    ValueError saying what is wrong with it: placeholders are column paths (``{number}``,
    ``{parent.number}``, ``{DiaChi.MaTinh}``), never positions, indexes or nested fields."""
    try:
        pieces = list(Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r}: {exc}") from None
    out: list[tuple[str, str | None, str, str | None]] = []
    for literal, name, spec, conversion in pieces:
        if name is not None:
            if not _DOTTED.fullmatch(name):
                raise ValueError(f"template placeholder {{{name}}} must be a column path")
            if spec and "{" in spec:
                raise ValueError(f"template placeholder {{{name}}}: nested placeholders are not supported")
        out.append((literal, name, spec or "", conversion))
    return out


class ListPart(_Strict):
    """One part of a ``concat`` list: a child list through a mapping, optionally filtered."""

    each: Identifier = Field(description="child list")
    mapping: Identifier = Field(description="mapping applied to each of its (matching) items")
    where: RowFilter | None = Field(default=None, description="only the items passing these tests")


class FieldSpec(_Strict):
    """How one output field is made."""

    # --- sources (exactly one)
    path: DottedPath | None = Field(default=None, description="column, child.column or parent.column")
    paths: list[DottedPath] | None = Field(default=None, description="first non-empty of these")
    first_of: list[FieldSpec] | None = Field(
        default=None,
        min_length=1,
        description="alternatives, each with its own source and transforms: the first that gives a"
        " value without failing (e.g. a sub-status through its code table, else the status)",
    )
    const: Scalar = Field(default=None, description="a constant value")
    template: str | None = Field(default=None, description="Python format string over the record")
    each: Identifier | None = Field(default=None, description="child list to map item by item")
    concat: list[ListPart] | None = Field(
        default=None,
        min_length=1,
        description="one list from several parts, in order: several child lists, or one child list"
        " through several mappings (one row → several items)",
    )
    exists: Identifier | None = Field(default=None, description="child list: '1' if any item matches")
    # --- for each / exists
    mapping: Identifier | None = Field(default=None, description="mapping applied to each child item")
    where: RowFilter | None = Field(default=None, description="only the child items passing these tests")
    # --- transforms
    code: Identifier | None = Field(default=None, description="code table (mappings/codes/<name>.yaml)")
    attr: Identifier | None = Field(default=None, description="attribute of an object-valued code entry")
    reverse: bool = Field(default=False, description="look the code table up from value to key")
    as_of: DottedPath | None = Field(default=None, description="date path for dated code tables")
    map_values: dict[str, Scalar] | None = Field(default=None, description="inline code table")
    format: Format | None = None
    default: Scalar = None
    max_length: int | None = Field(default=None, gt=0)
    on_overflow: Literal["error", "truncate"] = "error"
    # --- checks and handling
    required: bool = False
    personal: bool = Field(default=False, description="personal data: masked in errors and logs")
    omit_empty: bool = Field(default=False, description="leave the field out when empty")

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        sources = [name for name in SOURCES if getattr(self, name) is not None]
        if len(sources) != 1:
            found = ", ".join(sources) or "none"
            raise ValueError(f"a field needs exactly one of {', '.join(SOURCES)} (found: {found})")
        for index, alternative in enumerate(self.first_of or ()):
            nested = [name for name in ("each", "concat", "exists", "first_of") if getattr(alternative, name)]
            if nested:
                raise ValueError(f"first_of[{index}]: an alternative gives one value, not '{nested[0]}'")
        if self.each is not None and self.mapping is None:
            raise ValueError("'each' needs 'mapping': the mapping applied to every child item")
        if self.mapping is not None and self.each is None:
            raise ValueError("'mapping' only goes with 'each'")
        if self.where is not None and self.each is None and self.exists is None:
            raise ValueError("'where' only goes with 'each' or 'exists'")
        if (self.attr or self.as_of or self.reverse) and self.code is None:
            raise ValueError("'attr', 'as_of' and 'reverse' only go with 'code'")
        if self.code is not None and self.map_values is not None:
            raise ValueError("use either 'code' or 'map_values', not both")
        if self.template is not None:
            template_fields(self.template)
        return self


class ItemsOf(_Strict):
    """This mapping applies to each item of a child list of another mapping's records."""

    mapping: Identifier
    child: Identifier


class AppliesTo(_Strict):
    """This mapping takes, instead of the default one, the records of the same source whose
    ``column`` passes one test: ``filled`` (not null, not blank) when none is written, else one
    of ``equals``, ``in``, ``not``, ``not_in``, ``not_null``, ``filled`` (e.g. OpenCPS marks
    portal-submitted dossiers by ``{column: systemId, equals: 5}``)."""

    column: Identifier
    equals: Scalar = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    not_: Scalar = Field(default=None, alias="not")
    not_in: list[Scalar] | None = None
    not_null: bool | None = None
    filled: bool | None = None
    _test: Condition = PrivateAttr()

    @model_validator(mode="after")
    def _one_test(self) -> AppliesTo:
        given = sorted(name for name in self.model_fields_set if name != "column")
        if len(given) > 1:
            shown = [name.rstrip("_") for name in given]
            raise ValueError(f"applies_to takes one test, not {shown}")
        self._test = (
            condition_from(given[0].rstrip("_"), getattr(self, given[0]))
            if given
            else condition_from("filled", True)
        )
        return self

    @property
    def test(self) -> Condition:
        return self._test

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether this mapping takes ``record`` (a row of the source) instead of the default one."""
        return self._test.matches(record.get(self.column))

    def describe(self) -> str:
        return f"{self.column} {self._test.describe()}"


class MappingSpec(_Strict):
    """One spec file: ``mappings/<name>.yaml``."""

    name: Identifier
    description: str = ""
    direction: Literal["outbound", "inbound"] = "outbound"
    output: str = Field(description="contract model (outbound) or province table (inbound)")
    source: SourceSpec | None = Field(default=None, description="only for top-level outbound mappings")
    items_of: ItemsOf | None = Field(
        default=None, description="applied to each item of another mapping's child list (e.g. steps)"
    )
    record_key: str | None = Field(
        default=None, description="field that names a record in errors (defaults to the source's)"
    )
    applies_to: AppliesTo | None = Field(
        default=None, description="records (of the same source) this mapping takes instead of the default one"
    )
    allow_extra_fields: bool = Field(
        default=False, description="allow output fields the contract model does not declare"
    )
    fields: dict[str, FieldSpec]

    @model_validator(mode="after")
    def _fields_present(self) -> MappingSpec:
        if not self.fields:
            raise ValueError("a mapping needs at least one field")
        if self.source is not None and self.items_of is not None:
            raise ValueError("a mapping reads either its own 'source' or 'items_of' another, not both")
        return self


# ---------------------------------------------------------------- code tables


class DatedEntry(_Strict):
    key: str
    value: Scalar | dict[str, Scalar]
    valid_from: date | None = None
    valid_to: date | None = None
    successor: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> DatedEntry:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is before valid_from {self.valid_from}")
        return self


class SkipEntry(_Strict):
    """A key whose records are not sent at all, and why (e.g. a local procedure with no national
    equivalent), with who decided it and when."""

    reason: str = Field(min_length=1)
    decided_by: str | None = None
    decided_at: str | None = None


class CodeTableSpec(_Strict):
    """``mappings/codes/<name>.yaml``: a key → value table, optionally dated with successors.

    ``overlays: <table>`` makes this table a layer over another one: every look-up of that table
    reads this one first (its ``entries`` replace the other's, its ``skip`` keys are not sent),
    so decisions can be kept apart from a generated table (``dvcsync catalogue apply``)."""

    name: Identifier
    description: str = ""
    dated: bool = False
    entries: dict[str, Scalar | dict[str, Scalar]] | list[DatedEntry]
    default: Scalar | dict[str, Scalar] = None
    overlays: Identifier | None = None
    skip: dict[str, SkipEntry] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _stringify_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("entries"), dict):
            data = {**data, "entries": {str(k): v for k, v in data["entries"].items()}}
        if isinstance(data, dict) and isinstance(data.get("skip"), dict):
            data = {**data, "skip": {str(k): v for k, v in data["skip"].items()}}
        return data

    @model_validator(mode="after")
    def _shape(self) -> CodeTableSpec:
        if self.dated != isinstance(self.entries, list):
            raise ValueError("a dated table lists its entries (- key: ...); a plain table maps key: value")
        if self.overlays is not None and self.dated:
            raise ValueError("an overlay is a plain table (key: value)")
        if self.skip and self.overlays is None:
            raise ValueError("'skip' only goes with 'overlays'")
        both = sorted(set(self.skip) & set(self.entries if isinstance(self.entries, dict) else ()))
        if both:
            raise ValueError(f"keys both in entries and skip: {', '.join(both)}")
        return self
