"""The specs and code tables the jobs cannot do without, checked when a folder is loaded.

A job that finds no spec for part of its work would otherwise do less, silently: without
``step.yaml`` a push sends no history and exits 0. So a missing (or empty) spec a job needs is a
configuration error at load time, naming the file and what it is for. Each job's needs come from
reading it (dvcsync/sync/push.py, pull.py, payments.py, satisfaction.py, catalogue.py, the
inbound server); a folder with other names (another schema's profile) keeps these file names.

Every job is scheduled by ``dvcsync run`` (there is no switch to leave one out), so commands
load with ``require=JOBS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .spec import CodeTableSpec, MappingSpec

Problem = tuple[Path, int | None, str, str]

# The names the jobs read (their defaults: PushOptions, PullJob, PaymentJob, the inbound server).
DOSSIER, STEP, STATUS = "dossier", "step", "status_report"
INBOUND_DOSSIER, INBOUND_PROMOTION = "inbound_dossier", "inbound_promotion"
RECEIPT, RECEIPT_AFTER = "payment_receipt", "payment_receipt_after"
AGENCIES = "agencies"

JOBS: tuple[str, ...] = ("push", "pull", "payments", "catalogue", "reconcile", "satisfaction", "server")

Shape = Callable[[MappingSpec], tuple[tuple[str, ...], str] | None]
"""A spec's shape a job relies on: None when fine, else (key path, what is wrong)."""


def _outbound_with_source(spec: MappingSpec, *, changes: bool) -> tuple[tuple[str, ...], str] | None:
    if spec.direction != "outbound":
        return ("direction",), "must be outbound"
    if spec.source is None:
        return ("name",), "needs a 'source' (the table its records are read from)"
    if changes and spec.source.updated_at is None:
        return ("source",), "needs source.updated_at (the push reads what changed since its cursor)"
    return None


def _inbound(spec: MappingSpec) -> tuple[tuple[str, ...], str] | None:
    return None if spec.direction == "inbound" else (("direction",), "must be inbound")


def _outbound(spec: MappingSpec) -> tuple[tuple[str, ...], str] | None:
    return None if spec.direction == "outbound" else (("direction",), "must be outbound")


def _step(spec: MappingSpec) -> tuple[tuple[str, ...], str] | None:
    if spec.items_of is None or spec.items_of.mapping != DOSSIER:
        return ("items_of",), f"needs items_of: {{mapping: {DOSSIER}, child: <its steps' child list>}}"
    return None


def _procedure_code(spec: MappingSpec) -> tuple[tuple[str, ...], str] | None:
    field = spec.fields.get("MaTTHC")
    if field is None or field.code is None:
        return ("fields", "MaTTHC"), "must take the national procedure code from a code table (code: ...)"
    return None


@dataclass(frozen=True)
class Need:
    """One spec (or code table) a job needs, why, and the shape it relies on."""

    job: str
    name: str
    why: str
    shape: Shape | None = None
    code_table: bool = False
    applies_to: bool = False  # any spec with applies_to will do; ``name`` is the shipped one's

    def file(self, root: Path) -> Path:
        return root / "codes" / f"{self.name}.yaml" if self.code_table else root / f"{self.name}.yaml"


NEEDS: tuple[Need, ...] = (
    Need(
        "push",
        DOSSIER,
        "the push job reads the province's dossiers through it (DongBoHoSoMC)",
        lambda s: _outbound_with_source(s, changes=True),
    ),
    Need(
        "push",
        STEP,
        "the push job sends processing history (CapNhatTienDoHoSoMC) through it; without it no"
        " history would be sent",
        _step,
    ),
    Need(
        "push",
        STATUS,
        "the push job reports the status of portal-submitted dossiers (DongBoTrangThaiHoSo)"
        " through a mapping with applies_to; without one they would be pushed as the province's own",
        _outbound,
        applies_to=True,
    ),
    Need("pull", INBOUND_DOSSIER, "the pull job takes in portal-submitted dossiers through it", _inbound),
    Need(
        "payments",
        RECEIPT,
        "the payments job bills fees collected before processing through it (INIT, receipts)",
        lambda s: _outbound_with_source(s, changes=False),
    ),
    Need(
        "payments",
        RECEIPT_AFTER,
        "the payments job bills fees collected after processing (thu_sau) through it; without it"
        " they would never be billed",
        _outbound,
    ),
    Need(
        "catalogue",
        DOSSIER,
        "the catalogue job reads the national procedure codes from its MaTTHC field",
        _procedure_code,
    ),
    Need("reconcile", DOSSIER, "the reconcile job reads the province's dossiers through it"),
    Need(
        "satisfaction",
        DOSSIER,
        "the satisfaction job reads the national procedure codes from its MaTTHC field",
        _procedure_code,
    ),
    Need(
        "satisfaction",
        AGENCIES,
        "the satisfaction job reports ratings by national agency code (attribute 'ma')",
        code_table=True,
    ),
    Need(
        "server",
        INBOUND_PROMOTION,
        "the inbound server takes in promotion notifications pushed by the portal through it",
        _inbound,
    ),
)


def why_needed(name: str, jobs: Iterable[str]) -> str | None:
    """Why the ``jobs`` need the spec ``name`` (None: they do not), for an empty file's error."""
    whys = [need.why for need in needs_of(jobs) if need.name == name and not need.code_table]
    return "; ".join(dict.fromkeys(whys)) or None


def needs_of(jobs: Iterable[str]) -> list[Need]:
    wanted = list(jobs)
    unknown = sorted(set(wanted) - set(JOBS))
    if unknown:
        raise ValueError(f"unknown jobs {unknown} (known: {', '.join(JOBS)})")
    return [need for need in NEEDS if need.job in wanted]


def required_problems(
    root: Path,
    jobs: Iterable[str],
    specs: Mapping[str, MappingSpec],
    codes: Mapping[str, CodeTableSpec],
    present: set[Path],
    line_of: Callable[[str, tuple[str, ...]], int | None],
) -> list[Problem]:
    """What the ``jobs`` need and the folder lacks. ``present``: the files found (a file that is
    there but invalid was reported already); ``line_of(name, key path)``: a spec key's line."""
    problems: list[Problem] = []
    seen: set[tuple[Path, str]] = set()
    for need in needs_of(jobs):
        path = need.file(root)
        if need.code_table:
            if need.name not in codes and path not in present:
                problems.append((path, None, "", f"missing: {need.why}"))
            continue
        for name in _specs_needed(need, path, specs, present, line_of, problems):
            wrong = need.shape(specs[name]) if need.shape is not None else None
            if wrong is None:
                continue
            loc, message = wrong
            marker = (root / f"{name}.yaml", ".".join(loc) + message)
            if marker in seen:
                continue
            seen.add(marker)
            problems.append((marker[0], line_of(name, loc), ".".join(loc), f"{message}: {need.why}"))
    return problems


def _specs_needed(
    need: Need,
    path: Path,
    specs: Mapping[str, MappingSpec],
    present: set[Path],
    line_of: Callable[[str, tuple[str, ...]], int | None],
    problems: list[Problem],
) -> list[str]:
    """The specs that meet ``need`` (every spec with ``applies_to`` for such a need), their shape
    still to check; none, and a problem when the folder lacks it (unless an invalid file was
    reported already)."""
    if need.applies_to:
        names = [name for name, spec in specs.items() if spec.applies_to is not None]
        if not names:
            if need.name in specs:  # the file is there but takes no records
                problems.append((path, line_of(need.name, ("name",)), "applies_to", f"missing: {need.why}"))
            elif path not in present:
                problems.append((path, None, "", f"missing: {need.why}"))
        return names
    if need.name not in specs:
        if path not in present:
            problems.append((path, None, "", f"missing: {need.why}"))
        return []
    return [need.name]


__all__ = ["JOBS", "NEEDS", "Need", "needs_of", "required_problems", "why_needed"]
