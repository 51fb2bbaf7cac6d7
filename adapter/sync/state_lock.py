"""One writer per state store at a time: `dvcsync run`, every `sync` command, one-off pushes,
dead-letter retries and prunes all take the same lock, so an operator's one-off beside the
service (or two overlapping cron jobs) waits its turn instead of sending history twice.

SQLite: an exclusive ``flock`` on ``<state file>.lock``, released by the kernel when the process
dies however it dies. PostgreSQL: a session advisory lock, released with the connection. A
command waits up to ``[state] lock_wait_s`` and then gives up with ``StateBusy`` (exit 3). Until
replicas claim outbox entries with ``SKIP LOCKED``, PostgreSQL uses the same one-writer rule.

Holding the lock proves that no other process is recording a run, so runs still marked
``running`` were cut short by a kill: they are marked ``interrupted`` when the lock is taken.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

# pg_try_advisory_lock key: "dvcsync" in ASCII, so other applications' locks are unlikely to clash
ADVISORY_KEY = int.from_bytes(b"dvcsync", "big")
_POLL_S = 0.2


class StateBusy(RuntimeError):
    """Another dvcsync process holds this state store (exit code 3)."""


class Held(Protocol):
    def close(self) -> None: ...


class _FileLock:
    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle

    def close(self) -> None:
        self._handle.close()  # closing the descriptor releases the flock


class _AdvisoryLock:
    """A connection kept open while the lock is held: the lock goes with the session, so a killed
    process releases it too."""

    def __init__(self, engine: Engine, conn: Connection) -> None:
        self._engine, self._conn = engine, conn

    def close(self) -> None:
        self._conn.close()
        self._engine.dispose()


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def acquire(url: str, *, wait_s: float = 0.0, what: str = "dvcsync") -> Held | None:
    """Take the state's writer lock, waiting up to ``wait_s``; None for an in-memory state."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return _postgres(url, wait_s, what)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return _sqlite(Path(parsed.database), wait_s, what)


def _sqlite(database: Path, wait_s: float, what: str) -> _FileLock:
    path = Path(f"{database}.lock")
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    handle = os.fdopen(fd, "r+", encoding="utf-8")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise StateBusy(
                    f"the state {database} is held by {holder}: one dvcsync command writes to a state"
                    f" at a time (waited {wait_s:g}s; [state] lock_wait_s)"
                ) from None
            time.sleep(_POLL_S)
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} ({what})")
    handle.flush()
    return _FileLock(handle)


def _postgres(url: str, wait_s: float, what: str) -> _AdvisoryLock:
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT", hide_parameters=True)
    conn = engine.connect()
    deadline = time.monotonic() + wait_s
    while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar_one():
        if time.monotonic() >= deadline:
            conn.close()
            engine.dispose()
            raise StateBusy(
                f"the state {redacted(url)} is in use by another dvcsync process (PostgreSQL advisory lock):"
                f" one writer at a time until replicas are built (waited {wait_s:g}s; [state] lock_wait_s)"
            )
        time.sleep(_POLL_S)
    return _AdvisoryLock(engine, conn)


def mark_interrupted_runs(engine: Engine) -> int:
    """Runs left ``running`` by a process that was killed; call only while holding the lock."""
    try:
        with engine.begin() as conn:
            result = conn.execute(
                text(
                    "UPDATE run SET status = 'interrupted', finished_at = :now,"
                    " error = 'the process stopped before the run finished'"
                    " WHERE status = 'running'"
                ),
                {"now": time.time()},
            )
            return int(result.rowcount or 0)
    except DBAPIError:  # a state without tables yet: nothing was ever running
        return 0


@contextmanager
def holding_state(url: str, *, wait_s: float, what: str) -> Iterator[None]:
    """The writer lock for the life of the block, with interrupted runs marked on the way in."""
    held = acquire(url, wait_s=wait_s, what=what)
    try:
        if held is not None:
            from adapter.state.store import make_state_engine

            engine = make_state_engine(url)
            try:
                mark_interrupted_runs(engine)
            finally:
                engine.dispose()
        yield
    finally:
        if held is not None:
            held.close()
