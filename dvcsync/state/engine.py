"""Opening the state: an engine whose SQLite file is private to its owner, in WAL mode, whose
transactions take the write lock at BEGIN; PostgreSQL sessions named after the replica."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import stat
import time
import urllib.parse
from typing import Any

from sqlalchemy import (
    Engine,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)


def make_state_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine on the state store. Its rows hold citizens' data, so statement parameters are
    kept out of errors and a SQLite file is private to its owner (``_private_sqlite_file``).
    ``read_only``: SQLite transactions begin deferred, so a long read (a reconciliation's merge
    over a million records) holds no write lock and never makes a writer wait (WAL readers see
    a snapshot)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _private_sqlite_file(parsed.database)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        from .replica import replica_id

        # a run is "interrupted" once no session of its owner is left (see state_lock)
        options["connect_args"] = {"application_name": replica_id()}
        if parsed.get_driver_name() == "psycopg2":
            # a round's answers are batched UPDATEs: psycopg2's executemany sends them one round
            # trip each (800 outcomes: ~250 ms); execute_batch pages them (measured in bench/replicas.py)
            options["executemany_mode"] = "values_plus_batch"
    engine = create_engine(url, future=True, hide_parameters=True, **options)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # transactions are begun below, not by sqlite3
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            _wal(cursor)
            # FULL: an acknowledged delivery survives power loss too, so it is never re-sent
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            # Take the write lock at BEGIN: a transaction that reads, then writes, would otherwise
            # fail at once (SQLITE_BUSY_SNAPSHOT) when another writer committed in between,
            # instead of waiting its turn under busy_timeout. Enqueue and delivery write at once.
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _wal(cursor: Any) -> None:
    """``journal_mode=WAL``. Two processes opening a new file at once both try to switch it, and
    SQLite answers one "database is locked" at once, without waiting (busy_timeout does not
    apply: both hold a shared lock and want an exclusive one): try again shortly, it is WAL then."""
    deadline = time.monotonic() + 30.0
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _is_sqlite_file(path: str) -> bool:
    """A regular file of ours holding a SQLite database (a PermissionError names an unreadable one).

    Asked of SQLite, never by ``open()``: closing any descriptor of a database file drops every
    POSIX lock this process holds on it, the locks of its open SQLite connections among them, and
    another writer then corrupts the file ("database disk image is malformed", "disk I/O error":
    SQLite's "How To Corrupt" 2.2). SQLite's own unix VFS keeps such a descriptor open until the
    process's last lock on the file is released, so a read-only connection is safe beside them."""
    if not os.path.isfile(path) or os.stat(path).st_uid != os.getuid() or not os.path.getsize(path):
        return False
    uri = "file:" + urllib.parse.quote(path) + "?mode=ro"
    try:
        probe = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        return False
    try:
        probe.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return True
    except sqlite3.DatabaseError:
        return False  # "file is not a database": not a state dvcsync made
    finally:
        probe.close()


def _loose(path: str) -> list[str]:
    """The state file and its -wal/-shm that group or others may read."""
    return [
        name
        for name in (path, path + "-wal", path + "-shm")
        if os.path.exists(name) and stat.S_IMODE(os.stat(name).st_mode) & 0o077
    ]


def _private_sqlite_file(database: str | None) -> None:
    """Create the state file 0600 (and a missing folder for it 0700) before SQLite opens it:
    SQLite gives its -wal and -shm files the main file's mode, so they follow. An existing file
    readable by group or others is tightened, said once at INFO."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return  # in memory, or a URI whose options SQLite interprets: left to the operator
    path = os.path.abspath(database)
    missing: list[str] = []
    folder = os.path.dirname(path)
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for created in reversed(missing):
        os.mkdir(created, 0o700)
        os.chmod(created, 0o700)  # exactly 0700, whatever the umask
    if os.path.isdir(path):  # never chmod a folder (issue 20): say what is wrong instead
        raise IsADirectoryError(errno.EISDIR, "the state URL names a folder, not a state file", path)
    if not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        return
    if not _loose(path):
        return  # the usual case (dvcsync makes it 0600): the file is not even opened
    if not _is_sqlite_file(path):
        return  # not a state dvcsync made: its mode is not dvcsync's to change (SQLite will say why)
    loose = _loose(path)  # again: the probe may have made a -shm with the main file's mode
    try:
        for name in loose:
            os.chmod(name, 0o600)
    except OSError as exc:
        log.warning("the state store %s is readable by others and cannot be made private: %s", path, exc)
        return
    log.info("the state store %s was readable by others: now 0600 (%s)", path, ", ".join(loose))
