"""The README's first steps, as a new user types them, each as its own process:
``dvcsync sample-db`` → ``dvcsync mock-portal --knows onestop.db`` → ``dvcsync db upgrade`` (the
state is started by it: ``sync push`` starts none) → ``dvcsync sync push``.

A fresh mock does not hold the sample's dossiers that were submitted on the portal; without
``--knows`` the push's status reports for them (``DongBoTrangThaiHoSo`` type 2) were all refused
as unknown and ended as dead letters. With it the path ends with exit 0 and no dead letter.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from mock_portal.testing import free_port

START_S = 60.0
STEP_S = 300.0


def _env() -> dict[str, str]:
    """A user's shell: no DVCSYNC_ or MOCK_PORTAL_ settings (they would change what runs)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DVCSYNC_", "MOCK_PORTAL_"))}


def dvcsync(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvcsync.cli", *args],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=STEP_S,
    )


@contextmanager
def mock_portal(folder: Path, *args: str) -> Iterator[str]:
    """``dvcsync mock-portal ARGS`` in the background until it answers; stopped on exit."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dvcsync.cli", "mock-portal", "--port", str(port), *args],
        cwd=folder,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise AssertionError(f"mock-portal exited with {process.returncode}:\n{output}")
            try:
                if httpx.get(f"{url}/_admin/stats", timeout=1.0, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mock-portal did not answer in time"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=20)


def test_sample_db_then_mock_portal_knows_it_then_sync_push_leaves_no_dead_letter(tmp_path: Path) -> None:
    made = dvcsync(tmp_path, "sample-db", "--out", "onestop.db")
    assert made.returncode == 0, made.stderr
    with sqlite3.connect(tmp_path / "onestop.db") as conn:
        submitted = conn.execute("SELECT COUNT(*) FROM ho_so WHERE ma_ho_so_qg IS NOT NULL").fetchone()[0]
    assert submitted > 0, "the sample has dossiers submitted on the portal: the case under test"

    with mock_portal(tmp_path, "--knows", "onestop.db") as url:
        known = httpx.get(f"{url}/_admin/portal-dossiers", trust_env=False, timeout=30).json()
        assert 0 < len(known) <= submitted
        # the configuration a user writes next to the database: where the portal is (and a rate
        # budget for a loopback mock: at the default 20 calls/s the push takes a minute and a half)
        (tmp_path / "dvcsync.toml").write_text(
            f'[portal]\nadapter_url = "{url}/dvcqg"\nrate_limit = 1000\n', encoding="utf-8"
        )
        upgraded = dvcsync(tmp_path, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
        pushed = dvcsync(tmp_path, "sync", "push", "--json")
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        summary = json.loads(pushed.stdout)
        assert summary["dead"] == 0, summary
        assert summary["statuses_reported"] > 0 and summary["dossiers_pushed"] > 0, summary

    status = dvcsync(tmp_path, "status", "--json")
    assert status.returncode in (0, 1), status.stderr  # 1 would be the sample's quarantined records
    assert json.loads(status.stdout)["dead_count"] == 0
