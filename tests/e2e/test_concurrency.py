"""Commands that run at the same time on one state: overlapping cron jobs, an operator's one-off
beside the service. Real processes, a real mock portal; the portal's own records prove that
every history entry arrived once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dvcsync.sync.state_lock import StateBusy, acquire, holding_state
from mock_portal.testing import RunningMock

from ..postgres import create_database
from .conftest import REPO, db_upgrade, seed_portal
from .test_push import _assert_portal_equals, _expected
from .test_push_postgres import postgres  # noqa: F401 (the module-scoped server fixture)


def _config(tmp_path: Path, onestop: Path, mock: RunningMock, state_url: str, lock_wait_s: float) -> Path:
    config = tmp_path / f"dvcsync-{lock_wait_s:g}.toml"
    config.write_text(
        f'[province]\nsource_url = "sqlite:///{onestop}"\nmappings = "{REPO / "mappings"}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\nrate_limit = 1000\nbatch_size = 100\n'
        f'[state]\nurl = "{state_url}"\nlock_wait_s = {lock_wait_s}\n',
        encoding="utf-8",
    )
    return config


def _start(config: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    return subprocess.Popen(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )


def _two_pushes_at_once(
    tmp_path: Path, onestop: Path, mock: RunningMock, state_url: str, *, replicas: bool = False
) -> None:
    seed_portal(mock, onestop)
    config = _config(tmp_path, onestop, mock, state_url, lock_wait_s=300)
    db_upgrade(config)  # as an operator starts a state: the pushes do not
    first, second = _start(config, "sync", "push", "--json"), _start(config, "sync", "push", "--json")
    outputs = [p.communicate(timeout=400) for p in (first, second)]
    for process, (_, err) in zip((first, second), outputs, strict=True):
        assert process.returncode == 0, err.decode()[-2000:]
    summaries = [json.loads(out) for out, _ in outputs]
    expected = _expected(onestop)
    if replicas:  # PostgreSQL: they may share the work (claims), never send a dossier twice
        assert sum(s["dossiers_pushed"] for s in summaries) == len(expected)
    else:  # SQLite: one did the work, the other waited its turn and found nothing left to send
        assert sorted(s["dossiers_pushed"] for s in summaries) == [0, len(expected)]
    assert sum(s["steps_pushed"] for s in summaries) == sum(len(h) for _, h in expected.values())
    _assert_portal_equals(mock, expected)  # every history entry once


@pytest.mark.slow
def test_two_sync_push_at_once_on_sqlite_send_every_history_entry_once(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    _two_pushes_at_once(tmp_path, onestop, mock, f"sqlite:///{tmp_path / 'state.db'}")


@pytest.mark.slow
def test_two_sync_push_at_once_on_postgresql_send_every_history_entry_once(
    mock: RunningMock,
    onestop: Path,
    tmp_path: Path,
    postgres: str,  # noqa: F811
) -> None:
    state = create_database(postgres, "dvcsync_two_pushes")
    _two_pushes_at_once(tmp_path, onestop, mock, state, replicas=True)


def test_a_command_that_cannot_wait_exits_3_naming_the_holder(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    config = _config(tmp_path, onestop, mock, state, lock_wait_s=1)
    db_upgrade(config)
    holder = acquire(state, what="dvcsync run")  # as the service holds it for its whole life
    assert holder is not None
    try:
        started = time.monotonic()
        second = _start(config, "sync", "push")
        _, err = second.communicate(timeout=120)
        assert second.returncode == 3, err
        assert f"held by pid {os.getpid()} (dvcsync run)" in err.decode()
        assert time.monotonic() - started < 60
        with sqlite3.connect(tmp_path / "state.db") as conn:  # it did nothing at all
            done = conn.execute("SELECT (SELECT COUNT(*) FROM run) + (SELECT COUNT(*) FROM outbox)")
            assert done.fetchone() == (0,)
        config = _config(tmp_path, onestop, mock, state, lock_wait_s=0)
        dry = _start(config, "push", "dossier", "X", "--dry-run")
        dry.communicate(timeout=120)
        assert dry.returncode != 3  # a dry run writes nothing and takes no lock
    finally:
        holder.close()


def test_runs_left_running_by_a_killed_process_are_marked_interrupted(tmp_path: Path) -> None:
    from dvcsync.state import StateStore

    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = StateStore(url)
    store.upgrade()
    killed = store.start_run("push")  # its process was killed: the row stays "running"
    store.close()
    with holding_state(url, wait_s=0, what="dvcsync sync push"), pytest.raises(StateBusy):
        acquire(url, wait_s=0)
    store = StateStore(url)
    [run] = [r for r in store.runs() if r["id"] == killed]
    store.close()
    assert run["status"] == "interrupted" and "stopped before" in (run["error"] or "")
