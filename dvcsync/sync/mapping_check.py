"""``dvcsync mappings check``: run every mapping over the configured source and count failures.

The point is a table a person can act on: which field fails, how often, for which records and
values (personal data masked), before the first sync ever runs.

Every spec is run the way its job runs it: a source's records through its mapping, those an
``applies_to`` takes through that one instead (as the push does), steps through ``items_of``,
child lists inside their parent, the portal-submitted dossier mapping (inbound) over the
dossiers as the portal would list them (a round trip: reverse code look-ups, required fields).
Records left out on purpose (a code table's ``skip``, a source's ``where``) are counted apart
from failures; a spec with nothing to run over says why (``coverage``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from dvcsync.contract import HoSoCongDVC
from dvcsync.mapping import CompiledMapping, FieldError, MappingSet
from dvcsync.mapping.engine import MapResult
from dvcsync.mapping.required import DOSSIER, INBOUND_DOSSIER
from dvcsync.province.source import SqlSource, make_engine

ProgressFn = Callable[[int, int], None]


@dataclass
class FieldFailure:
    mapping: str
    field: str
    source: str
    count: int = 0
    examples: list[FieldError] = dc_field(default_factory=list)


@dataclass
class SkipGroup:
    """Records a mapping leaves out on purpose, for one reason."""

    mapping: str
    reason: str
    count: int = 0
    examples: list[str] = dc_field(default_factory=list)  # record keys


@dataclass
class CheckReport:
    records: dict[str, int] = dc_field(default_factory=dict)  # mapping → records mapped
    failed: dict[str, int] = dc_field(default_factory=dict)  # mapping → records that failed
    failures: dict[tuple[str, str], FieldFailure] = dc_field(default_factory=dict)
    skipped: dict[str, int] = dc_field(default_factory=dict)  # mapping → records left out on purpose
    skips: dict[tuple[str, str], SkipGroup] = dc_field(default_factory=dict)
    coverage: dict[str, str] = dc_field(default_factory=dict)  # mapping → how it was run, or why not

    @property
    def ok(self) -> bool:
        return not any(self.failed.values())

    def add_result(self, mapping: str, result: MapResult) -> None:
        """One record's result: mapped, failed, or left out on purpose (not a failure)."""
        if result.skipped is None:
            self.add(mapping, result.errors)
            return
        self.records[mapping] = self.records.get(mapping, 0) + 1
        self.skipped[mapping] = self.skipped.get(mapping, 0) + 1
        group = self.skips.setdefault((mapping, result.skipped), SkipGroup(mapping, result.skipped))
        group.count += 1
        if len(group.examples) < 3:
            group.examples.append(result.record)

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

    def skip_rows(self) -> list[SkipGroup]:
        return sorted(self.skips.values(), key=lambda s: (-s.count, s.mapping, s.reason))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "failed": self.failed,
            "skipped": self.skipped,
            "skips": [
                {"mapping": s.mapping, "reason": s.reason, "count": s.count, "examples": s.examples}
                for s in self.skip_rows()
            ],
            "coverage": dict(sorted(self.coverage.items())),
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
    specs = mappings.specs
    engine = make_engine(source_url)
    try:
        for name in mappings.names():
            spec = specs[name]
            if spec.source is None or spec.direction != "outbound":
                continue
            top = mappings.get(name)
            # as the push: a record an applies_to mapping takes goes through it, not the default one
            takers = (
                [mappings.get(n) for n, s in specs.items() if s.applies_to is not None and s.source is None]
                if name == DOSSIER
                else []
            )
            children = [
                (child_name, mappings.get(child_name), child_spec.items_of.child)
                for child_name, child_spec in specs.items()
                if child_spec.items_of is not None and child_spec.items_of.mapping == name
            ]
            round_trip = name == DOSSIER and INBOUND_DOSSIER in mappings
            inbound = mappings.get(INBOUND_DOSSIER) if round_trip else None
            source = SqlSource(engine, spec.source)
            total = source.count() if limit is None else min(limit, source.count())
            done = 0
            for page in source.iter_pages(page_size):
                for record in page:
                    if limit is not None and done >= limit:
                        break
                    done += 1
                    _check_record(report, name, record, top, takers, children, inbound)
                if progress is not None:
                    progress(done, total)
                if limit is not None and done >= limit:
                    break
            report.coverage[name] = f"{done} records of {spec.source.table}"
    finally:
        engine.dispose()
    _describe_coverage(mappings, report)
    return report


def _check_record(
    report: CheckReport,
    name: str,
    record: dict[str, Any],
    top: CompiledMapping,
    takers: list[CompiledMapping],
    children: list[tuple[str, CompiledMapping, str]],
    inbound: CompiledMapping | None,
) -> None:
    """One source record through its mapping (an ``applies_to`` mapping that takes it, else
    ``top``), its items through their child mappings, and back through the inbound dossier's."""
    taker = next((t for t in takers if t.applies(record)), None)
    if taker is not None:
        report.add_result(taker.name, taker.map(record))
        return
    result = top.map(record)
    report.add_result(name, result)
    if result.skipped is not None:
        return  # not sent: neither are its steps
    for child_name, child, list_name in children:
        for item in record.get(list_name) or []:
            item_result = child.map(item, parent=record, record_key=result.record)
            report.add_result(child_name, item_result)
    if inbound is not None and result.ok:
        report.add_result(INBOUND_DOSSIER, inbound.map(_as_listed(result.value)))


def _as_listed(dossier: Any) -> dict[str, Any]:
    """A mapped dossier as the portal would list it had it been submitted there (HoSoCongDVC)."""
    wire = dossier.to_wire()
    return {name: wire[name] for name in HoSoCongDVC.model_fields if name in wire}


def _describe_coverage(mappings: MappingSet, report: CheckReport) -> None:
    """How each spec the source loop did not name was checked, or why it could not be."""
    specs = mappings.specs
    users: dict[str, list[str]] = {}
    for name, spec in specs.items():
        for field_name, fs in spec.fields.items():
            parts = [fs.mapping] if fs.mapping else [part.mapping for part in fs.concat or ()]
            for used in parts:
                users.setdefault(used, []).append(f"{name}.{field_name}")
    for name, spec in specs.items():
        if name in report.coverage:
            continue
        count = report.records.get(name, 0)
        if spec.applies_to is not None:
            taken = f"records of {DOSSIER} where {spec.applies_to.describe()}"
            report.coverage[name] = f"{count} {taken}" if count else f"not run: no {taken}"
        elif spec.items_of is not None:
            of = spec.items_of
            report.coverage[name] = f"{count} items of {of.mapping}.{of.child}"
        elif name == INBOUND_DOSSIER and count:
            listed = "as the portal would list them (round trip)"
            report.coverage[name] = f"{count} dossiers of {DOSSIER} {listed}"
        elif name in users:
            report.coverage[name] = "within " + ", ".join(sorted(users[name])) + " (errors counted there)"
        elif spec.direction == "inbound":
            report.coverage[name] = "not run: its records come only from the portal (checked at load time)"
        else:
            report.coverage[name] = "not run: nothing to run it over (checked at load time)"
