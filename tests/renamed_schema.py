"""A deterministic renaming of every table and column of the sample one-stop schema (ids and
audit columns too), and of what describes it: the files ``dvcsync init`` writes (province.yaml
and the mapping specs; code tables hold values, not names, and are copied as they are).

``rename("ho_so") == "qos_oh"``: a name no code could know. Shared by the boundary's unit test
and the end-to-end run of every job on a renamed database."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import yaml

from dvcsync.province.sample.schema import DDL

ROOT = Path(__file__).resolve().parents[1]
IDENT = re.compile(r"\b[a-z][a-z0-9_]*\b")
SQL_WORDS = {
    "create", "table", "if", "not", "exists", "integer", "primary", "key", "text", "null", "unique",
    "references", "default", "index", "on", "collate",
}  # fmt: skip
TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)")


def sample_identifiers() -> set[str]:
    """Every table and column name of the sample DDL (comments left out)."""
    code = "\n".join(line.split("--")[0] for line in DDL.splitlines())
    code = re.sub(r"'[^']*'", "", code)
    return {w for w in IDENT.findall(code) if w not in SQL_WORDS and not w.startswith("ix_")}


def rename(name: str) -> str:
    return f"q{name[::-1]}"


def unrename(name: str) -> str:
    return name[1:][::-1]


def rename_if(name: str, names: set[str] | None = None) -> str:
    return rename(name) if name in (names if names is not None else sample_identifiers()) else name


def renamed_ddl() -> str:
    names = sample_identifiers()
    out = []
    for line in DDL.splitlines():
        code, _, _ = line.partition("--")
        out.append(IDENT.sub(lambda m: rename(m.group(0)) if m.group(0) in names else m.group(0), code))
    return "\n".join(out)


def sample_tables() -> list[str]:
    return TABLE.findall(DDL)


def rename_database(path: Path) -> None:
    """Rename every sample table and column of an existing SQLite file in place (its data,
    indexes and references follow)."""
    with sqlite3.connect(path) as conn:
        for table in sample_tables():
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            for column in columns:
                conn.execute(f"ALTER TABLE {table} RENAME COLUMN {column} TO {rename(column)}")
            conn.execute(f"ALTER TABLE {table} RENAME TO {rename(table)}")


# ---------------------------------------------------------------- province.yaml


def renamed_schema_file(folder: Path, source: Path | None = None) -> Path:
    """``folder/province.yaml``: the shipped one with every table and column renamed (the values
    of the withdrawal step and the rating levels are data, kept)."""
    names = sample_identifiers()
    shipped = source or ROOT / "mappings" / "province.yaml"
    data: Any = yaml.safe_load(shipped.read_text(encoding="utf-8"))

    def walk(node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            # values of the withdrawal step are data; its keys are columns
            return {
                (rename(k) if key == "withdrawal" and k in names else k): walk(v, k) for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        if isinstance(node, str) and key not in ("withdrawal", "levels") and node in names:
            return rename(node)
        return node

    path = folder / "province.yaml"
    path.write_text(yaml.safe_dump(walk(data), allow_unicode=True), encoding="utf-8")
    return path


# ---------------------------------------------------------------- mapping specs


class _SpecRenamer:
    """Renames the names of a mapping spec that are the province's tables and columns, and
    nothing else: contract fields, code tables and their attributes, child-list aliases, mapping
    names and every value (constants, defaults, filter values) stay."""

    def __init__(self) -> None:
        self.names = sample_identifiers()

    def name(self, value: Any) -> Any:
        return rename(value) if isinstance(value, str) and value in self.names else value

    def dotted(self, value: str) -> str:
        return ".".join(self.name(part) for part in value.split("."))

    def template(self, value: str) -> str:
        return re.sub(r"\{([^{}!:]+)", lambda m: "{" + self.dotted(m.group(1)), value)

    def row_filter(self, node: dict[str, Any]) -> dict[str, Any]:
        return {self.name(k): v for k, v in node.items()}

    def field(self, node: dict[str, Any]) -> dict[str, Any]:
        out = dict(node)
        for key in ("path", "as_of"):
            if isinstance(out.get(key), str):
                out[key] = self.dotted(out[key])
        if out.get("paths"):
            out["paths"] = [self.dotted(p) for p in out["paths"]]
        if isinstance(out.get("template"), str):
            out["template"] = self.template(out["template"])
        if isinstance(out.get("where"), dict):
            out["where"] = self.row_filter(out["where"])
        if out.get("first_of"):
            out["first_of"] = [self.field(f) for f in out["first_of"]]
        if out.get("concat"):
            out["concat"] = [
                {**part, **({"where": self.row_filter(part["where"])} if part.get("where") else {})}
                for part in out["concat"]
            ]
        return out

    def source(self, node: dict[str, Any]) -> dict[str, Any]:
        out = {
            k: self.name(v) if k in ("table", "key", "record_key", "updated_at") else v
            for k, v in node.items()
        }
        if isinstance(out.get("where"), dict):
            out["where"] = self.row_filter(out["where"])
        children = {}
        for alias, child in (out.get("children") or {}).items():
            renamed = {
                k: self.name(v) if k in ("table", "key", "foreign_key") else v for k, v in child.items()
            }
            renamed["order_by"] = [self.name(c) for c in child.get("order_by", [])]
            if isinstance(child.get("where"), dict):
                renamed["where"] = self.row_filter(child["where"])
            children[alias] = renamed
        if children:
            out["children"] = children
        return out

    def spec(self, node: dict[str, Any]) -> dict[str, Any]:
        out = dict(node)
        for key in ("output", "record_key"):
            if key in out:
                out[key] = self.name(out[key])
        if isinstance(out.get("applies_to"), dict):
            out["applies_to"] = {**out["applies_to"], "column": self.name(out["applies_to"]["column"])}
        if isinstance(out.get("source"), dict):
            out["source"] = self.source(out["source"])
        out["fields"] = {self.name(k): self.field(v) for k, v in (out.get("fields") or {}).items()}
        return out


def renamed_mappings(shipped: Path, folder: Path) -> Path:
    """``folder``: the files ``dvcsync init`` writes from ``shipped`` (every ``*.yaml``), with the
    province's tables and columns renamed in province.yaml and the specs; code tables as they are.
    ``folder`` may be ``shipped`` (rewritten in place)."""
    renamer = _SpecRenamer()
    for path in sorted(shipped.rglob("*.yaml")):
        target = folder / path.relative_to(shipped)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.name == "province.yaml":
            renamed_schema_file(target.parent, path)
        elif path.parent.name == "codes":
            if target.resolve() != path.resolve():  # in place: the file stays as it is
                shutil.copyfile(path, target)
        else:
            spec = yaml.safe_load(path.read_text(encoding="utf-8"))
            target.write_text(yaml.safe_dump(renamer.spec(spec), allow_unicode=True), encoding="utf-8")
    return folder


def original_rows(path: Path, renamed: bool) -> dict[str, list[dict[str, Any]]]:
    """Every row of every sample table, under the sample's names (a renamed file's mapped back),
    ordered by the id."""
    out: dict[str, list[dict[str, Any]]] = {}
    with sqlite3.connect(path) as conn:
        for table in sample_tables():
            stored = rename(table) if renamed else table
            cursor = conn.execute(f"SELECT * FROM {stored} ORDER BY {rename('id') if renamed else 'id'}")
            columns = [unrename(d[0]) if renamed else d[0] for d in cursor.description]
            out[table] = [dict(zip(columns, row, strict=True)) for row in cursor]
    return out


__all__ = [
    "ROOT",
    "original_rows",
    "rename",
    "rename_database",
    "rename_if",
    "renamed_ddl",
    "renamed_mappings",
    "renamed_schema_file",
    "sample_identifiers",
    "sample_tables",
    "unrename",
]
