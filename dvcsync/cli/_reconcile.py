"""``dvcsync reconcile`` (the mismatch report) and ``reconcile repair CATEGORY``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from dvcsync.config import Settings
from dvcsync.errors import ExitCode

from ._common import (
    JsonOpt,
    TenantOpt,
    _check_identity,
    _live_settings,
    _progress,
    _require_state,
    _State,
    _TenantTyper,
    _writing,
    app,
    console,
    err_console,
)
from ._errors import cell_text, terminal_text

reconcile_app = _TenantTyper(
    help="Compare the province, dvcsync's state, the portal and the payment platform; write the"
    " mismatch report (HTML, XLSX, CSV, JSON). Exit 1 when mismatches exist, 0 when none.",
    invoke_without_command=True,
)
app.add_typer(reconcile_app, name="reconcile")


@reconcile_app.callback()
def reconcile(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="First day (YYYY-MM-DD or dd/mm/yyyy), local time.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Last day, inclusive (default: today).")
    ] = None,
    agency: Annotated[str | None, typer.Option("--agency", help="Only this agency's dossiers.")] = None,
    procedure: Annotated[str | None, typer.Option("--procedure", help="Only this local procedure.")] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the report (default: a dated folder in [reconcile] out_dir)."),
    ] = None,
    formats: Annotated[
        str | None,
        typer.Option("--format", help="Comma-separated: html,xlsx,csv,json (JSON is always written)."),
    ] = None,
    portal_check: Annotated[
        str | None,
        typer.Option("--portal-check", help="Read dossiers back from the portal: all, sample:N or none."),
    ] = None,
    show_personal: Annotated[
        bool, typer.Option("--show-personal", help="Personal data in clear (masked by default).")
    ] = False,
    payments: Annotated[
        bool, typer.Option("--payments/--no-payments", help="Compare payments with the daily statements.")
    ] = True,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the sample (to repeat one).")] = None,
    as_json: JsonOpt = False,
    tenant: TenantOpt = None,
) -> None:
    """The mismatch report for a period (default: the last [reconcile] period_days days)."""
    if tenant is not None:
        _State.tenant = tenant  # before a subcommand too: `reconcile --tenant a repair`
    if ctx.invoked_subcommand is not None:
        return
    from dvcsync.portal import AuthError, UnreachableError
    from dvcsync.reconcile import ReconcileOptions

    settings = _live_settings()
    _require_state(settings, "dvcsync reconcile")
    _check_identity(settings)
    try:
        chosen, check = _formats_and_check(settings, formats, portal_check)
        period = _period(settings, since, until, agency, procedure)
    except ValueError as exc:
        err_console.print(terminal_text(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.INVALID) from None
    options = ReconcileOptions(
        period=period,
        out_dir=out,
        formats=chosen,
        portal_check=check,
        show_personal=show_personal,
        seed=seed,
        payments=payments,
    )
    try:
        bar_wanted = sys.stderr.isatty() and not as_json
        result = asyncio.run(_reconcile_showing_progress(settings, options, bar_wanted))
    except (UnreachableError, AuthError) as exc:
        err_console.print(
            terminal_text(f"portal unreachable: {exc}; what was read back is kept, run again to resume"),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(ExitCode.UNREACHABLE) from None
    report = result.report
    if as_json:
        sys.stdout.write((result.out_dir / "reconcile.json").read_text(encoding="utf-8"))
    else:
        _summary(result)
    raise typer.Exit(ExitCode.PROBLEMS if report.total else ExitCode.OK)


def _formats_and_check(
    settings: Settings, formats: str | None, portal_check: str | None
) -> tuple[list[str], str]:
    """``--format`` and ``--portal-check`` (else ``[reconcile]``'s), checked; ValueError naming
    the option."""
    from dvcsync.config import portal_check_mode, report_formats

    cfg = settings.reconcile
    given = formats.split(",") if formats else cfg.formats
    try:
        chosen = report_formats([f.strip() for f in given if f.strip()])
    except ValueError as exc:
        raise ValueError(f"--format: {exc}") from None
    try:
        check = portal_check_mode(portal_check or cfg.portal_check)
    except ValueError as exc:
        raise ValueError(f"--portal-check {exc}") from None
    return chosen, check


def _period(
    settings: Settings, since: str | None, until: str | None, agency: str | None, procedure: str | None
) -> Any:
    """The period asked for: ``--since`` … ``--until`` (default today), else the last
    ``[reconcile] period_days`` days; ValueError naming the option."""
    from dvcsync.reconcile import Period, parse_day
    from dvcsync.reconcile.period import local_now

    end = parse_day(until, "--until") if until else local_now().date()
    if since:
        return Period(parse_day(since, "--since"), end, agency=agency, procedure=procedure)
    return Period.last_days(settings.reconcile.period_days, end, agency=agency, procedure=procedure)


async def _reconcile_showing_progress(settings: Settings, options: Any, bar_wanted: bool) -> Any:
    from dvcsync.reconcile import reconcile as run_reconcile
    from dvcsync.sync.runtime import open_runtime

    with _progress(bar_wanted) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        async with open_runtime(settings) as runtime:
            return await run_reconcile(runtime, options, progress=progress)


def _summary(result: Any) -> None:
    from dvcsync.reconcile import CATEGORIES

    report = result.report
    period = report.period
    table = Table(
        title=cell_text(
            f"Đối soát {period['since']} … {period['until']}"
            f" ({report.total} sai lệch; portal check {period['portal_check']})"
        )
    )
    table.add_column("category")
    table.add_column("loại sai lệch")
    table.add_column("count", justify="right")
    table.add_column("repair")
    for key, count in report.counts.items():
        if count:
            cat = CATEGORIES[key]
            table.add_row(key, cat.label_vi, str(count), cat.repair_command or "—")
    if report.total:
        console.print(table)
    else:
        console.print(
            terminal_text(f"no mismatches between {period['since']} and {period['until']}"),
            markup=False,
            highlight=False,
        )
    if report.previous:
        console.print(
            terminal_text(
                f"since the report of {report.previous}: {len(report.new_since_last)} new,"
                f" {report.total - len(report.new_since_last)} still open,"
                f" {len(report.resolved_since_last)} resolved"
            ),
            markup=False,
            highlight=False,
        )
    for problem in result.problems:
        err_console.print(terminal_text(f"warning: {problem}"), markup=False, highlight=False, soft_wrap=True)
    for path in result.files:
        console.print(terminal_text(f"wrote {path}"), markup=False, highlight=False, soft_wrap=True)


@reconcile_app.command("repair")
def repair(
    category: Annotated[str, typer.Argument(help="The category to repair, e.g. missing_on_portal.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be done; change nothing.")
    ] = False,
    report_path: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="The report to repair from (default: the last one written, wherever --out put it).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Repair one category of the last report through the outbox (nothing is sent twice).

    Repairable: missing_on_portal, status_differs, dates_differ, fees_differ, history_missing,
    stale, dead_letter, paid_on_platform_only."""
    from dvcsync.portal import UnreachableError
    from dvcsync.reconcile import NotRepairable

    settings = _live_settings()
    _require_state(settings, "dvcsync reconcile")
    _check_identity(settings)
    path = _report_to_repair(settings, category, report_path)
    try:
        result = _run_repair(settings, category, path, dry_run)
    except NotRepairable as exc:
        err_console.print(terminal_text(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except UnreachableError as exc:
        err_console.print(
            terminal_text(f"portal unreachable: {exc.detail}"), markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(exc.exit_code) from None
    if as_json:
        _print_repair_json(result)
    elif not result.outcomes:
        console.print(
            terminal_text(f"nothing to repair: the report {path} lists no {category}"),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(ExitCode.OK)
    else:
        _print_repair(result, category, path, dry_run)
    left = [o for o in result.outcomes if not o.done and not o.action.startswith("already")]
    raise typer.Exit(ExitCode.OK if dry_run or not left else ExitCode.PROBLEMS)


def _report_to_repair(settings: Settings, category: str, report_path: Path | None) -> Path:
    """The report to repair ``category`` from; exit 2 for an unknown category or no report."""
    from dvcsync.reconcile import KEYS, repairable
    from dvcsync.reconcile.run import last_report, reports_root

    if category not in KEYS:
        err_console.print(
            terminal_text(f"unknown category {category!r}; repairable: {', '.join(repairable())}"),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(ExitCode.INVALID)
    path = report_path or last_report(reports_root(settings))
    if path is None or not path.is_file():
        err_console.print(
            terminal_text(
                f"no report to repair from in {reports_root(settings)}: run `dvcsync reconcile` first"
                " (or give --report)"
            ),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(ExitCode.INVALID)
    return path


def _run_repair(settings: Settings, category: str, path: Path, dry_run: bool) -> Any:
    """The repair, under the state's writer lock unless it only says what it would do."""
    from dvcsync.reconcile import repair as run_repair
    from dvcsync.sync.runtime import open_runtime

    async def go() -> Any:
        async with open_runtime(settings) as runtime:
            return await run_repair(runtime, category, path, dry_run=dry_run)

    if dry_run:
        return asyncio.run(go())
    with _writing(settings, f"dvcsync reconcile repair {category}"):
        return asyncio.run(go())


def _print_repair_json(result: Any) -> None:
    print(
        json.dumps(
            {
                "category": result.category,
                "report": str(result.report),
                "dry_run": result.dry_run,
                "acted": result.acted,
                "outcomes": [o.__dict__ for o in result.outcomes],
                "push": result.push,
                "payments": result.payments,
            },
            ensure_ascii=False,
        )
    )


def _print_repair(result: Any, category: str, path: Path, dry_run: bool) -> None:
    table = Table(title=cell_text(f"repair {category}{' (dry run)' if dry_run else ''} from {path}"))
    table.add_column("ma_ho_so")
    table.add_column("action")
    for outcome in result.outcomes:
        table.add_row(cell_text(outcome.ma_ho_so or "—"), cell_text(outcome.action))
    console.print(table)
    console.print(f"{result.acted} of {len(result.outcomes)} repaired", highlight=False)
    if result.push:
        console.print(
            f"delivered: {result.push['dossiers_pushed']} dossiers, {result.push['steps_pushed']}"
            f" history entries, {result.push['dead']} dead letters",
            highlight=False,
        )
