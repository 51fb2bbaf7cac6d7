"""Load and check a mappings folder: every problem is reported with its file, line and key.

Checks happen at load time, never halfway through a sync: spec shapes (pydantic, extra keys
forbidden), then cross-references (code tables, child mappings, output models, attributes), then,
with ``require``, what the jobs need (``required.py``: a missing or empty spec is an error).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

import dvcsync.contract as contract

from ._yaml import LocatedDocument, YamlSyntaxError, load_located
from .codes import CodeTable
from .engine import CompiledMapping
from .errors import MappingSpecError
from .required import required_problems, why_needed
from .spec import CodeTableSpec, FieldSpec, MappingSpec

Problem = tuple[Path, int | None, str, str]


class MappingSet:
    """The compiled mappings of one folder, by name, with their code tables."""

    def __init__(
        self,
        folder: Path,
        specs: dict[str, MappingSpec],
        codes: dict[str, CodeTable],
        models: dict[str, type[BaseModel] | None],
    ) -> None:
        self.folder = folder
        self.specs = specs
        self.codes = codes
        self._models = models
        self._compiled: dict[str, CompiledMapping] = {}
        for name in specs:
            self.get(name)

    def get(self, name: str) -> CompiledMapping:
        compiled = self._compiled.get(name)
        if compiled is None:
            compiled = CompiledMapping(self.specs[name], self.codes, self._models[name], self.get)
            self._compiled[name] = compiled
        return compiled

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def names(self) -> list[str]:
        return sorted(self.specs)


def load_mappings(folder: str | Path, *, require: Iterable[str] = ()) -> MappingSet:
    """Load ``folder/*.yaml`` (mappings) and ``folder/codes/*.yaml`` (code tables), or raise
    ``MappingSpecError`` listing every problem found. ``require``: jobs (``required.JOBS``) whose
    specs must be there, complete; commands pass every job, a test may load a partial folder."""
    require = tuple(require)
    root = Path(folder)
    if not root.is_dir():
        raise MappingSpecError([(root, None, "", "mappings folder not found")])
    problems: list[Problem] = []
    code_docs = _load_docs(sorted((root / "codes").glob("*.yaml")), problems)
    # province.yaml is the province schema (dvcsync.province.schema), not a mapping spec
    spec_docs = _load_docs(sorted(p for p in root.glob("*.yaml") if p.name != "province.yaml"), problems)

    codes, code_specs = _code_tables(code_docs, problems)
    specs, spec_docs_by_name, invalid = _mapping_specs(spec_docs, require, problems)

    models: dict[str, type[BaseModel] | None] = {}
    for name, mspec in specs.items():
        doc = spec_docs_by_name[name]
        known = {**specs, **dict.fromkeys(invalid)}
        models[name] = _check_references(mspec, doc, known, code_specs, problems)
    if require:
        present = {doc.path for doc in (*spec_docs, *code_docs)}

        def line_of(name: str, loc: tuple[str, ...]) -> int | None:
            doc = spec_docs_by_name.get(name)
            return doc.line_of(loc) if doc is not None else None

        known_codes = {name: spec for name, (spec, _) in code_specs.items()}
        problems += required_problems(root, require, specs, known_codes, present, line_of)
    if problems:
        raise MappingSpecError(problems)
    return MappingSet(root, specs, codes, models)


def _code_tables(
    code_docs: list[LocatedDocument], problems: list[Problem]
) -> tuple[dict[str, CodeTable], dict[str, tuple[CodeTableSpec, LocatedDocument]]]:
    """The valid code tables (overlays linked to their bases), and their specs with their files."""
    codes: dict[str, CodeTable] = {}
    code_specs: dict[str, tuple[CodeTableSpec, LocatedDocument]] = {}
    for doc in code_docs:
        if _empty(doc, problems, None):
            continue
        spec = _validate(CodeTableSpec, doc, problems)
        if spec is None:
            continue
        _check_name(spec.name, doc, problems)
        _check_dated_entries(spec, doc, problems)
        code_specs[spec.name] = (spec, doc)
        codes[spec.name] = CodeTable(spec)
    _link_overlays(code_specs, codes, problems)
    return codes, code_specs


def _mapping_specs(
    spec_docs: list[LocatedDocument], require: tuple[str, ...], problems: list[Problem]
) -> tuple[dict[str, MappingSpec], dict[str, LocatedDocument], set[str]]:
    """The valid mapping specs by name, their files, and the names of the files that are not."""
    specs: dict[str, MappingSpec] = {}
    spec_docs_by_name: dict[str, LocatedDocument] = {}
    invalid: set[str] = set()
    for doc in spec_docs:
        if _empty(doc, problems, why_needed(doc.path.stem, require)):
            invalid.add(doc.path.stem)
            continue
        mspec = _validate(MappingSpec, doc, problems)
        if mspec is None:
            invalid.add(doc.path.stem)  # already reported; references to it are not new problems
            continue
        _check_name(mspec.name, doc, problems)
        if mspec.name in specs:
            problems.append(
                (doc.path, doc.line_of(("name",)), "name", f"mapping {mspec.name!r} defined twice")
            )
            continue
        specs[mspec.name] = mspec
        spec_docs_by_name[mspec.name] = doc
    return specs, spec_docs_by_name, invalid


def _empty(doc: LocatedDocument, problems: list[Problem], needed: str | None) -> bool:
    """An empty file (or comments only) said so, with what needs it, instead of three 'Field
    required' lines."""
    if doc.data not in ({}, None, ""):
        return False
    what = needed or (
        "a mapping spec needs name, output and fields"
        if doc.path.parent.name != "codes"
        else "a code table needs name and entries"
    )
    problems.append((doc.path, None, "", f"empty: {what}"))
    return True


def _load_docs(paths: Iterable[Path], problems: list[Problem]) -> list[LocatedDocument]:
    docs = []
    for path in paths:
        try:
            docs.append(load_located(path))
        except YamlSyntaxError as exc:
            problems.append((exc.path, exc.line, "", str(exc).split(": ", 1)[-1]))
    return docs


def _validate(model: type[Any], doc: LocatedDocument, problems: list[Problem]) -> Any:
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            raw_loc = tuple(error.get("loc", ()))
            loc = _strip_union_noise(raw_loc, doc)
            message = error.get("msg", "invalid").removeprefix("Value error, ")
            if error.get("type") == "missing" and raw_loc and isinstance(raw_loc[-1], str):
                # a required key that is not written: named (the line is its parent's)
                loc, message = (*loc, raw_loc[-1]), f"missing key {raw_loc[-1]!r} (required)"
            key = ".".join(str(part) for part in loc)
            if error.get("type") == "extra_forbidden":
                message = f"unknown key {loc[-1]!r}" if loc else "unknown key"
            problems.append((doc.path, doc.line_of(loc), key, message))
        return None


def _strip_union_noise(loc: tuple[Any, ...], doc: LocatedDocument) -> tuple[Any, ...]:
    """pydantic adds union member names (``list[DatedEntry]``, ``dict[...]``) to locations; drop
    the parts that are not keys of the document so the location reads like the YAML."""
    out: list[Any] = []
    node: Any = doc.data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            out.append(part)
            node = node[part]
        elif isinstance(part, str) and not isinstance(node, dict | list):
            continue
    return tuple(out)


def _check_name(name: str, doc: LocatedDocument, problems: list[Problem]) -> None:
    if doc.path.stem != name:
        problems.append(
            (
                doc.path,
                doc.line_of(("name",)),
                "name",
                f"name {name!r} differs from the file name {doc.path.stem!r}",
            )
        )


def _check_references(
    mspec: MappingSpec,
    doc: LocatedDocument,
    specs: dict[str, MappingSpec | None],
    code_specs: dict[str, tuple[CodeTableSpec, LocatedDocument]],
    problems: list[Problem],
) -> type[BaseModel] | None:
    model: type[BaseModel] | None = None
    if mspec.direction == "outbound":
        candidate = getattr(contract, mspec.output, None)
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            model = candidate
        else:
            problems.append(
                (doc.path, doc.line_of(("output",)), "output", f"{mspec.output!r} is not a contract model")
            )
    children = set(mspec.source.children) if mspec.source else None
    if mspec.items_of is not None:
        of = mspec.items_of
        if of.mapping not in specs:
            problems.append(
                (
                    doc.path,
                    doc.line_of(("items_of", "mapping")),
                    "items_of.mapping",
                    f"no mapping {of.mapping!r}",
                )
            )
        else:
            parent = specs[of.mapping]
            if parent is not None and (parent.source is None or of.child not in parent.source.children):
                problems.append(
                    (
                        doc.path,
                        doc.line_of(("items_of", "child")),
                        "items_of.child",
                        f"{of.child!r} is not a child of mapping {of.mapping!r}'s source",
                    )
                )
    for name, fs in mspec.fields.items():
        _check_field(fs, ("fields", name), doc, specs, code_specs, children, problems)
    if model is not None:
        known = set(model.model_fields)
        for name in mspec.fields:
            if name not in known and not mspec.allow_extra_fields:
                problems.append(
                    (
                        doc.path,
                        doc.line_of(("fields", name)),
                        f"fields.{name}",
                        f"{mspec.output} has no field {name!r}",
                    )
                )
    return model


def _check_field(
    fs: FieldSpec,
    base: tuple[Any, ...],
    doc: LocatedDocument,
    specs: dict[str, MappingSpec | None],
    code_specs: dict[str, tuple[CodeTableSpec, LocatedDocument]],
    children: set[str] | None,
    problems: list[Problem],
) -> None:
    """One field's references (code tables, attributes, mappings, child lists), its
    ``first_of`` alternatives' and ``concat`` parts' included."""
    label = ".".join(str(part) for part in base)
    if fs.code is not None:
        table = code_specs.get(fs.code)
        if table is None:
            problems.append(
                (
                    doc.path,
                    doc.line_of((*base, "code")),
                    f"{label}.code",
                    f"no code table {fs.code!r}",
                )
            )
        elif fs.attr is not None and not fs.reverse:
            overlay = next((t for t, _ in code_specs.values() if t.overlays == fs.code), None)
            _check_attr(table[0], fs.attr, doc, (*base, "attr"), f"{label}.attr", problems, overlay)
        if table is not None and fs.as_of is not None and not table[0].dated:
            problems.append(
                (
                    doc.path,
                    doc.line_of((*base, "as_of")),
                    f"{label}.as_of",
                    f"code table {fs.code!r} is not dated",
                )
            )
    if fs.mapping is not None and fs.mapping not in specs:
        problems.append(
            (
                doc.path,
                doc.line_of((*base, "mapping")),
                f"{label}.mapping",
                f"no mapping {fs.mapping!r}",
            )
        )
    for child_key, child in (("each", fs.each), ("exists", fs.exists)):
        if child is not None and children is not None and child not in children:
            problems.append(
                (
                    doc.path,
                    doc.line_of((*base, child_key)),
                    f"{label}.{child_key}",
                    f"{child!r} is not a child of the source (children: {sorted(children)})",
                )
            )
    for index, alternative in enumerate(fs.first_of or ()):
        _check_field(alternative, (*base, "first_of", index), doc, specs, code_specs, children, problems)
    for index, part in enumerate(fs.concat or ()):
        where = (*base, "concat", index)
        if part.mapping not in specs:
            problems.append(
                (
                    doc.path,
                    doc.line_of((*where, "mapping")),
                    f"{label}.concat.{index}.mapping",
                    f"no mapping {part.mapping!r}",
                )
            )
        if children is not None and part.each not in children:
            problems.append(
                (
                    doc.path,
                    doc.line_of((*where, "each")),
                    f"{label}.concat.{index}.each",
                    f"{part.each!r} is not a child of the source (children: {sorted(children)})",
                )
            )


def _check_attr(
    table: CodeTableSpec,
    attr: str,
    doc: LocatedDocument,
    loc: tuple[Any, ...],
    key: str,
    problems: list[Problem],
    overlay: CodeTableSpec | None = None,
) -> None:
    values = (
        [entry.value for entry in table.entries]
        if isinstance(table.entries, list)
        else list(table.entries.values())
    )
    if overlay is not None and isinstance(overlay.entries, dict):
        values += list(overlay.entries.values())
    missing = [v for v in values if not isinstance(v, dict) or attr not in v]
    if missing:
        problems.append(
            (doc.path, doc.line_of(loc), key, f"entries of code table {table.name!r} lack attribute {attr!r}")
        )


def _link_overlays(
    code_specs: dict[str, tuple[CodeTableSpec, LocatedDocument]],
    codes: dict[str, CodeTable],
    problems: list[Problem],
) -> None:
    """Each ``overlays: <table>`` makes every look-up of that table read the overlay first."""
    for name, (spec, doc) in code_specs.items():
        if spec.overlays is None:
            continue
        where = (doc.path, doc.line_of(("overlays",)), "overlays")
        base = code_specs.get(spec.overlays)
        if base is None:
            problems.append((*where, f"no code table {spec.overlays!r}"))
        elif spec.overlays == name or base[0].overlays is not None:
            problems.append((*where, f"{spec.overlays!r} is itself an overlay (or this table)"))
        elif base[0].dated:
            problems.append((*where, f"code table {spec.overlays!r} is dated: only a plain table takes one"))
        elif codes[spec.overlays].overlay is not None:
            problems.append((*where, f"code table {spec.overlays!r} has another overlay"))
        else:
            codes[spec.overlays].overlay = codes[name]


def _check_dated_entries(spec: CodeTableSpec, doc: LocatedDocument, problems: list[Problem]) -> None:
    if not isinstance(spec.entries, list):
        return
    keys: set[str] = set()
    for index, entry in enumerate(spec.entries):
        if entry.key in keys:
            problems.append(
                (
                    doc.path,
                    doc.line_of(("entries", index, "key")),
                    f"entries[{index}].key",
                    f"duplicate key {entry.key!r}",
                )
            )
        keys.add(entry.key)
    for index, entry in enumerate(spec.entries):
        if entry.successor is not None and entry.successor not in keys:
            problems.append(
                (
                    doc.path,
                    doc.line_of(("entries", index, "successor")),
                    f"entries[{index}].successor",
                    f"successor {entry.successor!r} is not in the table",
                )
            )
