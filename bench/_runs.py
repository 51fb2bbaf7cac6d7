"""What every benchmark shares (issue 23 item 4): the machine it ran on, the load average at the
start and end of its run, and its measurement repeated ``--runs`` times with the median kept, so
that a figure from a quiet machine can be told from one taken while others' tests ran.

Import it as ``bench._runs`` after putting the repository on the path (the benchmarks run with
``python -P``, which leaves ``bench/`` off it)::

    sys.path.append(str(Path(__file__).resolve().parents[1]))
    from bench._runs import Load, add_runs_option, median_runs  # noqa: E402
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path

RUNS = 3


def add_runs_option(parser: argparse.ArgumentParser, default: int = RUNS) -> None:
    parser.add_argument(
        "--runs",
        type=int,
        default=default,
        help=f"times the measurement runs, the median kept (default {default})",
    )


def machine() -> str:
    """nproc, the CPU model (/proc/cpuinfo), Python and SQLite: the line BENCHMARKS.md quotes."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        cpuinfo = []
    model = next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "?")
    return (
        f"{platform.machine()}, {model}, nproc {os.cpu_count()}, Python {platform.python_version()},"
        f" SQLite {sqlite3.sqlite_version}"
    )


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


class Load:
    """Prints the machine and the load average when the run starts, and again when it ends."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.start = load_average()
        self.end: tuple[float, float, float] | None = None
        print(f"{name}: {machine()}")
        print(f"{name}: load average (1/5/15 min) at start {_shown(self.start)}", flush=True)

    def finish(self) -> tuple[float, float, float]:
        self.end = load_average()
        print(
            f"{self.name}: load average (1/5/15 min) at start {_shown(self.start)},"
            f" at end {_shown(self.end)}",
            flush=True,
        )
        return self.end


def _shown(load: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def median_runs(runs: int, measure: Callable[[int], Mapping[str, float]]) -> dict[str, list[float]]:
    """``measure(run)`` ``runs`` times (at least once); every figure's values, in run order.
    Each run prints its own load average, so a run disturbed by a neighbour stands out."""
    values: dict[str, list[float]] = {}
    for run in range(1, max(1, runs) + 1):
        figures = measure(run)
        shown = ", ".join(f"{k} {v:,.4g}" for k, v in figures.items())
        print(f"  run {run} (load {_shown(load_average())}): {shown}", flush=True)
        for key, value in figures.items():
            values.setdefault(key, []).append(value)
    return values


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def spread(values: list[float], digits: int = 0) -> str:
    """The runs' values as ``a · b · c`` (for the tables)."""
    return " · ".join(f"{v:,.{digits}f}" for v in values)
