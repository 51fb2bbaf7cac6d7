"""What every ``dvcsync`` command shares: the Typer apps, consoles, options and the settings
and mappings loaders that turn bad input into exit 2 with the file and key."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dvcsync.config import ConfigError, Settings, published_secret_problems
from dvcsync.errors import ExitCode

from ._errors import cell_text

TENANT_ENV = "DVCSYNC_TENANT"
TenantOpt = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        metavar="CODE",
        help="The tenant (a [tenants.CODE] table) to act for; default: $DVCSYNC_TENANT. Needed when"
        " tenants are configured, except by status and run, which cover them all without it.",
        show_default=False,
    ),
]


class _TenantTyper(typer.Typer):
    """A Typer whose every command takes ``--tenant CODE`` (one place, so no command lacks it):
    the option is recorded for ``_settings`` and the command itself never sees it."""

    def command(  # type: ignore[override]
        self, name: str | None = None, *, tenant: bool = True, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(name, **kwargs)
        if not tenant:
            return register

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            register(_taking_tenant(func))
            return func

        return decorator


def _taking_tenant(func: Callable[..., Any]) -> Callable[..., Any]:
    import functools
    import inspect

    @functools.wraps(func)
    def command(*args: Any, tenant: str | None = None, **kwargs: Any) -> Any:
        if tenant is not None:
            _State.tenant = tenant
        return func(*args, **kwargs)

    signature = inspect.signature(func, eval_str=True)  # Typer reads the options from the annotations
    option = inspect.Parameter("tenant", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=TenantOpt)
    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), option]
    )
    command.__annotations__ = {**func.__annotations__, "tenant": TenantOpt}
    return command


app = _TenantTyper(
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
mappings_app = _TenantTyper(help="Check the mapping specs or export their JSON Schema.", no_args_is_help=True)
push_app = _TenantTyper(help="One-off pushes of single records.", no_args_is_help=True)
sync_app = _TenantTyper(help="Run one cycle of a sync job.", no_args_is_help=True)
dead_app = _TenantTyper(help="Dead letters: list, retry or discard.", no_args_is_help=True)
db_app = _TenantTyper(help="The state store.", no_args_is_help=True)
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
    tenant: str | None = None


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"dvcsync {version('dvcsync')}")
        except PackageNotFoundError:  # running from a checkout that was never installed
            print("dvcsync (not installed)")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _main(
    config: ConfigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more (DEBUG).")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    tenant: TenantOpt = None,
) -> None:
    _State.config = config
    _State.verbose = verbose
    _State.tenant = tenant
    from dvcsync.logs import configure_logging

    configure_logging(logging.DEBUG if verbose else logging.WARNING)  # until the settings say more


def _loaded(**overrides: Any) -> Settings:
    """The whole configuration (every tenant's included), or exit 2 saying what is wrong."""
    try:
        return Settings.load(_State.config, **overrides)
    except ConfigError as exc:
        err_console.print("[red]configuration error[/red]")
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)  # [tenants.x] stays
        raise typer.Exit(exc.exit_code) from None


def _chosen_tenant() -> tuple[str | None, str]:
    """``--tenant`` (on the command, else before it), else ``$DVCSYNC_TENANT``; None if neither,
    and how it was given (for messages)."""
    import os

    if _State.tenant:
        return _State.tenant, f"--tenant {_State.tenant}"
    code = os.environ.get(TENANT_ENV) or None
    return code, f"{TENANT_ENV}={code}"


def _tenant_of(settings: Settings, code: str, given: str) -> Settings:
    from dvcsync.tenants import for_tenant, tenant_codes

    if not tenant_codes(settings):
        _refuse(f"{given}: no tenants are configured ({_where()})")
    try:
        return for_tenant(settings, code)
    except ConfigError as exc:
        _refuse(f"{given}: {exc}")


def _where() -> str:
    from dvcsync.config import _config_path

    path = _config_path(_State.config)
    return f"no [tenants.<code>] tables in {path}" if path is not None else "no configuration file"


def _refuse(message: str) -> NoReturn:
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(ExitCode.INVALID)


def _settings(**overrides: Any) -> Settings:
    """The settings a command acts on: the configuration's, or with tenants the chosen tenant's
    (``--tenant``; exit 2 naming the known codes without one)."""
    settings = _loaded(**overrides)
    code, given = _chosen_tenant()
    if code is not None:
        settings = _tenant_of(settings, code, given)
    else:
        from dvcsync.tenants import tenant_codes

        codes = tenant_codes(settings)
        if codes:
            _refuse(
                f"this configuration serves {len(codes)} tenants ({', '.join(codes)}):"
                f" say which with --tenant CODE (or {TENANT_ENV})"
            )
    _apply_log(settings)
    return settings


def _every_tenant(**overrides: Any) -> tuple[Settings, dict[str, Settings]]:
    """For the commands that cover every tenant without ``--tenant`` (status, run): the whole
    configuration, and the tenants to act for by code (``{"": settings}`` without tenants)."""
    from dvcsync.tenants import each_tenant

    settings = _loaded(**overrides)
    code, given = _chosen_tenant()
    chosen = {code: _tenant_of(settings, code, given)} if code is not None else each_tenant(settings)
    _apply_log(next(iter(chosen.values())) if code is not None else settings)
    return settings, chosen


def _apply_log(settings: Settings) -> None:
    from dvcsync.logs import apply_log_settings

    apply_log_settings(settings.log, _State.verbose)  # one-off commands: WARNING unless [log] level


def _refuse_published_secrets(settings: Settings) -> None:
    problems = published_secret_problems(settings)
    if problems:
        tenant = f" (tenant {settings.tenant})" if settings.tenant else ""
        err_console.print(f"[red]refusing to run with the mock's published secrets{tenant}[/red]")
        for problem in problems:
            err_console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.INVALID)


def _live_settings(**overrides: Any) -> Settings:
    """Settings for a command that talks to the portal or the payment platform: the mock's
    published password or payment secret is refused (exit 2) before anything is done, unless
    everything it would reach stays on this machine."""
    settings = _settings(**overrides)
    _refuse_published_secrets(settings)
    return settings


def _load_mappings(folder: Path) -> Any:
    """The folder's specs with everything the jobs need (``dvcsync.mapping.required``: every job
    runs under ``dvcsync run``), or exit 2 naming each bad or missing file."""
    from dvcsync.mapping import MappingSpecError, load_mappings
    from dvcsync.mapping.required import JOBS

    try:
        return load_mappings(folder, require=JOBS)
    except MappingSpecError as exc:
        err_console.print(f"[red]invalid mapping specs in {folder}[/red]")
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)  # file:line stays whole
        raise typer.Exit(exc.exit_code) from None


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
    raise typer.Exit(ExitCode.OK if ok else ExitCode.PROBLEMS)


def _print_counts(title: str, rows: list[tuple[str, Any]]) -> None:
    """A job cycle's summary: one row per count."""
    table = Table(title=cell_text(title))
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, value in rows:
        table.add_row(cell_text(name), cell_text(value))
    console.print(table)


def _redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as its scheme only
        return url.split(":", 1)[0] + ":…"


T = TypeVar("T")


@contextmanager
def _writing(
    settings: Settings, what: str, *, exclusive: bool = False, create: bool = False, identity: bool = True
) -> Iterator[None]:
    """Hold the state's writer lock for the command (exit 3 when another process keeps it);
    on PostgreSQL shared with replicas unless ``exclusive`` (a schema upgrade waits for all).
    Only a command that ``create``s may meet a state that does not exist (else exit 2, nothing
    created on the way); a state of another province or portal is refused (exit 2)."""
    from dvcsync.sync.state_lock import StateBusy, holding_state
    from dvcsync.tenants import ensure_schema

    if not create:
        _require_state(settings, what)
    ensure_schema(settings.state.url)  # a tenant's PostgreSQL schema, before anything migrates it
    try:
        url, wait_s = settings.state.url, settings.state.lock_wait_s
        with holding_state(url, wait_s=wait_s, what=what, exclusive=exclusive):
            if identity:
                _check_identity(settings, create=create)
            yield
    except StateBusy as exc:
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def _require_state(settings: Settings, what: str) -> None:
    """Exit 2 naming the path and the commands that create a state, when there is none."""
    from dvcsync.sync.state_guard import StateMissing, require_state

    try:
        require_state(settings, what)
    except StateMissing as exc:
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def _check_identity(settings: Settings, *, create: bool = False) -> None:
    """Record the configuration's identity on the state, or exit 2 when it serves another.
    ``create``: an empty state is made first (adopt); a state at another revision is left to
    the command (it refuses it, or migrates it)."""
    from dvcsync.state import StateStore
    from dvcsync.sync.state_guard import IdentityMismatch, check_identity

    store = StateStore(settings.state.url)
    try:
        current, head = store.schema_status()
        if current is None and create:
            store.prepare()
            current = head
        if current == head:
            check_identity(store, settings)
    except IdentityMismatch as exc:
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    finally:
        store.close()


def _run_cycles(
    settings: Settings, what: str, make: Callable[[], Coroutine[Any, Any, T]], *, create: bool = False
) -> T:
    """Run a command's cycles under the state lock; an unreachable portal is exit 4, said plainly."""
    from dvcsync.portal import UnreachableError

    with _writing(settings, what, create=create):
        try:
            return asyncio.run(make())
        except UnreachableError as exc:
            err_console.print(
                f"portal unreachable: {exc.detail}", markup=False, highlight=False, soft_wrap=True
            )
            raise typer.Exit(exc.exit_code) from None
