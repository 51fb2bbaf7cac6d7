"""``reconcile --out DIR`` then ``reconcile repair`` (issue 20 item 10): the repair finds the last
report written wherever it went, not only under ``[reconcile] out_dir``; and what both print from
data (here a folder named with an escape sequence and rich markup) reaches the terminal escaped
(item 6). A real mock portal, the sample database and the CLI in a subprocess."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from dvcsync.reconcile.period import local_now
from mock_portal.testing import RunningMock

from .conftest import seed_portal
from .test_reconcile_cli import _config, _dvcsync

pytestmark = pytest.mark.slow


def test_repair_finds_a_report_written_with_out_and_output_is_escaped(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path, onestop, mock)
    seed_portal(mock, onestop)
    assert _dvcsync(config, "sync", "push", "--json").returncode == 0
    since = (local_now().date() - timedelta(days=5)).isoformat()
    two_days = (local_now() - timedelta(days=2)).isoformat()
    with sqlite3.connect(onestop) as conn:
        code = conn.execute(
            "SELECT so_ho_so FROM ho_so WHERE trang_thai = 'processing' AND ma_ho_so_qg IS NULL LIMIT 1"
        ).fetchone()[0]
        conn.execute(
            "UPDATE ho_so SET trang_thai = 'waiting', updated_at = ? WHERE so_ho_so = ?", (two_days, code)
        )

    out = tmp_path / "elsewhere" / "r[red]x[/red]\x1b[2J"
    found = _dvcsync(config, "reconcile", "--since", since, "--out", str(out), "--format", "json")
    assert found.returncode == 1, found.stderr
    assert (out / "reconcile.json").is_file()
    assert not (tmp_path / "reports").exists() or not any(
        p.is_dir() for p in (tmp_path / "reports").iterdir()
    )  # nothing written under [reconcile] out_dir but the pointer
    assert "\x1b" not in found.stdout and "\\x1b[2J" in found.stdout and "r[red]x[/red]" in found.stdout

    dry = _dvcsync(config, "reconcile", "repair", "stale", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "no report to repair from" not in dry.stderr
    assert code in dry.stdout and "would" in dry.stdout
    assert "\x1b" not in dry.stdout and "\\x1b[2J" in dry.stdout.replace("\n", "")
