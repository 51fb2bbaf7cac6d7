"""``dvcsync demo``: the main job on the embedded defaults, in one command, for a fresh machine."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from adapter.mapping import MappingSpecError, load_mappings
from adapter.province.sample import generate
from adapter.sync.mapping_check import check_mappings

DEFAULT_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def run_demo(out: Path, *, dossiers: int, seed: int, console: Console, mappings: Path | None = None) -> int:
    out.mkdir(parents=True, exist_ok=True)
    db = out / "onestop.db"
    folder = mappings or (Path("mappings") if Path("mappings").is_dir() else DEFAULT_MAPPINGS)

    started = time.perf_counter()
    stats = generate(db, dossiers, seed, overwrite=True)
    generated = time.perf_counter() - started
    console.print(f"[bold]1.[/bold] sample one-stop database: {db} ({dossiers} dossiers, {generated:.2f}s)")

    try:
        mset = load_mappings(folder)
    except MappingSpecError as exc:
        console.print(f"[red]invalid mappings in {folder}[/red]\n{exc}", markup=False)
        return 2
    started = time.perf_counter()
    report = check_mappings(mset, f"sqlite:///{db}")
    mapped = time.perf_counter() - started
    console.print(f"[bold]2.[/bold] mapped every record through {folder}/ in {mapped:.2f}s")

    table = Table(title="demo summary")
    table.add_column("mapping")
    table.add_column("records", justify="right")
    table.add_column("mapped", justify="right")
    table.add_column("quarantined", justify="right")
    for name, count in sorted(report.records.items()):
        failed = report.failed.get(name, 0)
        table.add_row(name, str(count), str(count - failed), str(failed))
    console.print(table)
    for failure in report.rows()[:10]:
        example = failure.examples[0]
        console.print(
            f"  quarantined: {failure.count} × {failure.mapping}.{failure.field}: {example}", markup=False
        )
    console.print(f"files: {out}/  (stats: {stats})", markup=False, highlight=False)
    return 0
