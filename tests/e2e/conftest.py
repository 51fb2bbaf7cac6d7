"""End-to-end fixtures: a generated sample one-stop database, the mock portal on a free loopback
port (real HTTP), and settings that point the adapter at both."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapter.config import Settings
from adapter.province.sample import generate
from mock_portal.testing import RunningMock, run_mock_process

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
    from adapter.demo import seed_portal_side
    from adapter.mapping import load_mappings

    return seed_portal_side(mock.url, f"sqlite:///{onestop}", load_mappings(REPO / "mappings"))


def portal_submitted(onestop: Path) -> int:
    import sqlite3

    with sqlite3.connect(onestop) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM ho_so WHERE ma_ho_so_qg IS NOT NULL").fetchone()[0])
