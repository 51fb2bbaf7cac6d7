"""`dvcsync config show|check`: the effective configuration with where each value came from, and
a check of everything that can be checked before a first run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, SecretStr
from rich.markup import escape
from rich.table import Table

from dvcsync.config import Settings
from dvcsync.errors import ExitCode

from ._common import (
    JsonOpt,
    _every_tenant,
    _redact_url,
    _State,
    _TenantTyper,
    app,
    console,
    err_console,
)
from ._errors import terminal_text

config_app = _TenantTyper(help="The effective configuration: show it, check it.", no_args_is_help=True)
app.add_typer(config_app, name="config")

_URL_KEYS = frozenset({"province.source_url", "province.sink_url", "state.url"})


def _flatten(model: BaseModel, prefix: str = "") -> list[tuple[str, Any]]:
    """Every leaf setting as ``("section.key", value)``, secrets masked and URLs without passwords."""
    out: list[tuple[str, Any]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            out.extend(_flatten(value, key + "."))
        elif isinstance(value, SecretStr):
            out.append((key, "********" if value.get_secret_value() else ""))
        elif key in _URL_KEYS and isinstance(value, str) and value:
            out.append((key, _redact_url(value)))
        elif isinstance(value, Path):
            out.append((key, str(value)))
        elif isinstance(value, list):
            out.append((key, [str(v) for v in value]))
        else:
            out.append((key, value))
    return out


@config_app.command("show")
def config_show(
    as_json: JsonOpt = False,
    changed: Annotated[bool, typer.Option("--changed", help="Only values that are not defaults.")] = False,
) -> None:
    """Every setting in effect, with where it came from (command line, environment, file or
    default). Secrets are masked. With tenants: one tenant's merged settings with --tenant,
    else the shared ones and the tenants' codes."""
    from dvcsync.tenants import tenant_codes

    settings, chosen = _every_tenant()
    shown = next(iter(chosen.values())) if len(chosen) == 1 else settings
    rows = [(key, value, shown.origin(key)) for key, value in _flatten(shown) if key != "tenants"]
    if changed:
        rows = [row for row in rows if row[2] != "default"]
    codes = tenant_codes(settings)
    if shown.tenant:
        given = "--tenant" if _State.tenant else "environment DVCSYNC_TENANT"
        rows.insert(0, ("tenant", shown.tenant, given))
    elif codes:
        rows.insert(0, ("tenants", codes, "shared values below; --tenant CODE shows one tenant's"))
    if as_json:
        print(json.dumps({k: {"value": v, "from": o} for k, v, o in rows}, ensure_ascii=False, default=str))
        return
    title = f"dvcsync configuration (tenant {shown.tenant})" if shown.tenant else "dvcsync configuration"
    table = Table(title=title)
    for column in ("key", "value", "from"):
        table.add_column(column)
    for key, value, origin in rows:
        shown_value = ", ".join(value) if key == "tenants" else str(value)
        table.add_row(escape(key), escape(shown_value), escape(origin))  # "[tenants.x]" is not markup
    console.print(table)


@config_app.command("check")
def config_check(as_json: JsonOpt = False) -> None:
    """Load the configuration and the mapping specs, and check what a first run would trip on:
    the mock's published secrets off loopback, an inbound server open to anyone, missing files,
    a province database or a state it cannot open (both are opened, read only); every tenant's
    (or the one --tenant names). Exit 0 when
    nothing was found, 1 otherwise, 2 when the configuration itself is invalid (mapping specs
    included: a bad, missing or empty spec a job needs)."""
    from dvcsync.scheduler import _tenant_server_problems  # what `run` refuses: checked the same way
    from dvcsync.server import listen_problems

    settings, chosen = _every_tenant()
    problems = listen_problems(settings.server)  # one inbound server, however many tenants
    invalid = False  # invalid mapping specs are invalid configuration: exit 2, as every command
    for code, own in chosen.items():
        mapping_problems = _mapping_problems(own)
        invalid = invalid or bool(mapping_problems)
        problems += [f"tenant {code}: {p}" if code else p for p in mapping_problems + _problems(own)]
        if code and own.server != settings.server:
            problems += _tenant_server_problems(code, own, settings)
    if as_json:
        print(json.dumps({"ok": not problems, "invalid": invalid, "problems": problems}, ensure_ascii=False))
    elif problems:
        err_console.print(f"{len(problems)} problem(s):", markup=False)
        for problem in problems:
            err_console.print(f"  - {terminal_text(problem)}", markup=False, highlight=False, soft_wrap=True)
    else:
        tenants = f" ({len(chosen)} tenants)" if "" not in chosen else ""
        console.print(f"configuration OK{tenants}", markup=False)
    if problems:
        raise typer.Exit(ExitCode.INVALID if invalid else ExitCode.PROBLEMS)


def _mapping_problems(settings: Settings) -> list[str]:
    """The mapping specs as every command loads them: each bad, missing or empty file a job
    needs (dvcsync.mapping.required), one problem a line with its file, line and key."""
    from dvcsync.mapping import MappingSpecError, load_mappings
    from dvcsync.mapping.required import JOBS

    try:
        load_mappings(settings.province.mappings, require=JOBS)
    except MappingSpecError as exc:
        return [f"mappings: {line}" for line in str(exc).splitlines()]
    return []


def _problems(settings: Settings) -> list[str]:
    """What one tenant's (or the only) settings would trip on, the inbound server and the
    mapping specs aside."""
    from dvcsync.config import published_secret_problems

    problems: list[str] = []
    problems += published_secret_problems(settings)
    for section in (settings.portal, settings.payment):
        for name in ("ca_bundle", "client_cert", "client_key"):
            path = getattr(section, name)
            if path is not None and not Path(path).is_file():
                where = "portal" if section is settings.portal else "payment"
                problems.append(f"[{where}] {name} = {str(path)!r}: no such file")
    from ._reach import source_problems, state_problems

    problems += source_problems(settings)  # opened as a run would, read only
    problems += state_problems(settings)
    return problems
