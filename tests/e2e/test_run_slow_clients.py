"""A thousand slow callers against `dvcsync run`: the service keeps answering and syncing, and the
slow connections are dropped by their deadlines (a header dribbled a byte at a time, a body that
never finishes)."""

from __future__ import annotations

import selectors
import signal
import socket
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from dvcsync.province.sample import generate
from mock_portal.testing import free_port, run_mock_process

from .conftest import REPO, db_upgrade
from .test_run import _ok, _start, _wait

SLOW_HEADERS, SLOW_BODIES = 900, 100


def _push_ok_since(state: Path, since: float) -> bool:
    if not state.exists():
        return False
    with sqlite3.connect(state) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM run WHERE job = 'push' AND status = 'ok' AND started_at >= ?", (since,)
        ).fetchone()
    return bool(row[0])


def _open_slow_connections(port: int) -> list[socket.socket]:
    """SLOW_HEADERS callers stopped inside a header, SLOW_BODIES inside a body, all non-blocking."""
    slow = []
    for n in range(SLOW_HEADERS + SLOW_BODIES):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if n < SLOW_HEADERS:
            sock.sendall(b"POST /inbound/dvcqg/hoso HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        else:
            sock.sendall(b"POST /inbound/dvcqg/hoso HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{")
        sock.setblocking(False)
        slow.append(sock)
    return slow


def _closed(sock: socket.socket) -> bool:
    """Whether the service has closed this connection (what it answered before, if anything, read)."""
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@pytest.mark.slow
def test_slow_clients_are_dropped_while_the_service_answers_and_syncs(tmp_path: Path) -> None:
    onestop = tmp_path / "onestop.db"
    generate(onestop, 40, 5)
    port = free_port()
    state = tmp_path / "state.db"
    with run_mock_process() as mock:
        config = tmp_path / "dvcsync.toml"
        config.write_text(
            f'[province]\nsource_url = "sqlite:///{onestop}"\nmappings = "{REPO / "mappings"}"\n'
            f'[portal]\nadapter_url = "{mock.adapter_url}"\nrate_limit = 500\n'
            f'[state]\nurl = "sqlite:///{state}"\n'
            f"[server]\nport = {port}\nheader_timeout_s = 20\nread_timeout_s = 25\n"
            '[schedule]\npush = "every 1s"\npull = "every 1h"\npayments = "every 1h"\n',
            encoding="utf-8",
        )
        db_upgrade(config)  # `dvcsync run` starts no state (issue 18): deploy/ upgrades first
        service = _start(config)
        slow: list[socket.socket] = []
        try:
            assert _wait(lambda: _ok(f"http://127.0.0.1:{port}/healthz")), "the service did not start"
            opened = time.time()
            slow.extend(_open_slow_connections(port))

            # the service answers while all of them hold a connection
            timings = []
            for _ in range(5):  # the best of five: one scheduling hiccup on a loaded machine is not a failure
                started = time.perf_counter()
                assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
                timings.append(time.perf_counter() - started)
            assert min(timings) < 1.0, timings

            # a push cycle completes meanwhile; the slow callers keep dribbling a byte each
            selector = selectors.DefaultSelector()
            for sock in slow:
                selector.register(sock, selectors.EVENT_READ)
            alive = set(slow)
            pushed = False
            deadline = time.monotonic() + 90
            next_byte = 0.0
            while alive and time.monotonic() < deadline:
                if time.monotonic() >= next_byte:  # one byte each every 2 s, however busy the loop
                    next_byte = time.monotonic() + 2.0
                    for sock in list(alive):
                        try:
                            sock.send(b"a")
                        except OSError:
                            alive.discard(sock)
                for key, _ in selector.select(timeout=0.5):
                    sock = key.fileobj  # type: ignore[assignment]
                    if _closed(sock) and sock in alive:
                        alive.discard(sock)
                        selector.unregister(sock)
                pushed = pushed or _push_ok_since(state, opened)
                if not pushed:
                    assert len(alive) > 0.9 * len(slow) or _push_ok_since(state, opened)
            dropped_after = time.time() - opened
            assert not alive, f"{len(alive)} slow connections still open after {dropped_after:.0f} s"
            assert dropped_after < 60, dropped_after
            assert pushed or _push_ok_since(state, opened), (
                "no push cycle completed while the slow callers held on"
            )
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            assert 'dvcsync_inbound_dropped_connections_total{reason="headers"}' in metrics
            assert 'dvcsync_inbound_dropped_connections_total{reason="body"}' in metrics
            assert _ok(f"http://127.0.0.1:{port}/healthz")
        finally:
            for sock in slow:
                sock.close()
            service.send_signal(signal.SIGTERM)
            _, err = service.communicate(timeout=60)
        assert len(err) < 200_000, f"{len(err)} bytes of log for {len(slow)} slow callers"
