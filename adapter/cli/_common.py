"""What every ``dvcsync`` command shares: the Typer apps, consoles, options and the settings
and mappings loaders that turn bad input into exit 2 with the file and key."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

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
    rich_markup_mode="markdown",  # help texts name [sections]: markdown keeps them, rich markup ate them
    epilog="Exit codes: 0 done; 1 ran and found problems; 2 invalid input (configuration, specs,"
    " arguments, an out-of-date state schema); 3 another dvcsync process holds the state; 4 the"
    " portal could not be reached.",
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
    verbose: bool = False


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"dvcsync {version('dvcsync')}")
        except PackageNotFoundError:  # running from a checkout that was never installed
            print("dvcsync (not installed)")
        raise typer.Exit(0)


@app.callback()
def _main(
    config: ConfigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more (DEBUG).")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    _State.config = config
    _State.verbose = verbose
    from adapter.logs import configure_logging

    configure_logging(logging.DEBUG if verbose else logging.WARNING)  # until the settings say more


def _settings(**overrides: Any) -> Settings:
    try:
        settings = Settings.load(_State.config, **overrides)
    except ConfigError as exc:
        err_console.print(f"[red]configuration error[/red]\n{exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    from adapter.logs import apply_log_settings

    apply_log_settings(settings.log, _State.verbose)  # one-off commands: WARNING unless [log] level
    return settings


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


def _redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as its scheme only
        return url.split(":", 1)[0] + ":…"


T = TypeVar("T")

# Exit codes (README "Commands"): 0 done, 1 ran and found problems, 2 invalid input,
# 3 another process holds the state, 4 the portal could not be reached.
EXIT_PROBLEMS, EXIT_INVALID, EXIT_BUSY, EXIT_UNREACHABLE = 1, 2, 3, 4


@contextmanager
def _writing(settings: Settings, what: str) -> Iterator[None]:
    """Hold the state's writer lock for the command (exit 3 when another process keeps it)."""
    from adapter.sync.state_lock import StateBusy, holding_state

    try:
        with holding_state(settings.state.url, wait_s=settings.state.lock_wait_s, what=what):
            yield
    except StateBusy as exc:
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_BUSY) from None


def _run_cycles(settings: Settings, what: str, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a command's cycles under the state lock; an unreachable portal is exit 4, said plainly."""
    from adapter.portal import UnreachableError

    with _writing(settings, what):
        try:
            return asyncio.run(make())
        except UnreachableError as exc:
            err_console.print(
                f"portal unreachable: {exc.detail}", markup=False, highlight=False, soft_wrap=True
            )
            raise typer.Exit(EXIT_UNREACHABLE) from None
