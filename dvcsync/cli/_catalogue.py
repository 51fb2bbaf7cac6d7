"""``dvcsync catalogue pull | match | apply``: keep the local procedure catalogue aligned with the
national one (docs/catalogue.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dvcsync.catalogue.matcher import MARGIN, THRESHOLD
from dvcsync.errors import ExitCode

from ._common import (
    JsonOpt,
    _live_settings,
    _load_mappings,
    _print_counts,
    _redact_url,
    _run_cycles,
    _settings,
    _TenantTyper,
    _writing,
    app,
    console,
    err_console,
    sync_app,
)
from ._errors import terminal_text

if TYPE_CHECKING:
    from dvcsync.config import Settings

catalogue_app = _TenantTyper(
    help="Align the local procedure catalogue with the national one: pull, match, apply a review.",
    no_args_is_help=True,
)
app.add_typer(catalogue_app, name="catalogue")


def _say(text: str) -> None:
    err_console.print(terminal_text(text), markup=False, highlight=False, soft_wrap=True)


# ---------------------------------------------------------------- pull


@catalogue_app.command("pull")
def catalogue_pull(as_json: JsonOpt = False) -> None:
    """Read the national catalogue (procedures with details and fees, agencies, sectors) into the
    state and report what changed since the last pull, and the local codes it makes wrong
    (withdrawn or unknown national procedure, other fees, abolished agencies). Exit 1 when a local
    code needs a person."""
    from dvcsync.sync.catalogue import CatalogueError, run_catalogue_pull

    settings = _live_settings()
    mset = _load_mappings(settings.province.mappings)
    try:
        summary = _run_cycles(settings, "dvcsync catalogue pull", lambda: run_catalogue_pull(settings, mset))
    except CatalogueError as exc:
        _say(str(exc))
        raise typer.Exit(exc.exit_code) from None
    data = summary.as_dict()
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        _print_pull(data)
    raise typer.Exit(ExitCode.OK if summary.problems == 0 else ExitCode.PROBLEMS)


@sync_app.command("catalogue")
def sync_catalogue(as_json: JsonOpt = False) -> None:
    """One catalogue cycle: the same as `dvcsync catalogue pull` (what the scheduled job runs)."""
    catalogue_pull(as_json)


_CHANGE_LABELS = (
    ("new", "new procedures"),
    ("renamed", "renamed procedures"),
    ("withdrawn", "withdrawn procedures"),
    ("reinstated", "reinstated procedures"),
    ("fees_changed", "fees changed"),
    ("days_changed", "processing days changed"),
    ("agencies_new", "new agencies"),
    ("agencies_renamed", "renamed agencies"),
    ("agencies_abolished", "abolished agencies"),
    ("sectors_new", "new sectors"),
    ("sectors_renamed", "renamed sectors"),
    ("sectors_removed", "removed sectors"),
)


def _print_pull(data: dict[str, Any]) -> None:
    changes = data["changes"]
    title = f"catalogue of {data['catalogue_date']} (pull {data['pull_id']})"
    rows: list[tuple[str, Any]] = [
        ("procedures listed", data["procedures"]),
        ("of which active", data["active"]),
        ("agencies", data["agencies"]),
        ("sectors", data["sectors"]),
    ]
    if changes.get("first"):
        rows.append(("changes", "first pull: the baseline"))
    else:
        rows += [(label, len(changes[key])) for key, label in _CHANGE_LABELS]
    _print_counts(title, rows)
    for key, label in _CHANGE_LABELS:
        for item in changes.get(key) or []:
            old = f" (was: {item['old_name']})" if "old_name" in item else ""
            _out(f"  {label}: {item['code']} {item['name']}{old}")
    _print_reports(data["reports"])


def _out(text: str) -> None:
    """A line made from data (codes, names from either catalogue): escaped, never markup."""
    console.print(terminal_text(text), markup=False, highlight=False, soft_wrap=True)


def _print_reports(reports: dict[str, list[dict[str, Any]]]) -> None:
    for item in reports.get("withdrawn", []):
        _out(f"  withdrawn nationally: {item['local_code']} {item['local_name']} → {item['national_code']}")
    for item in reports.get("unknown_code", []):
        _out(f"  not in the national catalogue: {item['local_code']} → {item['national_code']}")
    for item in reports.get("fees_differ", []):
        _out(
            f"  fees differ: {item['local_code']} charges {item['local_fees']},"
            f" the national record says {item['national_fees']} ({item['national_code']})"
        )
    for item in reports.get("agencies_abolished", []):
        after = item["successor"]
        then = (
            f"successor {after['local_key']} ({after['national_code']}"
            f"{'' if after['active'] else ', not active nationally either'})"
            if after
            else "NO SUCCESSOR in the local agencies table"
        )
        _out(
            f"  agency abolished: {item['local_key']} ({item['national_code']} {item['national_name']},"
            f" until {item['abolished_on']}): {then}"
        )


# ---------------------------------------------------------------- match


def _national(settings: Settings) -> list[Any]:
    from dvcsync.state import StateStore
    from dvcsync.state.catalogue import procedures
    from dvcsync.tenants import ensure_schema

    ensure_schema(settings.state.url)  # a tenant's PostgreSQL schema, before its tables are made
    store = StateStore(settings.state.url)
    try:
        store.prepare()
        found = procedures(store)
    finally:
        store.close()
    if not found:
        where = _redact_url(settings.state.url)
        _say(f"no national catalogue in the state {where}: run `dvcsync catalogue pull` first")
        raise typer.Exit(ExitCode.INVALID)
    return found


@catalogue_app.command("match")
def catalogue_match(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="The review file to write: .xlsx for a workbook, else CSV (UTF-8 with a BOM)."
            " Default: catalogue-review.csv (none with --json unless given).",
        ),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every local procedure, verified ones included.")
    ] = False,
    threshold: Annotated[
        float, typer.Option(min=0.5, max=1.0, help="Score an automatic acceptance needs at least.")
    ] = THRESHOLD,
    margin: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Lead over the runner-up an automatic acceptance needs.")
    ] = MARGIN,
    as_json: JsonOpt = False,
) -> None:
    """Propose national candidates for each local procedure without a verified national code
    (all of them with --all), each with a score (0-1) and the reason, into a review file a person
    edits (see docs/catalogue.md). `accepted` / the pre-filled decision is what would be applied
    automatically: only a candidate far enough ahead, with no distinguishing word on one side."""
    settings = _settings()
    mset = _load_mappings(settings.province.mappings)
    matcher = _matcher(settings, threshold, margin)
    local, reports = _local_catalogue(settings, mset, with_reports=not as_json)
    rows = _review_rows(mset, local, matcher, every)
    if as_json:
        for row in rows:
            print(json.dumps(row.match.as_dict(), ensure_ascii=False))
    target = out if out is not None else (None if as_json else Path("catalogue-review.csv"))
    if target is not None:
        _write_review_file(target, rows)
    if not as_json:
        _print_match(rows, target, reports)


def _matcher(settings: Settings, threshold: float, margin: float) -> Any:
    """The matcher over the national catalogue last pulled (exit 2 when none was)."""
    from dvcsync.catalogue.matcher import Matcher, NationalProcedure

    national = _national(settings)
    return Matcher(
        (
            NationalProcedure(p.code, p.name, p.active, p.sector_code, p.sector_name, p.fees, p.days)
            for p in national
        ),
        threshold=threshold,
        margin=margin,
    )


def _local_catalogue(settings: Settings, mset: Any, *, with_reports: bool) -> tuple[Any, Any]:
    """The local procedures, and (``with_reports``) what the national catalogue makes wrong in
    them; exit 2 naming the source when it cannot be read."""
    from dvcsync.catalogue.local import read_local
    from dvcsync.province.schema import load_schema
    from dvcsync.province.source import make_engine

    engine = make_engine(settings.province.source_url)
    try:
        local = read_local(engine, load_schema(mset.folder))
        reports = _reports(settings, mset, engine) if with_reports else None
    except Exception as exc:
        from dvcsync.province.sink import db_error_text

        _say(f"cannot read the local catalogue from {settings.province.source_url}: {db_error_text(exc)}")
        raise typer.Exit(ExitCode.INVALID) from None
    finally:
        engine.dispose()
    return local, reports


def _status(mset: Any, code: str, unverified: bool) -> tuple[str, Any]:
    """Where a local procedure stands (skipped, decided, unmapped, unverified, verified) and the
    national code it maps to."""
    from dvcsync.catalogue.local import decided, mapped_code

    mapped = mapped_code(mset, code)
    if mapped.skipped:
        return "skipped", mapped
    if decided(mset, code):
        return "decided", mapped
    if mapped.missing:
        return "unmapped", mapped
    return ("unverified" if unverified else "verified"), mapped


def _review_rows(mset: Any, local: Any, matcher: Any, every: bool) -> list[Any]:
    """A review row per local procedure to decide (every one with ``every``)."""
    from dvcsync.catalogue.review import ReviewRow

    rows: list[ReviewRow] = []
    for proc in local:
        status, mapped = _status(mset, proc.code, proc.unverified)
        if not every and status not in ("unmapped", "unverified"):
            continue
        rows.append(ReviewRow(matcher.match(proc), status, mapped.code))
    return rows


def _write_review_file(target: Path, rows: list[Any]) -> None:
    from dvcsync.catalogue.review import write_review

    try:
        write_review(target, rows)
    except OSError as exc:
        _say(f"cannot write {target}: {exc.strerror or exc}")
        raise typer.Exit(ExitCode.INVALID) from None


def _print_match(rows: list[Any], target: Path | None, reports: Any) -> None:
    auto = sum(1 for r in rows if r.match.accepted)
    _print_counts(
        "catalogue match",
        [
            ("local procedures in the review", len(rows)),
            ("accepted automatically (pre-filled)", auto),
            ("for a person to decide", len(rows) - auto),
        ],
    )
    if target is not None:
        _out(f"review file: {target} (edit the decision column, then `dvcsync catalogue apply`)")
    if reports:
        _print_reports(reports)


def _reports(settings: Settings, mappings: Any, engine: Any) -> dict[str, list[dict[str, Any]]]:
    """What the last pulled catalogue makes wrong locally (withdrawn, fees, agencies)."""
    from dvcsync.state import StateStore
    from dvcsync.sync.catalogue import local_reports

    store = StateStore(settings.state.url)
    try:
        return local_reports(store, mappings, engine)
    finally:
        store.close()


# ---------------------------------------------------------------- apply


@catalogue_app.command("apply")
def catalogue_apply(
    file: Annotated[Path, typer.Argument(help="The edited review file (.csv or .xlsx).")],
    by: Annotated[
        str | None,
        typer.Option("--by", help="Who decided (recorded with each decision; default: the OS user)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the review's decisions into the mapping's code tables (the overlay of the procedures
    table, with who and when), then map again the dossiers quarantined only for their procedure
    code: the next push cycle sends them. "none" (no national equivalent) means such dossiers
    are not sent."""
    from dvcsync.catalogue.decisions import default_user, overlay_path, write_decisions
    from dvcsync.catalogue.local import procedure_table

    settings = _settings()
    mset = _load_mappings(settings.province.mappings)
    chosen = _review_decisions(file)
    national = {p.code: p for p in _national(settings)}
    local_codes = _local_codes(settings, mset)
    base, _attr = procedure_table(mset)
    accepted, no_equivalent, problems = _sort_decisions(
        file, chosen, local_codes, national, _wanted_attributes(mset, base)
    )
    if problems:
        for problem in problems:
            _say(problem)
        raise typer.Exit(ExitCode.INVALID)
    path = overlay_path(settings.province.mappings, base)
    with _writing(settings, "dvcsync catalogue apply"):
        counts = write_decisions(path, accepted, no_equivalent, by=by or default_user(), base=base)
        fresh = _load_mappings(settings.province.mappings)
        requeued = _requeue(settings, fresh)
    data = {"file": str(path), **counts, "requeue": requeued}
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
        return
    _print_counts(
        f"catalogue apply → {path}",
        [
            ("decisions applied: national code", counts["accepted"]),
            ("decisions applied: no national equivalent", counts["no_equivalent"]),
            ("already so", counts["unchanged"]),
            ("dossiers quarantined for the procedure code", requeued["candidates"]),
            ("released: sent by the next push cycle", requeued["released"]),
            ("not sent: no national equivalent", requeued["skipped"]),
            ("still quarantined", requeued["still_quarantined"]),
        ],
    )


def _review_decisions(file: Path) -> list[Any]:
    """The decisions of an edited review file; exit 2 naming the file, line and value."""
    from dvcsync.catalogue.review import ReviewError, decisions

    if not file.is_file():
        _say(f"{file}: no such file")
        raise typer.Exit(ExitCode.INVALID)
    try:
        return list(decisions(file))
    except ReviewError as exc:
        _say(str(exc))
        raise typer.Exit(exc.exit_code) from None


def _local_codes(settings: Settings, mset: Any) -> set[str]:
    from dvcsync.catalogue.local import read_local
    from dvcsync.province.schema import load_schema
    from dvcsync.province.source import make_engine

    engine = make_engine(settings.province.source_url)
    try:
        return {p.code for p in read_local(engine, load_schema(mset.folder))}
    finally:
        engine.dispose()


def _wanted_attributes(mset: Any, base: str) -> list[str]:
    """The attributes the procedures table's entries hold (all known ones for a plain table)."""
    from dvcsync.catalogue.decisions import ATTRIBUTES

    sample = next(iter(mset.codes[base].keys()), None)
    sample_value = mset.codes[base].lookup(sample) if sample is not None else {}
    return [a for a in (sample_value if isinstance(sample_value, dict) else ATTRIBUTES) if a in ATTRIBUTES]


def _sort_decisions(
    file: Path, chosen: list[Any], local_codes: set[str], national: dict[str, Any], wanted: list[str]
) -> tuple[list[Any], list[str], list[str]]:
    """The decisions as accepted national codes, local codes with no national equivalent, and
    the problems (file, line, value) that stop the whole file from being applied."""
    from dvcsync.catalogue.decisions import ATTRIBUTES, Accepted

    accepted: list[Accepted] = []
    no_equivalent: list[str] = []
    problems = []
    for item in chosen:
        if item.local_code not in local_codes:
            problems.append(
                f"{file}:{item.line}: local_code {item.local_code!r} is not in the local catalogue"
            )
            continue
        if item.national_code is None:
            no_equivalent.append(item.local_code)
            continue
        proc = national.get(item.national_code)
        if proc is None:
            problems.append(
                f"{file}:{item.line}: decision {item.national_code!r} for {item.local_code} is not in the"
                " national catalogue (as last pulled)"
            )
        elif not proc.active:
            problems.append(
                f"{file}:{item.line}: decision {item.national_code!r} for {item.local_code}: the national"
                f" procedure is withdrawn ({proc.name})"
            )
        else:
            accepted.append(
                Accepted(item.local_code, {a: str(getattr(proc, ATTRIBUTES[a]) or "") for a in wanted})
            )
    return accepted, no_equivalent, problems


def _requeue(settings: Settings, mappings: Any) -> dict[str, int]:
    """Re-map the records quarantined only for their procedure code (the state lock is held)."""
    import asyncio
    from dataclasses import asdict

    from dvcsync.sync.catalogue import quarantined_for_procedure, requeue
    from dvcsync.sync.runtime import open_runtime

    async def go() -> dict[str, int]:
        async with open_runtime(settings, mappings) as rt:
            keys = quarantined_for_procedure(rt.store, mappings)
            return asdict(requeue(rt, keys))

    return asyncio.run(go())
