"""``dvcsync mappings check``: run every mapping over the configured source and count failures.

The point is a table a person can act on: which field fails, how often, for which records and
values (personal data masked), before the first sync ever runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from adapter.mapping import FieldError, MappingSet
from adapter.province.source import SqlSource, make_engine

ProgressFn = Callable[[int, int], None]


@dataclass
class FieldFailure:
    mapping: str
    field: str
    source: str
    count: int = 0
    examples: list[FieldError] = dc_field(default_factory=list)


@dataclass
class CheckReport:
    records: dict[str, int] = dc_field(default_factory=dict)  # mapping → records mapped
    failed: dict[str, int] = dc_field(default_factory=dict)  # mapping → records that failed
    failures: dict[tuple[str, str], FieldFailure] = dc_field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.failed.values())

    def add(self, mapping: str, errors: list[FieldError]) -> None:
        self.records[mapping] = self.records.get(mapping, 0) + 1
        if not errors:
            return
        self.failed[mapping] = self.failed.get(mapping, 0) + 1
        for error in errors:
            generic = _generic_field(error.field)
            entry = self.failures.setdefault(
                (mapping, generic), FieldFailure(mapping=mapping, field=generic, source=error.source)
            )
            entry.count += 1
            if len(entry.examples) < 3:
                entry.examples.append(error)

    def rows(self) -> list[FieldFailure]:
        return sorted(self.failures.values(), key=lambda f: (-f.count, f.mapping, f.field))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "failed": self.failed,
            "failures": [
                {
                    "mapping": f.mapping,
                    "field": f.field,
                    "source": f.source,
                    "count": f.count,
                    "examples": [e.as_dict() for e in f.examples],
                }
                for f in self.rows()
            ],
        }


def _generic_field(name: str) -> str:
    """``DanhSachLePhi[3].Gia`` → ``DanhSachLePhi[].Gia``: failures group by field, not position."""
    out, depth = [], 0
    for ch in name:
        if ch == "[":
            depth += 1
            out.append("[]")
        elif ch == "]":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def check_mappings(
    mappings: MappingSet,
    source_url: str,
    *,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    page_size: int = 500,
) -> CheckReport:
    report = CheckReport()
    engine = make_engine(source_url)
    try:
        for name in mappings.names():
            spec = mappings.specs[name]
            if spec.source is None:
                continue
            top = mappings.get(name)
            children = [
                (child_name, mappings.get(child_name), child_spec.items_of.child)
                for child_name, child_spec in mappings.specs.items()
                if child_spec.items_of is not None and child_spec.items_of.mapping == name
            ]
            source = SqlSource(engine, spec.source)
            total = source.count() if limit is None else min(limit, source.count())
            done = 0
            for page in source.iter_pages(page_size):
                for record in page:
                    if limit is not None and done >= limit:
                        break
                    result = top.map(record)
                    report.add(name, result.errors)
                    for child_name, child, list_name in children:
                        for item in record.get(list_name) or []:
                            item_result = child.map(item, parent=record, record_key=result.record)
                            report.add(child_name, item_result.errors)
                    done += 1
                if progress is not None:
                    progress(done, total)
                if limit is not None and done >= limit:
                    break
    finally:
        engine.dispose()
    return report
