"""Who may write to a state store, and which process runs a scheduled job.

SQLite: one process at a time. `dvcsync run`, every `sync` command, one-off pushes, dead-letter
retries and prunes take an exclusive ``flock`` on ``<state file>.lock`` (released by the kernel
when the process dies however it dies), so an operator's one-off beside the service waits its turn
instead of sending history twice. Holding it proves no other process is recording a run, so runs
still ``running`` were cut short by a kill: they are marked ``interrupted`` when it is taken.

PostgreSQL: replicas. Every process takes the same advisory lock *shared* (so several `dvcsync
run` and one-off commands work side by side, coordinating through claims on the dossiers: see
``StateStore.due``); only `dvcsync db upgrade` takes it exclusive. Each scheduled job holds an
advisory lock of its own while it runs (``job_lock``), so it runs on one replica at a time; a run
left ``running`` is interrupted when no session of its owner is connected any more.

A command waits up to ``[state] lock_wait_s`` and then gives up with ``StateBusy`` (exit 3).
Session advisory locks are PostgreSQL's own primitive and go with the connection: a replica killed
with ``kill -9`` releases them when PostgreSQL notices the connection is gone.
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

from dvcsync.errors import ExitCode, TransientError
from dvcsync.state.replica import lock_key

# Advisory locks take two keys here: a class ("dvcs" in ASCII, so other applications' locks are
# unlikely to clash), then the state's schema and what is locked (``lock_key``).
STATE_LOCK_CLASS = int.from_bytes(b"dvcs", "big") - 2**31
# Jobs' locks use the two-key form (a key space apart from the one-key form): this class, then the
# CRC-32 of the state's schema and the job's name (``dvcsync.state.replica.lock_key``).
JOB_LOCK_CLASS = int.from_bytes(b"dvcj", "big") - 2**31
_POLL_S = 0.2


class StateBusy(TransientError, RuntimeError):
    """Another dvcsync process holds this state store (exit code 3)."""

    exit_code = ExitCode.BUSY


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


def acquire(url: str, *, wait_s: float = 0.0, what: str = "dvcsync", exclusive: bool = False) -> Held | None:
    """Take the state's lock, waiting up to ``wait_s``; None for an in-memory state. SQLite's is
    always exclusive; PostgreSQL's is shared between replicas unless ``exclusive``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return _postgres(url, wait_s, what, exclusive)
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


def _lock_engine(url: str) -> Engine:
    from dvcsync.state.replica import replica_id

    return create_engine(
        url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,
        connect_args={"application_name": replica_id()},
    )


def _postgres(url: str, wait_s: float, what: str, exclusive: bool) -> _AdvisoryLock:
    engine = _lock_engine(url)
    conn = engine.connect()
    take = "pg_try_advisory_lock(:c, :k)" if exclusive else "pg_try_advisory_lock_shared(:c, :k)"
    key = {"c": STATE_LOCK_CLASS, "k": lock_key(url, "state")}
    deadline = time.monotonic() + wait_s
    while not conn.execute(text(f"SELECT {take}"), key).scalar_one():
        if time.monotonic() >= deadline:
            holders = _holders(conn, key)
            conn.close()
            engine.dispose()
            held_by = (
                "other dvcsync processes (PostgreSQL advisory lock, shared by replicas)"
                if exclusive
                else "a dvcsync process upgrading it (PostgreSQL advisory lock)"
            )
            if holders:
                held_by += ": " + ", ".join(holders)
            raise StateBusy(
                f"the state {redacted(url)} is in use by {held_by}; {what} waited {wait_s:g}s"
                " ([state] lock_wait_s)"
            )
        time.sleep(_POLL_S)
    return _AdvisoryLock(engine, conn)


def _holders(conn: Connection, key: dict[str, int]) -> list[str]:
    """Who holds the state's advisory lock: each session's replica id (``host:pid:random``, its
    ``application_name``) and since when, so an operator knows which replicas to stop."""
    try:
        rows = conn.execute(
            text(
                "SELECT a.application_name, a.client_addr, a.backend_start FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
                " AND CAST(l.classid AS bigint) = (CAST(:c AS bigint) & 4294967295)"
                " AND CAST(l.objid AS bigint) = (CAST(:k AS bigint) & 4294967295)"
                " AND l.pid <> pg_backend_pid() ORDER BY a.backend_start"
            ),
            key,
        ).all()
    except DBAPIError:  # no right to read others' sessions: the message stays general
        return []
    return [
        f"{name or 'pid ' + str(addr)} since {started:%Y-%m-%d %H:%M:%S}" if started else str(name)
        for name, addr, started in rows
    ]


@contextmanager
def job_lock(url: str, job: str, *, wait_s: float = 0.0) -> Iterator[bool]:
    """Run ``job`` on one replica at a time: yields True while this process holds the job's
    advisory lock, False when another replica holds it (the caller skips this run). On SQLite the
    state's own lock already makes this the only process: always True.

    The job's runs left ``running`` by a replica no longer connected are marked interrupted on
    the way in (holding the job's lock proves no live replica is running it)."""
    if make_url(url).get_backend_name() != "postgresql":
        yield True
        return
    engine = _lock_engine(url)
    try:
        conn = engine.connect()
    except DBAPIError:
        engine.dispose()
        raise
    try:
        key = lock_key(url, job)
        deadline = time.monotonic() + wait_s
        while not conn.execute(
            text("SELECT pg_try_advisory_lock(:c, :k)"), {"c": JOB_LOCK_CLASS, "k": key}
        ).scalar_one():
            if time.monotonic() >= deadline:
                yield False
                return
            time.sleep(_POLL_S)
        mark_interrupted_runs(engine, job=job.rsplit(":", 1)[-1])
        yield True
    finally:
        conn.close()  # the session's locks go with it
        engine.dispose()


def mark_interrupted_runs(engine: Engine, *, job: str | None = None) -> int:
    """Runs left ``running`` by a process that was killed. SQLite: call only while holding the
    state's lock (then every ``running`` run is one). PostgreSQL: only runs whose owner has no
    session connected any more (``application_name`` is the replica's id), of ``job`` if given."""
    postgres = engine.dialect.name == "postgresql"
    where = "status = 'running'"
    params: dict[str, object] = {"now": time.time()}
    if postgres:
        where += (
            " AND (owner IS NULL OR owner NOT IN"
            " (SELECT application_name FROM pg_stat_activity WHERE application_name IS NOT NULL))"
        )
    if job is not None:
        where += " AND job = :job"
        params["job"] = job
    try:
        with engine.begin() as conn:
            result = conn.execute(
                text(
                    "UPDATE run SET status = 'interrupted', finished_at = :now,"
                    " error = 'the process stopped before the run finished'"
                    f" WHERE {where}"
                ),
                params,
            )
            return int(result.rowcount or 0)
    except DBAPIError:  # a state without tables (or owners) yet: nothing was ever running
        return 0


@contextmanager
def holding_state(url: str, *, wait_s: float, what: str, exclusive: bool = False) -> Iterator[None]:
    """The state's lock for the life of the block (shared between replicas on PostgreSQL unless
    ``exclusive``), with interrupted runs marked on the way in."""
    held = acquire(url, wait_s=wait_s, what=what, exclusive=exclusive)
    try:
        if held is not None:
            from dvcsync.state.store import make_state_engine

            engine = make_state_engine(url)
            try:
                mark_interrupted_runs(engine)
            finally:
                engine.dispose()
        yield
    finally:
        if held is not None:
            held.close()
