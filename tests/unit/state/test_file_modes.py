"""The SQLite state file holds citizens' data: it and its -wal/-shm are private to the owner,
and a folder made for it too."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from dvcsync.state import MappedRecord, StateStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write(store: StateStore) -> None:
    store.upgrade()
    record = MappedRecord("A-1", 1, "2025-08-01T10:00:00", {"MaHoSo": "A-1", "SoDienThoai": "0912345678"})
    store.enqueue_page([record], cursor_name="c", watermark="w", last_key=1)


@pytest.fixture(autouse=True)
def _open_umask() -> object:
    """The loosest umask: the modes below must come from dvcsync, not from the environment."""
    previous = os.umask(0o002)
    yield
    os.umask(previous)


def test_a_new_state_file_and_its_folders_are_private(tmp_path: Path) -> None:
    db = tmp_path / "var" / "dvcsync" / "state.db"
    store = StateStore(f"sqlite:///{db}")
    try:
        _write(store)
        assert _mode(tmp_path / "var") == 0o700 and _mode(db.parent) == 0o700
        assert _mode(db) == 0o600
        wal = Path(f"{db}-wal")
        assert wal.exists() and _mode(wal) == 0o600  # SQLite gives it the main file's mode
        assert _mode(Path(f"{db}-shm")) == 0o600
    finally:
        store.close()


def test_an_existing_folder_is_left_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.close()
    assert _mode(tmp_path) == 0o755 and _mode(tmp_path / "state.db") == 0o600


def test_a_readable_state_file_is_tightened_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "state.db"
    store = StateStore(f"sqlite:///{db}")
    _write(store)
    store.close()
    db.chmod(0o644)
    Path(f"{db}-wal").touch(mode=0o644)
    Path(f"{db}-wal").chmod(0o644)
    with caplog.at_level(logging.INFO, logger="dvcsync.state.engine"):
        again = StateStore(f"sqlite:///{db}")
        again.close()
        third = StateStore(f"sqlite:///{db}")
        third.close()
    assert _mode(db) == 0o600 and _mode(Path(f"{db}-wal")) == 0o600
    told = [r for r in caplog.records if "readable by others" in r.getMessage()]
    assert len(told) == 1 and told[0].levelno == logging.INFO


def test_memory_and_relative_urls_still_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = StateStore("sqlite://")
    memory.upgrade()
    memory.close()
    monkeypatch.chdir(tmp_path)
    relative = StateStore("sqlite:///dvcsync-state.db")
    _write(relative)
    relative.close()
    assert _mode(tmp_path / "dvcsync-state.db") == 0o600


@pytest.mark.parametrize("mode", [0o600, 0o644], ids=["private", "loose"])
def test_opening_a_second_store_keeps_the_locks_of_the_first(tmp_path: Path, mode: int) -> None:
    """A second engine on a state file this process already holds a lock on (the service's jobs,
    the forked producer) must not close a descriptor of it: POSIX drops every lock the process
    holds on a file when any descriptor of it closes, and another writer then corrupts the state
    ("database disk image is malformed" in `dvcsync run`)."""
    import sqlite3
    import subprocess
    import sys

    db = tmp_path / "state.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    os.chmod(db, mode)
    holder.execute("BEGIN IMMEDIATE")  # a RESERVED lock on the file itself (rollback journal)
    holder.execute("INSERT INTO t VALUES (1)")
    try:
        second = StateStore(f"sqlite:///{db}")
        second.engine.dispose()
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=0, "
                "isolation_level=None); c.execute('BEGIN IMMEDIATE')",
                str(db),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode != 0 and "locked" in other.stderr, "the first store's lock was dropped"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
