"""Any one-stop system by configuration alone (issue #19 item 1): every job on a deterministic
renaming of every table and column of the sample (ids and audit columns too), where only the
files ``dvcsync init`` writes were rewritten (dvcsync.toml and mappings/: province.yaml and the
specs), gives the same outcomes as on the sample itself.

Each run is ``tests/every_job.py``'s (every job through the command line against the mock, as
the parametrised run on both profiles does). Compared: every command's counts, what the mock holds
and answered, the report's categories and items, and every row of the province's database (the
renamed one mapped back through the renaming; times written during the run, payment references
and the run's folder normalised).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from dvcsync.province.sample import generate
from dvcsync.reconcile.period import local_now
from dvcsync.sync import satisfaction

from ..every_job import normalised, run_every_job
from ..renamed_schema import original_rows, rename_database, renamed_mappings

pytestmark = pytest.mark.slow

SATISFACTION_TODAY = date(2026, 11, 20)  # the sample's snapshot is 2026-11-15: 12 complete months


def _rename(onestop: Path, mappings: Path) -> None:
    rename_database(onestop)
    renamed_mappings(mappings, mappings)  # only the files init wrote are rewritten


def _run(folder: Path, base: Path, *, renamed: bool, period: tuple[str, str], today: str) -> dict[str, Any]:
    """Every job on a copy of ``base`` (renamed or not); what came out of each, normalised."""
    run = run_every_job(
        folder, base, profile="sample", period=period, today=today, rewrite=_rename if renamed else None
    )
    out = {**run.out, "rows": original_rows(run.onestop, renamed)}
    result: dict[str, Any] = normalised(out, folder, run.mock, today=today)
    return result


def test_every_job_same_outcomes_on_a_renamed_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = satisfaction.complete_months  # months counted back from a fixed day, not the wall clock
    monkeypatch.setattr(
        satisfaction, "complete_months", lambda count, today=None: real(count, today or SATISFACTION_TODAY)
    )
    base = tmp_path / "sample.db"
    generate(base, 300, 19)
    today = local_now().date()
    period = ((today - timedelta(days=60)).isoformat(), (today + timedelta(days=1)).isoformat())
    original = _run(tmp_path / "original", base, renamed=False, period=period, today=today.isoformat())
    renamed = _run(tmp_path / "renamed", base, renamed=True, period=period, today=today.isoformat())

    for key in original:
        if key != "rows":
            assert renamed[key] == original[key], key
    for table, rows in original["rows"].items():
        assert len(renamed["rows"][table]) == len(rows), table
        for mine, theirs in zip(renamed["rows"][table], rows, strict=True):
            assert mine == theirs, (table, {k: (v, theirs[k]) for k, v in mine.items() if theirs[k] != v})
    # and the run did what it says
    assert original["knows"] and original["push"]["dossiers_pushed"] > 0
    assert original["pull"]["created"] == 3 and original["withdrawal"]["withdrawn"] == 1
    assert original["payments QUERY"]["paid"] == 1 and original["payments QUERY"]["receipts"] == 1
    assert original["payments again"]["paid"] == 0
    assert original["reconcile"]["counts"]["stale"] == 1 and original["reconcile after repair"]["stale"] == 0
    assert list(original["repair"]) == ["stale"]
    assert original["satisfaction"]["sent"] > 0 and original["mock"]["ratings"] > 0
