"""The ``dvcsync`` command."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapter.config import ConfigError, Settings, published_secret_problems

app = typer.Typer(
    name="dvcsync",
    help="Keep a province's one-stop system in step with the National Public Service Portal "
    "(Cổng Dịch vụ công Quốc gia).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
mappings_app = typer.Typer(help="Check the mapping specs or export their JSON Schema.", no_args_is_help=True)
push_app = typer.Typer(help="One-off pushes of single records.", no_args_is_help=True)
sync_app = typer.Typer(help="Run one cycle of a sync job.", no_args_is_help=True)
dead_app = typer.Typer(help="Dead letters: list, retry or discard.", no_args_is_help=True)
db_app = typer.Typer(help="The state store.", no_args_is_help=True)
app.add_typer(mappings_app, name="mappings")
app.add_typer(push_app, name="push")
app.add_typer(sync_app, name="sync")
app.add_typer(dead_app, name="dead-letters")
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML configuration (default: $DVCSYNC_CONFIG or ./dvcsync.toml)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


class _State:
    config: Path | None = None


@app.callback()
def _main(
    config: ConfigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    _State.config = config
    from adapter.logs import configure_logging

    configure_logging(logging.DEBUG if verbose else logging.WARNING)


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings.load(_State.config, **overrides)
    except ConfigError as exc:
        err_console.print(f"[red]configuration error[/red]\n{exc}", soft_wrap=True)
        raise typer.Exit(2) from None


def _live_settings(**overrides: Any) -> Settings:
    """Settings for a command that talks to the portal or the payment platform: the mock's
    published password or payment secret is refused (exit 2) before anything is done, unless
    everything it would reach stays on this machine."""
    settings = _settings(**overrides)
    problems = published_secret_problems(settings)
    if problems:
        err_console.print("[red]refusing to run with the mock's published secrets[/red]")
        for problem in problems:
            err_console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    return settings


def _load_mappings(folder: Path) -> Any:
    from adapter.mapping import MappingSpecError, load_mappings

    try:
        return load_mappings(folder)
    except MappingSpecError as exc:
        err_console.print(f"[red]invalid mapping specs in {folder}[/red]")
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)  # file:line stays whole
        raise typer.Exit(2) from None


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not enabled,
        transient=True,
    )


# ---------------------------------------------------------------- sample-db


@app.command("sample-db")
def sample_db(
    out: Annotated[Path, typer.Option("--out", "-o", help="SQLite file to create.")] = Path("onestop.db"),
    dossiers: Annotated[int, typer.Option("--dossiers", "-n", min=0, help="Number of dossiers.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same data.")] = 42,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Generate a sample one-stop database (realistic, deterministic for a seed)."""
    from adapter.province.sample import generate

    if out.exists() and not overwrite:
        err_console.print(f"[red]{out} exists[/red]; pass --overwrite to replace it")
        raise typer.Exit(2)
    with _progress(sys.stderr.isatty() and not as_json) as progress:
        task = progress.add_task("generating dossiers", total=dossiers)
        stats = generate(
            out,
            dossiers,
            seed,
            overwrite=overwrite,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    summary = _stats_dict(stats)
    if as_json:
        print(json.dumps({"out": str(out), **summary}, ensure_ascii=False))
        return
    table = Table(title=f"wrote {out}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in (summary.get("rows") or {}).items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    console.print(f"seed {seed}, {summary.get('elapsed_seconds', 0):.2f}s")


def _stats_dict(stats: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    raw = asdict(stats) if is_dataclass(stats) and not isinstance(stats, type) else dict(stats)
    return {
        k: (round(v, 3) if isinstance(v, float) else str(v) if isinstance(v, Path) else v)
        for k, v in raw.items()
    }


# ---------------------------------------------------------------- mappings


@mappings_app.command("check")
def mappings_check(
    limit: Annotated[int | None, typer.Option("--limit", help="Check only the first N records.")] = None,
    source_url: Annotated[
        str | None, typer.Option("--source-url", help="Override [province] source_url.")
    ] = None,
    mappings: Annotated[Path | None, typer.Option("--mappings", help="Override [province] mappings.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run every mapping over the configured source; print a per-field failure table.

    Exit code 0 when every record maps, 1 when some do not, 2 when the specs or configuration
    are invalid.
    """
    from adapter.sync.mapping_check import check_mappings

    settings = _settings()
    folder = mappings or settings.province.mappings
    url = source_url or settings.province.source_url
    mset = _load_mappings(folder)
    from sqlalchemy.exc import SQLAlchemyError

    from adapter.province.source import SourceUnavailable

    try:
        with _progress(sys.stderr.isatty() and not as_json) as progress:
            task = progress.add_task("mapping records", total=None)
            report = check_mappings(
                mset,
                url,
                limit=limit,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except (SourceUnavailable, SQLAlchemyError) as exc:
        err_console.print(
            f"[red]cannot read the source {_redact_url(url)}[/red]: {str(exc).splitlines()[0]}",
            soft_wrap=True,
        )
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        _print_check(report, folder, url)
    raise typer.Exit(0 if report.ok else 1)


def _print_check(report: Any, folder: Path, url: str) -> None:
    totals = Table(title=f"mappings {folder} over {_redact_url(url)}")
    for column in ("mapping", "records", "mapped", "failed"):
        totals.add_column(column, justify="right" if column != "mapping" else "left")
    for name, count in sorted(report.records.items()):
        failed = report.failed.get(name, 0)
        totals.add_row(name, str(count), str(count - failed), f"[red]{failed}[/red]" if failed else "0")
    console.print(totals)
    rows = report.rows()
    if not rows:
        console.print("[green]every record maps[/green]")
        return
    table = Table(title="failures by field")
    for column in ("mapping", "field", "source", "records", "example"):
        table.add_column(column, overflow="fold")
    for failure in rows:
        example = failure.examples[0]
        table.add_row(
            failure.mapping,
            failure.field,
            failure.source,
            str(failure.count),
            f"{example.record}: {example.value}: {example.reason}",
        )
    console.print(table)


def _redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as its scheme only
        return url.split(":", 1)[0] + ":…"


@mappings_app.command("schema")
def mappings_schema(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="'mapping' or 'codes'.")] = "mapping",
) -> None:
    """Write the JSON Schema of the mapping-spec format (or of code tables), for editors."""
    from adapter.mapping import CodeTableSpec, MappingSpec

    if kind not in {"mapping", "codes"}:
        err_console.print(f"[red]--kind must be 'mapping' or 'codes', not {kind!r}[/red]")
        raise typer.Exit(2)
    model = MappingSpec if kind == "mapping" else CodeTableSpec
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    text = json.dumps(schema, ensure_ascii=False, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {out}")


# ---------------------------------------------------------------- push


@push_app.command("dossier")
def push_dossier(
    ma_ho_so: Annotated[str, typer.Argument(metavar="MaHoSo", help="The dossier's code (local number).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the exact envelopes; send nothing.")
    ] = False,
    show_personal: Annotated[
        bool, typer.Option("--show-personal", help="Print personal data in clear (masked by default).")
    ] = False,
) -> None:
    """Map one dossier, print the exact DongBoHoSoMC and CapNhatTienDoHoSoMC envelopes and, without
    --dry-run, push it now (through the outbox, so the state stays exact) and print the answers."""
    from adapter.sync.one_off import build_envelopes, push_one

    settings = _settings() if dry_run else _live_settings()
    mset = _load_mappings(settings.province.mappings)
    try:
        envelopes, errors = build_envelopes(settings, mset, ma_ho_so, show_personal=show_personal)
    except LookupError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if errors:
        err_console.print(f"[red]dossier {ma_ho_so} cannot be mapped:[/red]")
        for error in errors:
            err_console.print(f"  {error}", markup=False, highlight=False)
        raise typer.Exit(1)
    print(json.dumps(envelopes, ensure_ascii=False, indent=2))
    if dry_run:
        return
    answers = asyncio.run(push_one(settings, mset, ma_ho_so))
    print(json.dumps(answers, ensure_ascii=False, indent=2))
    raise typer.Exit(0 if answers["ok"] else 1)


# ---------------------------------------------------------------- sync, status, dead letters


@sync_app.command("push")
def sync_push(as_json: JsonOpt = False) -> None:
    """One push cycle: enqueue what changed in the province, deliver the outbox to the portal."""
    from adapter.sync.cycles import run_push

    settings = _live_settings()
    mset = _load_mappings(settings.province.mappings)
    with _progress(sys.stderr.isatty() and not as_json) as progress:
        tasks: dict[str, Any] = {}  # one bar per phase: with a producer, both advance at once
        labels = {"enqueue": "read and mapped", "deliver": "delivered"}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(labels.get(phase, phase), total=None)
            progress.update(tasks[phase], completed=done, total=total or None)

        summary = asyncio.run(run_push(settings, mset, progress=report))
    _report(summary.as_dict(), as_json, _print_push, ok=summary.dead == 0)


def _report(
    data: dict[str, Any], as_json: bool, printer: Callable[[dict[str, Any]], None], *, ok: bool
) -> None:
    """A job cycle's summary as JSON or a table, then its exit code (1: something needs a person)."""
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        printer(data)
    raise typer.Exit(0 if ok else 1)


def _print_counts(title: str, rows: list[tuple[str, Any]]) -> None:
    """A job cycle's summary: one row per count."""
    table = Table(title=title)
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)


def _print_push(data: dict[str, Any]) -> None:
    enqueue = data["enqueue"]
    rows = [
        ("records read", enqueue["records"]),
        ("unchanged", enqueue["unchanged"]),
        ("quarantined", enqueue["quarantined"]),
        ("dossiers pushed", data["dossiers_pushed"]),
        ("history entries pushed", data["steps_pushed"]),
        ("statuses of portal-submitted dossiers reported", data["statuses_reported"]),
        ("retried (later)", data["retried"]),
        ("dead letters", data["dead"]),
        ("lost answers settled by read-back", data["ambiguous_resolved"]),
        ("portal calls", data["calls"]),
    ]
    _print_counts("push cycle", rows)
    console.print(f"in {data['elapsed_s']:.2f}s")


def _print_pull(data: dict[str, Any]) -> None:
    labels = (
        ("listed by the portal", "listed"),
        ("created in the province", "created"),
        ("already in the province", "already_in_province"),
        ("acknowledged", "acknowledged"),
        ("rejected (cannot be mapped)", "rejected"),
        ("refused by the province", "failed"),
        ("acknowledgement failed (retried next cycle)", "ack_failed"),
        ("checked for a withdrawal on the portal", "checked_for_withdrawal"),
        ("withdrawals applied", "withdrawn"),
        ("conflicts recorded", "conflicts"),
    )
    _print_counts("pull cycle", [(name, data[key]) for name, key in labels])


@sync_app.command("all")
def sync_all(as_json: JsonOpt = False) -> None:
    """One cycle of every job: push, then pull, then payments."""
    from adapter.sync.cycles import run_payments, run_pull, run_push

    settings = _live_settings()
    mset = _load_mappings(settings.province.mappings)
    push = asyncio.run(run_push(settings, mset))
    pull = asyncio.run(run_pull(settings, mset))
    payments = asyncio.run(run_payments(settings, mset))
    data = {"push": push.as_dict(), "pull": pull.as_dict(), "payments": payments.as_dict()}
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        _print_push(data["push"])
        _print_pull(data["pull"])
        _print_payments(data["payments"])
    ok = push.dead == 0 and pull.failed == 0 and pull.rejected == 0 and payments.errors == 0
    raise typer.Exit(0 if ok else 1)


@app.command("run")
def run() -> None:
    """Run as a service: push and pull on their [schedule], the inbound server on [server]
    host:port. Stop with Ctrl-C or SIGTERM. One per SQLite state store."""
    from rich.markup import escape

    from adapter.scheduler import AlreadyRunning, UnsafeToStart, run_service

    settings = _live_settings()
    mset = _load_mappings(settings.province.mappings)
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    try:
        asyncio.run(run_service(settings, mset))
    except UnsafeToStart as exc:
        err_console.print(f"[red]refusing to start[/red]\n{escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    except AlreadyRunning as exc:
        err_console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None


@sync_app.command("pull")
def sync_pull(as_json: JsonOpt = False) -> None:
    """One pull cycle: take in dossiers submitted on the portal, acknowledge each once created."""
    from adapter.sync.cycles import run_pull

    settings = _live_settings()
    summary = asyncio.run(run_pull(settings, _load_mappings(settings.province.mappings)))
    _report(summary.as_dict(), as_json, _print_pull, ok=summary.failed == 0 and summary.rejected == 0)


@sync_app.command("payments")
def sync_payments(as_json: JsonOpt = False) -> None:
    """One payment cycle: INIT for dossiers awaiting payment, QUERY unanswered attempts, save receipts."""
    from adapter.sync.cycles import run_payments

    settings = _live_settings()
    summary = asyncio.run(run_payments(settings, _load_mappings(settings.province.mappings)))
    _report(summary.as_dict(), as_json, _print_payments, ok=summary.errors == 0)


def _print_payments(data: dict[str, Any]) -> None:
    labels = (
        ("payment requests sent (INIT)", "initiated"),
        ("INIT refused (attempt failed)", "init_refused"),
        ("INIT unanswered (left created)", "init_unanswered"),
        ("attempts queried (QUERY)", "polled"),
        ("found paid", "paid"),
        ("found failed", "failed"),
        ("still pending", "pending"),
        ("receipts saved (GET_BILL)", "receipts"),
        ("errors", "errors"),
    )
    _print_counts("payment cycle", [(name, data[key]) for name, key in labels])
    for problem in data["problems"]:
        console.print(f"  {problem}", markup=False)


@app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """Backlog, last runs, quarantined records and dead letters."""
    from adapter.sync.status import collect_status

    settings = _settings()
    data = collect_status(settings)
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"dvcsync status ({_redact_url(settings.state.url)})")
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in data["backlog"].items():
        table.add_row(f"outbox {key}", str(value))
    table.add_row("dossiers known", str(data["dossiers"]))
    table.add_row("quarantined", str(data["quarantined_count"]))
    table.add_row("dead letters", str(data["dead_count"]))
    table.add_row("conflicts (for the reconciler)", str(len(data["conflicts"])))
    for key, value in sorted(data["inbox"].items()):
        table.add_row(f"inbox {key}", str(value))
    console.print(table)
    for conflict in data["conflicts"][:20]:
        console.print(
            f"  conflict {conflict['record_key']} {conflict['field']}:"
            f" province {conflict['province_value']!r}, portal {conflict['portal_value']!r}"
            f" — {conflict['note']}",
            markup=False,
            highlight=False,
        )
    if data["runs"]:
        runs = Table(title="last runs")
        for column in ("job", "started", "status", "pushed", "history", "quarantined", "dead"):
            runs.add_column(column)
        for run in data["runs"]:
            counts = run["counts"] or {}
            runs.add_row(
                run["job"],
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["started_at"])),
                run["status"],
                str(counts.get("dossiers_pushed", "")),
                str(counts.get("steps_pushed", "")),
                str((counts.get("enqueue") or {}).get("quarantined", "")),
                str(counts.get("dead", "")),
            )
        console.print(runs)
    for item in data["quarantined"][:20]:
        console.print(
            f"  quarantined {item['record_key']}: {item['reasons'][0]}", markup=False, highlight=False
        )
    for item in data["dead"][:20]:
        console.print(f"  dead {item['kind']} {item['record_key']}: {item['last_error']}", markup=False)


@dead_app.command("list")
def dead_list(as_json: JsonOpt = False) -> None:
    """Outbox entries that ran out of attempts or were refused by the portal."""
    from adapter.sync.status import list_dead

    rows = list_dead(_settings())
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title="dead letters")
    for column in ("id", "kind", "MaHoSo", "attempts", "last error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["id"]), row["kind"], row["record_key"], str(row["attempts"]), row["last_error"] or ""
        )
    console.print(table)


@dead_app.command("retry")
def dead_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Entry ids (default: all).")] = None,
) -> None:
    """Put dead letters back in the outbox; the next push delivers them."""
    from adapter.sync.status import requeue_dead

    count = requeue_dead(_settings(), ids or None)
    console.print(f"{count} dead letters back in the outbox")


@dead_app.command("discard")
def dead_discard(
    ids: Annotated[list[int], typer.Argument(help="Entry ids to discard.")],
) -> None:
    """Give up on dead letters (kept for the record as 'discarded')."""
    from adapter.sync.status import discard_dead

    count = discard_dead(_settings(), ids)
    console.print(f"{count} dead letters discarded")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the state store's tables."""
    from adapter.state import StateStore

    settings = _settings()
    store = StateStore(settings.state.url)
    store.upgrade()
    store.close()
    console.print(f"state store ready: {_redact_url(settings.state.url)}")


@db_app.command("prune")
def db_prune(
    keep_days: Annotated[
        float | None,
        typer.Option("--keep-days", help="Keep payloads this many days (default: state.keep_days, 30)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Strip personal data from delivered outbox payloads and settled inbox events older than the
    retention: each keeps its codes, hash and times. Pending and dead entries are never touched."""
    from adapter.sync.prune import run_prune

    settings = _settings()
    if keep_days is not None and not keep_days > 0:
        err_console.print(f"[red]--keep-days must be more than 0, not {keep_days}[/red]")
        raise typer.Exit(2)
    days = settings.state.keep_days if keep_days is None else keep_days
    counts = run_prune(settings, keep_days=days)
    if as_json:
        print(json.dumps({"keep_days": days, **counts}, ensure_ascii=False))
        return
    _print_counts(
        f"pruned: older than {days:g} days ({_redact_url(settings.state.url)})",
        [
            ("delivered outbox payloads", counts["outbox_done"]),
            ("superseded outbox payloads", counts["outbox_superseded"]),
            ("settled inbox events", counts["inbox"]),
        ],
    )


# ---------------------------------------------------------------- mock-portal


@app.command(
    "mock-portal",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def mock_portal(ctx: typer.Context) -> None:
    """Run the mock national portal and payment platform (arguments as `python -m mock_portal`;
    `dvcsync mock-portal --help` lists them)."""
    from mock_portal.cli import main as mock_main

    raise typer.Exit(mock_main(list(ctx.args)))


# ---------------------------------------------------------------- demo


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's files.")] = Path("demo-out"),
    dossiers: Annotated[int, typer.Option("--dossiers", "-n", min=1)] = 2000,
    seed: Annotated[int, typer.Option("--seed")] = 42,
) -> None:
    """Run the main job on the embedded defaults: a sample one-stop database pushed to the mock portal."""
    from adapter.sync.demo import run_demo

    raise typer.Exit(run_demo(out, dossiers=dossiers, seed=seed, console=console))


def main() -> None:
    from adapter._gc import tune_gc

    tune_gc()
    started = time.perf_counter()
    try:
        app()
    except ConfigError as exc:  # found late (e.g. a TLS file read when the client is built)
        err_console.print(f"configuration error\n{exc}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    finally:
        logging.getLogger(__name__).debug("done in %.2fs", time.perf_counter() - started)


if __name__ == "__main__":
    main()
