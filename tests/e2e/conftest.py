"""End-to-end fixtures: a generated sample one-stop database, the mock portal on a free loopback
port (real HTTP), and settings that point the adapter at both."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dvcsync.config import Settings
from dvcsync.province.sample import generate
from mock_portal.config import MockConfig
from mock_portal.testing import RunningMock, config_argv, config_env, run_mock_process

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sample_2000(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sample") / "onestop.db"
    generate(path, 2000, 42)
    return path


@pytest.fixture
def onestop(tmp_path: Path, sample_2000: Path) -> Path:
    """A private copy the test may change."""
    path = tmp_path / "onestop.db"
    shutil.copy(sample_2000, path)
    return path


@pytest.fixture
def mock() -> Iterator[RunningMock]:
    """The mock in its own process, as a real portal would be (and with its own CPU)."""
    with run_mock_process() as running:
        yield running


def settings_for(mock: RunningMock, onestop: Path, state: Path, **portal: object) -> Settings:
    return Settings.load(
        None,
        province={"source_url": f"sqlite:///{onestop}", "mappings": str(REPO / "mappings")},
        portal={"adapter_url": mock.adapter_url, "soap_url": f"{mock.url}/soap", "timeout": 5.0, **portal},
        state={"url": f"sqlite:///{state}"},
    )


def seed_portal(mock: RunningMock, onestop: Path) -> int:
    """The portal side of the sample: its portal-submitted dossiers exist on the portal."""
    from dvcsync.demo import seed_portal_side
    from dvcsync.mapping import load_mappings

    return seed_portal_side(mock.url, f"sqlite:///{onestop}", load_mappings(REPO / "mappings"))


def portal_submitted(onestop: Path) -> int:
    import sqlite3

    with sqlite3.connect(onestop) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM ho_so WHERE ma_ho_so_qg IS NOT NULL").fetchone()[0])


def db_upgrade(config: Path, *args: str) -> None:
    """``dvcsync --config CONFIG db upgrade ARGS`` in its own process, as an operator starts a state
    (README, deploy/compose.yaml, the systemd unit's ExecStartPre): the other commands refuse a
    state that does not exist."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    done = subprocess.run(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), "db", "upgrade", *args],
        capture_output=True,
        text=True,
        env=clean,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@contextlib.contextmanager
def mock_back_on(port: int, **overrides: object) -> Iterator[RunningMock]:
    """The mock (its own process) listening on ``port``: a portal back from an outage keeps its
    address, and a state refuses a configuration that names another portal."""
    cfg = MockConfig.model_validate({**overrides, "port": port})
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_PORTAL_")} | config_env(cfg)
    process = subprocess.Popen([sys.executable, "-m", "mock_portal", *config_argv(cfg)], env=env)
    running = RunningMock(url=f"http://127.0.0.1:{port}", config=cfg, process=process)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"the mock exited with {process.returncode} at start-up"
            try:
                if httpx.get(f"{running.url}/_admin/stats", timeout=1.0, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the mock did not answer in time"
            time.sleep(0.05)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
