"""A portal that is down: the cycle stops within seconds, says why, uses no record's attempt and
makes no dead letter; when the portal is back the next cycle delivers everything. And a portal
that keeps refusing: dead letters after max_attempts refusals or give_up_after of failures."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from dvcsync.portal.breaker import CircuitBreaker
from mock_portal.testing import free_port, run_mock_process

from .conftest import REPO, db_upgrade, mock_back_on, seed_portal
from .test_push import _assert_portal_equals, _expected


def _config(tmp_path: Path, onestop: Path, adapter_url: str, **portal: object) -> Path:
    """The configuration, and its state started by ``dvcsync db upgrade`` (as an operator does;
    a state already there is left as it is)."""
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in portal.items())
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        f'[province]\nsource_url = "sqlite:///{onestop}"\nmappings = "{REPO / "mappings"}"\n'
        f'[portal]\nadapter_url = "{adapter_url}"\nrate_limit = 1000\nbatch_size = 100\ntimeout = 5\n{extra}'
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n',
        encoding="utf-8",
    )
    db_upgrade(config)
    return config


def _cli(config: Path, *args: str, timeout: float = 300) -> tuple[int, str, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), *args],
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode(), time.monotonic() - started


def _outbox(tmp_path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(tmp_path / "state.db") as conn:
        return conn.execute("SELECT state, attempts FROM outbox").fetchall()


def test_an_unreachable_portal_ends_the_cycle_fast_and_the_next_one_delivers(
    onestop: Path, tmp_path: Path
) -> None:
    port = free_port()
    nowhere = f"http://127.0.0.1:{port}/dvcqg"  # nothing listens there (yet)
    config = _config(tmp_path, onestop, nowhere)
    code, _, err, elapsed = _cli(config, "sync", "push")
    assert code == 4, err[-2000:]
    assert "portal unreachable" in err and "ConnectError" in err and "Traceback" not in err
    assert elapsed < 30, f"{elapsed:.1f} s"
    entries = _outbox(tmp_path)
    assert entries  # enqueued (a part: the cycle stopped), waiting
    assert {state for state, _ in entries} == {"pending"} and {a for _, a in entries} == {0}
    code, out, _, _ = _cli(config, "status", "--json")
    [last] = [r for r in json.loads(out)["runs"] if r["job"] == "push"][:1]
    assert last["status"] == "failed" and last["error"].startswith("portal unreachable")

    with mock_back_on(port) as mock:  # the portal is back, where it was
        seed_portal(mock, onestop)
        code, out, err, _ = _cli(config, "sync", "push", "--json")
        assert code == 0, err[-2000:]
        assert json.loads(out)["dead"] == 0
        _assert_portal_equals(mock, _expected(onestop))


def test_refusals_become_dead_letters_after_give_up_after(onestop: Path, tmp_path: Path) -> None:
    """Every call refused with 503 (the portal answers: it is not an outage). With give_up_after
    shorter than the cycle, the first refusal of each record is its last."""
    faults = {"seed": 1, "rules": [{"service": "DongBoHoSoMC", "status_rates": {"503": 1.0}}]}
    with run_mock_process(faults=faults) as mock:
        config = _config(tmp_path, onestop, mock.adapter_url, max_attempts=3, give_up_after=0.001)
        code, out, err, _ = _cli(config, "sync", "push", "--json")
    assert code == 1, err[-2000:]
    summary = json.loads(out)
    assert summary["dead"] > 1000 and summary["dossiers_pushed"] == 0
    dossiers = [row for row in _outbox(tmp_path) if row[0] == "dead"]
    assert len(dossiers) == summary["dead"]


def test_the_breaker_spaces_tries_and_closes_on_success() -> None:
    now = [0.0]
    breaker = CircuitBreaker(base_s=30, max_s=900, clock=lambda: now[0])
    assert breaker.allow()
    assert [breaker.failed() for _ in range(7)] == [30, 60, 120, 240, 480, 900, 900]
    assert not breaker.allow() and breaker.retry_in() == 900
    now[0] += 900
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.allow() and breaker.failed() == 30
