"""`dvcsync reconcile` and `reconcile repair` as a person runs them: exit codes, the files, the
summary, refusals that name what is wrong, and the second report comparing with the first."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest

from dvcsync.reconcile.period import local_now
from mock_portal.testing import RunningMock

from .conftest import REPO, db_upgrade, seed_portal

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, onestop: Path, mock: RunningMock) -> Path:
    """The configuration, and its state started by ``dvcsync db upgrade`` as an operator does."""
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        f'[province]\nsource_url = "sqlite:///{onestop}"\nmappings = "{REPO / "mappings"}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\nrate_limit = 1000\nbatch_size = 100\n'
        f'[payment]\ninit_url = "{mock.url}/payment/init"\nquery_url = "{mock.url}/payment/query"\n'
        f'bill_url = "{mock.url}/payment/bill"\n'
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n'
        '[reconcile]\nout_dir = "reports"\n',
        encoding="utf-8",
    )
    db_upgrade(config)
    return config


def _dvcsync(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


def test_reconcile_command_reports_repairs_and_compares(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path, onestop, mock)
    seed_portal(mock, onestop)
    assert _dvcsync(config, "sync", "push", "--json").returncode == 0
    today = local_now().date()
    since = (today - timedelta(days=5)).isoformat()

    clean = _dvcsync(config, "reconcile", "--since", since, "--format", "json")
    assert clean.returncode == 0, clean.stderr
    assert "no mismatches" in clean.stdout

    # a change the service never pushed (it is not running), two days old: stale
    two_days = (local_now() - timedelta(days=2)).isoformat()
    with sqlite3.connect(onestop) as conn:
        code = conn.execute(
            "SELECT so_ho_so FROM ho_so WHERE trang_thai = 'processing' AND ma_ho_so_qg IS NULL LIMIT 1"
        ).fetchone()[0]
        conn.execute(
            "UPDATE ho_so SET trang_thai = 'waiting', updated_at = ? WHERE so_ho_so = ?", (two_days, code)
        )

    found = _dvcsync(config, "reconcile", "--since", since, "--json")
    assert found.returncode == 1, found.stderr
    document = json.loads(found.stdout)
    assert document["counts"]["stale"] == 1 and sum(document["counts"].values()) == 1
    assert document["items"][0]["ma_ho_so"] == code
    assert document["items"][0]["repair"] == "dvcsync reconcile repair stale"
    folder = max((tmp_path / "reports").iterdir())
    assert {p.name for p in folder.iterdir()} == {
        "reconcile.json",
        "reconcile.html",
        "reconcile.xlsx",
        "reconcile.csv",
    }
    workbook = openpyxl.load_workbook(folder / "reconcile.xlsx")
    assert len(workbook.sheetnames) == 3  # summary, the one category, resolved
    assert (folder / "reconcile.csv").read_bytes().startswith(b"\xef\xbb\xbf")

    dry = _dvcsync(config, "reconcile", "repair", "stale", "--dry-run")
    assert dry.returncode == 0 and "would" in dry.stdout and code in dry.stdout
    repaired = _dvcsync(config, "reconcile", "repair", "stale", "--json")
    assert repaired.returncode == 0, repaired.stderr
    result = json.loads(repaired.stdout)
    assert result["acted"] == 1 and result["push"]["dossiers_pushed"] == 1

    after = _dvcsync(config, "reconcile", "--since", since, "--json", "--format", "json")
    assert after.returncode == 0, after.stderr
    second = json.loads(after.stdout)
    assert second["resolved_since_last"] == [{"category": "stale", "ma_ho_so": code}]
    assert second["previous"] == document["period"]["generated_at"]
    nothing = _dvcsync(config, "reconcile", "repair", "stale")  # from the newest report: none left
    assert nothing.returncode == 0 and "nothing to repair" in nothing.stdout, nothing.stdout

    # refusals name what is wrong, change nothing (exit 2)
    for args, says in (
        (("reconcile", "--since", "31/02/2026"), "--since"),
        (("reconcile", "--portal-check", "some"), "--portal-check"),
        (("reconcile", "--format", "pdf"), "--format"),
        (("reconcile", "repair", "quarantined"), "not repaired by dvcsync"),
        (("reconcile", "repair", "nonsense"), "unknown category"),
    ):
        refused = _dvcsync(config, *args)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
        assert says in refused.stderr, (args, refused.stderr)
