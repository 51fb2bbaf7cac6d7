"""A forked process that reads and maps the rest of a large backlog while the cycle delivers.

Delivery spends its time in the HTTP client and waiting for the portal; reading and mapping
are pure CPU. In one process the two take turns under the GIL, so a big first push costs their
sum; in two processes they overlap. The producer writes through the same state store (one
transaction per page, cursor included), so whatever it commits is exactly what a sequential
cycle would have committed, and a producer killed mid-page loses nothing but that page's work.

Only on Linux (``fork``, and a death signal so that a killed cycle takes its producer along)
and for file-backed SQLite or server databases; everywhere else the cycle enqueues by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict
from multiprocessing.connection import Connection
from typing import Any, Protocol

from sqlalchemy import Engine

from dvcsync._gc import tune_gc
from dvcsync.errors import DvcsyncError
from dvcsync.province.source import SqlSource, make_engine
from dvcsync.state import EnqueueCounts, StateStore

_PR_SET_PDEATHSIG = 1


class Enqueuer(Protocol):
    """What the producer needs of the push job (``PushJob``): its store and source, reopened
    after the fork, and the enqueue of what is left after the first page. A protocol, so that
    this module does not import the push job that imports it."""

    store: StateStore
    source: SqlSource
    progress: Callable[[str, int, int], None] | None

    def enqueue_rest(self, *, until: str, on_page: Callable[[EnqueueCounts], None]) -> EnqueueCounts: ...


class EnqueueFailed(DvcsyncError, RuntimeError):
    """The producer process stopped with an error: the cycle fails; the next one resumes from
    the cursor its last committed page left."""


def can_fork(*engines: Engine) -> bool:
    if not sys.platform.startswith("linux") or "fork" not in multiprocessing.get_all_start_methods():
        return False
    for engine in engines:
        database = engine.url.database
        if engine.dialect.name == "sqlite" and (not database or database == ":memory:"):
            return False  # a private in-memory database: the child could not see it
    return True


class EnqueueProducer:
    """The parent's handle: counts as pages are committed, and the outcome."""

    def __init__(self, job: Enqueuer, until: str) -> None:
        # No database connection may cross the fork (SQLite forbids using one in a child, and
        # two processes sharing a socket to a server corrupt its protocol): close the pools.
        job.store.engine.dispose()
        job.source.engine.dispose()
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        self.counts = EnqueueCounts()
        self.error: str | None = None
        self.finished = False
        self._conn = receive
        self._process = context.Process(
            target=_produce, args=(job, until, send, os.getpid()), name="dvcsync-enqueue", daemon=True
        )
        self._process.start()
        send.close()

    @property
    def running(self) -> bool:
        self.poll()
        return not self.finished

    def poll(self) -> None:
        """Take in what the producer reported so far, without waiting."""
        self._drain()
        if not self.finished and not self._process.is_alive():
            self._process.join()
            self._drain()  # what it sent between the look above and its end
            if not self.finished:
                self.finished = True
                code = self._process.exitcode
                self.error = f"the enqueue process ended without finishing (exit code {code})"

    async def wait(self, timeout: float = 1.0) -> None:
        """Until the producer reports (a page committed, its end; its death closes the pipe,
        which wakes this too) or ``timeout`` passes: no polling while there is nothing to send."""
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        fd = self._conn.fileno()
        loop.add_reader(fd, ready.set)
        try:
            await asyncio.wait_for(ready.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(fd)

    def _drain(self) -> None:
        while not self.finished and self._conn.poll():
            try:
                kind, data = self._conn.recv()
            except (EOFError, OSError):
                return
            if kind == "page":
                self.counts = EnqueueCounts(**data)
            elif kind == "done":
                self.finished = True
            elif kind == "error":
                self.error, self.finished = str(data), True

    def stop(self) -> None:
        """Wait for a finished producer; stop one still running (the cycle is being abandoned)."""
        if self._process.is_alive() and not self.finished:
            self._process.terminate()
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()


def _produce(job: Enqueuer, until: str, conn: Connection, parent: int) -> None:
    status = 1
    try:
        _quiet_signals()
        _die_with(parent)
        # A lock another thread held at the fork (a console's, a log handler's) stays held here
        # for ever; the producer reports through the pipe and the store, so it never logs.
        logging.disable(logging.CRITICAL)
        tune_gc()  # also spares the pages shared with the parent from the collector's writes
        job.store = StateStore(job.store.url)
        job.source.engine = _fresh(job.source.engine)
        job.progress = None

        def on_page(counts: EnqueueCounts) -> None:
            if os.getppid() != parent:  # orphaned: the cycle that wanted these pages is gone
                raise SystemExit(1)
            conn.send(("page", asdict(counts)))

        job.enqueue_rest(until=until, on_page=on_page)
        conn.send(("done", None))
        status = 0
    except BaseException as exc:  # everything goes back to the parent, then out
        with contextlib.suppress(Exception):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        with contextlib.suppress(Exception):
            conn.close()
        # Never run the parent's atexit handlers, finalizers or event loop in the child.
        os._exit(status)


def _fresh(engine: Engine) -> Engine:
    """A new engine like ``engine`` (same URL, options and listeners), owning no connection."""
    return make_engine(engine.url.render_as_string(hide_password=False))


def _quiet_signals() -> None:
    """Drop the handlers inherited from the parent: they would poke its event loop (asyncio's
    wake-up pipe is shared across the fork). SIGTERM and SIGINT simply end the producer; its
    open transaction, if any, rolls back."""
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, signal.SIG_DFL)


def _die_with(parent: int) -> None:
    """Ask Linux to kill this process when its parent dies (``kill -9`` of the cycle)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        prctl: Callable[..., Any] = libc.prctl
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)
