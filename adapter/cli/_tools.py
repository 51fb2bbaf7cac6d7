"""Commands around the adapter: the sample database, mapping checks, the mock portal, the demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

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


# ---------------------------------------------------------------- mock-portal


# ---------------------------------------------------------------- demo


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's files.")] = Path("demo-out"),
    dossiers: Annotated[int, typer.Option("--dossiers", "-n", min=1)] = 2000,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    mappings: Annotated[
        Path | None, typer.Option("--mappings", help="Mapping folder; default: the ones dvcsync ships.")
    ] = None,
) -> None:
    """Run the main job on the embedded defaults: a sample one-stop database pushed to the mock portal.

    It reads no configuration file and no DVCSYNC_ variable: everything it writes stays in --out.
    """
    from adapter.demo import run_demo

    raise typer.Exit(run_demo(out, dossiers=dossiers, seed=seed, console=console, mappings=mappings))
