"""Commands around the adapter: a new configuration, the sample database, mapping checks, the demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from dvcsync.errors import ExitCode

from ._common import (
    JsonOpt,
    _load_mappings,
    _progress,
    _redact_url,
    _settings,
    app,
    console,
    err_console,
    mappings_app,
)

# ---------------------------------------------------------------- init

_INIT_CONFIG = "dvcsync.toml"
_INIT_MAPPINGS = "mappings"
# Keys a province sets for itself: written live. Everything else is written commented out with its
# default, so a later release's better default still applies where nobody chose otherwise.
_LIVE = {
    "province.source_url",
    "province.sink_url",
    "province.mappings",
    "portal.adapter_url",
    "portal.soap_url",
    "portal.transport",
    "portal.username",
    "portal.dstcode",
    "portal.madonvi",
    "payment.init_url",
    "payment.query_url",
    "payment.bill_url",
    "payment.partner_code",
    "state.url",
    "server.host",
    "server.port",
    "log.level",
    "log.format",
}
# Secrets are never values in the file, only files (`*_file`) or DVCSYNC_…_FILE variables.
_SECRETS = {"portal.password", "payment.secret", "token"}
_NOTES = {
    "province": "the province's one-stop system",
    "province.source_url": "SQLAlchemy URL of the one-stop database (read); PostgreSQL: "
    "postgresql+psycopg2://user@host/motcua",
    "province.sink_url": "where inbound changes are written; empty = source_url",
    "province.mappings": "the mapping specs and code tables (the copy `dvcsync init` wrote beside this file)",
    "portal": "the national portal (REST and/or SOAP); the defaults are the mock portal on 127.0.0.1:8080",
    "portal.verify": "TLS verification; false only against a test server",
    "portal.ca_bundle": "replaces the system CAs (a provincial LGSP's own CA)",
    "portal.client_cert": "mutual TLS where the integration platform asks for it",
    "portal.transport": "rest | soap",
    "portal.transport_by_service": "per-service transport where it differs from transport",
    "portal.password_file": "the portal password (or DVCSYNC_PORTAL__PASSWORD_FILE; systemd: "
    "%d/portal-password); the built-in one is the mock's and is refused for a remote portal",
    "portal.dstcode": "the province's code on the portal",
    "portal.madonvi": "the province's agency code on the portal",
    "portal.batch_size": "dossiers per DongBoHoSoMC call",
    "portal.concurrency": "calls in flight",
    "portal.rate_limit": "calls per second",
    "portal.timeout": "seconds per call",
    "payment": "the payment platform",
    "payment.secret_file": "the signing secret (or DVCSYNC_PAYMENT__SECRET_FILE); the built-in one is"
    " the mock's",
    "payment.poll_min_age_s": "a payment unanswered this long is asked for by QUERY",
    "push": "province → portal",
    "state": "the adapter's own store",
    "state.url": "SQLite (created 0600) or postgresql+psycopg2://…",
    "server": "the inbound server (payment callbacks, portal pushes, /healthz, /metrics); see SECURITY.md",
    "server.host": "a non-loopback address needs allow, token_file or tls_client_ca",
    "server.allow": "CIDRs allowed on every inbound path; unset = loopback only",
    "server.token_file": "callers send 'Authorization: Bearer <token>' (>= 16 characters)",
    "server.tls_cert": "TLS on the inbound server itself (with tls_key)",
    "server.tls_client_ca": "mutual TLS: a client certificate of this CA is required",
    "server.payment": "the payment platform's paths: own allow and token (else [server]'s)",
    "server.portal": "/inbound/dvcqg/*: the portal's pushes",
    "server.monitoring": "/metrics, /readyz, /docs",
    "schedule": "'every <n>s|m|h' or a 5-field cron expression",
    "log": "level DEBUG | INFO | WARNING | ERROR; format text | json",
}
_EXAMPLES = {
    "ca_bundle": "/etc/dvcsync/lgsp-ca.pem",
    "client_cert": "/etc/dvcsync/client.pem",
    "client_key": "/etc/dvcsync/client.key",
    "password_file": "/run/secrets/portal-password",
    "secret_file": "/run/secrets/payment-secret",
    "token_file": "/run/secrets/inbound-token",
    "server.payment.token_file": "/run/secrets/payment-callback-token",
    "server.portal.token_file": "/run/secrets/portal-push-token",
    "server.monitoring.token_file": "/run/secrets/monitoring-token",
    "transport_by_service": {"TraCuuHoSo": "soap"},
    "receipts_dir": "receipts",
    "allow": ["10.0.0.0/8"],
    "tls_cert": "/etc/dvcsync/server.pem",
    "tls_key": "/etc/dvcsync/server.key",
    "tls_client_ca": "/etc/dvcsync/callers-ca.pem",
    "max_in_flight_per_group": 8,
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _commented_config() -> str:
    """Every section and key of the configuration with its default, from the settings models
    themselves (so a key added later is never missing), plus what each is for."""
    from pydantic import BaseModel

    from dvcsync.config import Settings

    out = [
        "# dvcsync configuration, written by `dvcsync init`.",
        "# Relative paths (and relative SQLite files) resolve against this file's folder.",
        "# Every key can be overridden by DVCSYNC_<SECTION>__<KEY>, e.g. DVCSYNC_PORTAL__ADAPTER_URL.",
        "# Secrets never go in this file: *_file keys or DVCSYNC_..._FILE variables name files holding them.",
        "# Commented keys show their defaults. Unknown keys are errors.",
    ]

    def section(model: type[BaseModel], name: str) -> None:
        out.extend(["", f"[{name}]" + (f"  # {_NOTES[name]}" if name in _NOTES else "")])
        nested = []
        for key, field in model.model_fields.items():
            dotted = f"{name}.{key}"
            default = field.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                nested.append((type(default), dotted))
                continue
            if dotted in _SECRETS or key in _SECRETS:
                continue
            if (field.description or "").startswith("deprecated"):
                continue  # kept for configurations written before; a new one never names them
            if dotted == "province.mappings":
                default = _INIT_MAPPINGS
            live = dotted in _LIVE
            if default is None or default == {}:
                default, live = _EXAMPLES.get(dotted, _EXAMPLES.get(key, "")), False
            note = _NOTES.get(dotted) or field.description
            line = f"{'' if live else '# '}{key} = {_toml_value(default)}"
            out.append(f"{line}  # {note}" if note else line)
        for model_, dotted in nested:
            section(model_, dotted)

    for key, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            section(type(default), key)
    out.extend(
        [
            "",
            "[tenants]  # several provinces in one deployment: none by default (docs/tenants.md)",
            "# One [tenants.<code>.<section>] table per province and section it changes (code: a-z, 0-9,",
            "# - and _), overriding the values above for that tenant; every command then takes --tenant.",
            "# Each tenant's state is its own. For example:",
            "#   [tenants.tinh-a.province]",
            '#   source_url = "postgresql+psycopg2://dvcsync@onestop-a.example/onestop"',
            "#   [tenants.tinh-a.portal]",
            "#   dstcode = ...  # that province's codes and credentials",
            '#   password_file = "/run/secrets/tinh-a-portal-password"',
        ]
    )
    return "\n".join(out) + "\n"


@app.command("init", tenant=False)
def init(
    folder: Annotated[Path, typer.Argument(help="Where to write dvcsync.toml and mappings/.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
    profile: Annotated[
        str, typer.Option("--profile", help="Whose mappings: sample (dvcsync's own schema) or opencps (v2).")
    ] = "sample",
) -> None:
    """Start a configuration: an editable copy of the shipped mappings and a commented dvcsync.toml.

    An installed dvcsync runs on the mappings it ships; a province adapts them to its own schema,
    so they are copied out to be edited and versioned with the configuration.
    """
    import shutil

    from dvcsync._resources import PROFILES, profile_mappings

    if profile not in PROFILES:
        err_console.print(f"[red]unknown --profile {profile!r}[/red]; known: {', '.join(PROFILES)}")
        raise typer.Exit(ExitCode.INVALID)
    folder = folder.resolve()
    config, mappings = folder / _INIT_CONFIG, folder / _INIT_MAPPINGS
    shipped = profile_mappings(profile)
    files = sorted(p.relative_to(shipped) for p in shipped.rglob("*.yaml"))
    existing = [str(config)] if config.exists() else []
    clashes = sum((mappings / f).exists() for f in files)
    if clashes:
        existing.append(f"{mappings}/ ({clashes} of the {len(files)} files)")
    if existing and not force:
        err_console.print(f"[red]exists[/red]: {', '.join(existing)}", soft_wrap=True, highlight=False)
        err_console.print("nothing written; pass --force to overwrite")
        raise typer.Exit(ExitCode.INVALID)
    for name in files:
        (mappings / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shipped / name, mappings / name)
    config.write_text(_commented_config(), encoding="utf-8")
    console.print(f"wrote {config}", soft_wrap=True, highlight=False)
    console.print(f"wrote {mappings}/ ({len(files)} mapping specs and code tables)", soft_wrap=True)
    option = "" if folder == Path.cwd().resolve() else f" --config {config}"
    console.print(
        "next:\n"
        f"  1. edit {config}: [province] source_url, [portal] adapter_url, username, dstcode, madonvi;\n"
        "     secrets as files: [portal] password_file, [payment] secret_file, [server] token_file\n"
        f"  2. adapt {mappings}/ to your one-stop schema, then: dvcsync{option} mappings check\n"
        f"  3. dvcsync{option} db upgrade (or, when another integration has pushed this province's\n"
        f"     dossiers already: dvcsync{option} adopt),\n"
        f"     then dvcsync{option} sync push, then dvcsync{option} run",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )


# ---------------------------------------------------------------- sample-db


@app.command("sample-db", tenant=False)
def sample_db(
    out: Annotated[Path, typer.Option("--out", "-o", help="SQLite file to create.")] = Path("onestop.db"),
    dossiers: Annotated[int, typer.Option("--dossiers", "-n", min=0, help="Number of dossiers.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same data.")] = 42,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
    profile: Annotated[
        str, typer.Option("--profile", help="Which one-stop system: sample (dvcsync's own) or opencps (v2).")
    ] = "sample",
    as_json: JsonOpt = False,
) -> None:
    """Generate a sample one-stop database (realistic, deterministic for a seed)."""
    from dvcsync._resources import PROFILES

    if profile not in PROFILES:
        err_console.print(f"[red]unknown --profile {profile!r}[/red]; known: {', '.join(PROFILES)}")
        raise typer.Exit(ExitCode.INVALID)
    if profile == "opencps":
        from dvcsync.province.sample.opencps import generate
    else:
        from dvcsync.province.sample import generate  # type: ignore[assignment]

    if out.exists() and not overwrite:
        err_console.print(f"[red]{out} exists[/red]; pass --overwrite to replace it")
        raise typer.Exit(ExitCode.INVALID)
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

    Every spec is run as its job runs it (outbound, applies_to, steps, payments, the inbound
    dossier as a round trip); records left out on purpose (a code table's skip, a source's
    where) are listed apart. Exit code 0 when every record maps or is left out on purpose, 1 when
    some fail, 2 when the specs (a missing one a job needs included) or configuration are invalid.
    """
    from dvcsync.sync.mapping_check import check_mappings

    settings = _settings()
    folder = mappings or settings.province.mappings
    url = source_url or settings.province.source_url
    mset = _load_mappings(folder)
    from sqlalchemy.exc import SQLAlchemyError

    from dvcsync.province.source import SourceUnavailable

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
        raise typer.Exit(ExitCode.INVALID) from None
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        _print_check(report, folder, url)
    raise typer.Exit(ExitCode.OK if report.ok else ExitCode.PROBLEMS)


def _print_check(report: Any, folder: Path, url: str) -> None:
    totals = Table(title=f"mappings {folder} over {_redact_url(url)}")
    for column in ("mapping", "records", "mapped", "left out", "failed"):
        totals.add_column(column, justify="right" if column != "mapping" else "left")
    for name, count in sorted(report.records.items()):
        failed, skipped = report.failed.get(name, 0), report.skipped.get(name, 0)
        totals.add_row(
            name,
            str(count),
            str(count - failed - skipped),
            str(skipped),
            f"[red]{failed}[/red]" if failed else "0",
        )
    console.print(totals)
    coverage = Table(title="how each spec was checked")
    for column in ("mapping", "run over"):
        coverage.add_column(column, overflow="fold")
    for name, how in report.coverage.items():
        coverage.add_row(name, escape(how))
    console.print(coverage)
    skips = report.skip_rows()
    if skips:
        table = Table(title="left out on purpose (not failures)")
        for column in ("mapping", "reason", "records", "example"):
            table.add_column(column, overflow="fold")
        for skip in skips:
            table.add_row(skip.mapping, escape(skip.reason), str(skip.count), escape(skip.examples[0]))
        console.print(table)
    rows = report.rows()
    if not rows:
        console.print("[green]every record maps[/green]" + (" (or is left out on purpose)" if skips else ""))
        return
    table = Table(title="failures by field")
    for column in ("mapping", "field", "source", "records", "example"):
        table.add_column(column, overflow="fold")
    for failure in rows:
        example = failure.examples[0]
        table.add_row(
            failure.mapping,
            escape(failure.field),
            failure.source,
            str(failure.count),
            escape(f"{example.record}: {example.value}: {example.reason}"),
        )
    console.print(table)


@mappings_app.command("compile")
def mappings_compile(
    show: Annotated[
        str | None, typer.Option("--show", help="Print this spec's generated Python source.")
    ] = None,
    mappings: Annotated[Path | None, typer.Option("--mappings", help="Override [province] mappings.")] = None,
) -> None:
    """Compile every mapping spec to its Python function (what the sync runs) and list them, or
    print one's generated source, to see exactly what a spec does to a record."""
    from dvcsync.mapping.compiled import source_of, spec_hash

    folder = mappings or _settings().province.mappings
    mset = _load_mappings(folder)
    names = mset.names()
    if show is not None:
        if show not in names:
            known = ", ".join(names)
            err_console.print(f"no mapping {escape(repr(show))} in {escape(str(folder))}: one of {known}")
            raise typer.Exit(ExitCode.INVALID)
        sys.stdout.write(source_of(mset.get(show)))
        return
    table = Table(title=f"mappings compiled from {escape(str(folder))}")
    for column in ("mapping", "fields", "lines", "spec hash"):
        table.add_column(column)
    for name in names:
        compiled = mset.get(name)
        lines = source_of(compiled).count("\n")
        table.add_row(escape(name), str(len(compiled.spec.fields)), str(lines), spec_hash(compiled)[:12])
    console.print(table)


@mappings_app.command("schema", tenant=False)
def mappings_schema(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="'mapping' or 'codes'.")] = "mapping",
) -> None:
    """Write the JSON Schema of the mapping-spec format (or of code tables), for editors."""
    from dvcsync.mapping import CodeTableSpec, MappingSpec

    if kind not in {"mapping", "codes"}:
        err_console.print(f"[red]--kind must be 'mapping' or 'codes', not {kind!r}[/red]")
        raise typer.Exit(ExitCode.INVALID)
    model = MappingSpec if kind == "mapping" else CodeTableSpec
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    text = json.dumps(schema, ensure_ascii=False, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {out}")


# ---------------------------------------------------------------- mock-portal


# ---------------------------------------------------------------- demo


@app.command(tenant=False)  # its own folder and settings, never a configured tenant
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's files.")] = Path("demo-out"),
    dossiers: Annotated[int, typer.Option("--dossiers", "-n", min=1)] = 2000,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    mappings: Annotated[
        Path | None, typer.Option("--mappings", help="Mapping folder; default: the ones dvcsync ships.")
    ] = None,
    profile: Annotated[
        str, typer.Option("--profile", help="Which one-stop system: sample (dvcsync's own) or opencps (v2).")
    ] = "sample",
) -> None:
    """Run the main job on the embedded defaults: a sample one-stop database pushed to the mock portal.

    It reads no configuration file and no DVCSYNC_ variable: everything it writes stays in --out.
    """
    from dvcsync._resources import PROFILES
    from dvcsync.demo import run_demo

    if profile not in PROFILES:
        err_console.print(f"[red]unknown --profile {profile!r}[/red]; known: {', '.join(PROFILES)}")
        raise typer.Exit(ExitCode.INVALID)
    raise typer.Exit(
        run_demo(out, dossiers=dossiers, seed=seed, console=console, mappings=mappings, profile=profile)
    )
