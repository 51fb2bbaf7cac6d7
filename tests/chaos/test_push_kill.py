"""`kill -9` of `dvcsync sync push` at random moments, ten times, then a clean run: the portal
ends exactly as after one uninterrupted run — nothing lost, no history entry stored twice."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dvcsync.province.sample import generate
from mock_portal.testing import RunningMock, run_mock_process

from ..e2e.conftest import db_upgrade, seed_portal
from .test_push_faults import _portal_state

REPO = Path(__file__).resolve().parents[2]


def _config(path: Path, mock: RunningMock, onestop: Path, state: Path, rate: float) -> Path:
    """The configuration, and its state started by ``dvcsync db upgrade`` as an operator does."""
    path.write_text(
        f'[province]\nsource_url = "sqlite:///{onestop}"\nmappings = "{REPO / "mappings"}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\nbatch_size = 20\nconcurrency = 4\n'
        f"rate_limit = {rate}\n"
        f'timeout = 5.0\n[push]\npage_size = 100\n[state]\nurl = "sqlite:///{state}"\n',
        encoding="utf-8",
    )
    db_upgrade(path)
    return path


def _push(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    return subprocess.Popen(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), "sync", "push", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )


def _survivors(config: Path) -> list[int]:
    """Processes still running with this config: a forked enqueue producer shares the cycle's
    command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(config).encode() in cmdline:
                found.append(int(entry.name))
    return found


def _assert_no_survivor(config: Path) -> None:
    """The producer dies with the cycle (it would otherwise go on writing to the state alone)."""
    deadline = time.monotonic() + 5
    while _survivors(config) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _survivors(config) == [], "a producer outlived its killed cycle"


@pytest.fixture(scope="module")
def sample_400(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four source pages of 100: a cycle reads them in a forked producer (the one a kill
    must take down too) and the killed cycles deliver at 40 calls a second for far longer than the
    2.5 s a kill waits at most; nothing a kill lands in depends on the count. It was 800 (43 s
    at load 2.5-3.4; 33 s at 400 and load 6-7, of which the clean run 6.6 s, the ten killed runs
    18.4 s, the clean finish 5.6 s: the killed runs are the test, each a start-up and a wait)."""
    path = tmp_path_factory.mktemp("kill") / "onestop.db"
    generate(path, 400, 23)
    return path


def test_kill_9_ten_times_then_a_clean_run(sample_400: Path, tmp_path: Path) -> None:
    clean_db, killed_db = tmp_path / "clean.db", tmp_path / "killed.db"
    shutil.copy(sample_400, clean_db)
    shutil.copy(sample_400, killed_db)
    started = time.monotonic()
    with run_mock_process() as clean:
        seed_portal(clean, clean_db)
        config = _config(tmp_path / "clean.toml", clean, clean_db, tmp_path / "clean-state.db", rate=1000)
        run = _push(config)
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err.decode()
        expected = _portal_state(clean)
    clean_s = time.monotonic() - started

    rng = random.Random(20261123)
    kills = 0
    with run_mock_process() as portal:
        seed_portal(portal, killed_db)
        # a slow rate budget stretches the run so that each kill lands part-way through
        config = _config(tmp_path / "killed.toml", portal, killed_db, tmp_path / "killed-state.db", rate=40)
        for _ in range(10):
            proc = _push(config)
            time.sleep(rng.uniform(0.5, 2.5))  # kills land in start-up, enqueue and delivery
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.communicate(timeout=60)
            _assert_no_survivor(config)
        killed_s = time.monotonic() - started - clean_s
        config.write_text(
            config.read_text(encoding="utf-8").replace("rate_limit = 40", "rate_limit = 1000"),
            encoding="utf-8",
        )
        for _ in range(3):  # clean runs until nothing is left to deliver
            final = _push(config)
            out, err = final.communicate(timeout=300)
            assert final.returncode == 0, err.decode()
            if b'"dossiers_pushed": 0, "steps_pushed": 0' in out:
                break
        actual = _portal_state(portal)
    print(
        f"clean run {clean_s:.1f} s, ten killed runs {killed_s:.1f} s, the clean finish"
        f" {time.monotonic() - started - clean_s - killed_s:.1f} s; {kills} killed while running"
    )
    assert kills >= 5, f"only {kills} runs were still going when killed: the test no longer tests"
    assert actual.keys() == expected.keys()
    for code, (body, history) in expected.items():
        assert actual[code][0] == body, code
        assert actual[code][1] == history, f"{code}: history duplicated, lost or reordered after kills"
