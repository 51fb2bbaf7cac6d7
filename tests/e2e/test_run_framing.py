"""Request smuggling and framing against `dvcsync run` (issue 20 item 1): every request whose
framing a proxy in front could read differently (RFC 9112 §6.3) is answered 400 once and the
connection closed, so the request hidden behind it is never answered; an early 401 or 413 is read
whole by a caller still sending its body (a lingering close, not a reset)."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dvcsync.province.sample import generate
from mock_portal.testing import free_port, run_mock_process

from .conftest import REPO, db_upgrade
from .test_run import _ok, _start, _wait

TOKEN = "portal-token-0123456789abcdef"
MAX_BODY = 64 * 1024
SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
PROMOTION = "/inbound/dvcqg/hoso"


@dataclass
class Service:
    port: int
    onestop: Path
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("framing")
    onestop = tmp / "onestop.db"
    generate(onestop, 20, 3)
    port = free_port()
    with run_mock_process() as mock:
        config = tmp / "dvcsync.toml"
        config.write_text(
            f'[province]\nsource_url = "sqlite:///{onestop}"\nmappings = "{REPO / "mappings"}"\n'
            f'[portal]\nadapter_url = "{mock.adapter_url}"\n'
            f'[state]\nurl = "sqlite:///{tmp / "state.db"}"\n'
            f"[server]\nport = {port}\nmax_body_bytes = {MAX_BODY}\n"
            f'[server.portal]\ntoken = "{TOKEN}"\n'
            '[schedule]\npush = "every 1h"\npull = "every 1h"\npayments = "every 1h"\n',
            encoding="utf-8",
        )
        db_upgrade(config)
        process = _start(config)
        try:
            assert _wait(lambda: _ok(f"http://127.0.0.1:{port}/healthz")), "the service did not start"
            yield Service(port, onestop, process)
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=60)
    assert len(err) < 100_000, f"{len(err)} bytes of log"


def _exchange(port: int, payload: bytes, responses: int = 1, wait_s: float = 10.0) -> tuple[bytes, bool]:
    """Send ``payload`` on one connection; read until the server closes it (True) or ``responses``
    answers have come and nothing more arrives for a moment (False)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(payload)
        data = b""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            sock.settimeout(1.0 if data.count(b"HTTP/1.1 ") >= responses else wait_s)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return data, False
            if not chunk:
                return data, True
            data += chunk
        return data, False


def _post(head: str, body: bytes = b"", path: str = "/healthz", version: str = "1.1") -> bytes:
    return f"POST {path} HTTP/{version}\r\nHost: x\r\n{head}\r\n".encode() + body


CHUNKED_5 = b"5\r\nhello\r\n0\r\n\r\n"

AMBIGUOUS = {
    "content-length then chunked": _post("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", CHUNKED_5),
    "lower-case chunked then content-length": _post(
        "transfer-encoding: chunked\r\ncontent-length: 4\r\n", CHUNKED_5
    ),
    "Chunked capitalised with content-length": _post(
        "Transfer-Encoding: Chunked\r\nContent-Length: 21\r\n", CHUNKED_5
    ),
    "content-length 0 with chunked": _post("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", CHUNKED_5),
    "two differing content-lengths": _post("Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"),
    "a list of differing content-lengths": _post("Content-Length: 5, 6\r\n", b"hello!"),
    "two equal content-lengths": _post("Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
    "unknown coding gzip": _post("Transfer-Encoding: gzip\r\n", CHUNKED_5),
    "gzip then chunked": _post("Transfer-Encoding: gzip, chunked\r\n", CHUNKED_5),
    "chunked twice in a list": _post("Transfer-Encoding: chunked, chunked\r\n", CHUNKED_5),
    "two transfer-encoding headers": _post(
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CHUNKED_5
    ),
    "identity coding": _post("Transfer-Encoding: identity\r\nContent-Length: 5\r\n", b"hello"),
    "transfer-encoding on HTTP/1.0": _post("Transfer-Encoding: chunked\r\n", CHUNKED_5, version="1.0"),
    "folded transfer-encoding": _post("Transfer-Encoding:\r\n chunked\r\nContent-Length: 4\r\n", CHUNKED_5),
    "folded other header": _post("X-Note: a\r\n\tb\r\nContent-Length: 5\r\n", b"hello"),
    "bare LF before transfer-encoding": _post("X-Note: a\nTransfer-Encoding: chunked\r\n", CHUNKED_5),
    "space before the colon": _post("Transfer-Encoding : chunked\r\nContent-Length: 4\r\n", CHUNKED_5),
    "content-length not a number": _post("Content-Length: abc\r\n", b"hello"),
    "negative content-length": _post("Content-Length: -1\r\n", b"hello"),
    "signed content-length": _post("Content-Length: +5\r\n", b"hello"),
    "hexadecimal content-length": _post("Content-Length: 0x5\r\n", b"hello"),
    "chunk size not hexadecimal": _post("Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n"),
    "vertical tab in transfer-encoding": _post("Transfer-Encoding:\x0bchunked\r\n", CHUNKED_5),
    "NUL in a header": _post("X-Note: a\x00b\r\nContent-Length: 5\r\n", b"hello"),
}


@pytest.mark.parametrize("payload", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
def test_ambiguous_framing_is_refused_once_and_closed(service: Service, payload: bytes) -> None:
    data, closed = _exchange(service.port, payload + SMUGGLED)
    assert data.startswith(b"HTTP/1.1 400 "), data[:200]
    assert data.count(b"HTTP/1.1 ") == 1, f"the hidden request was answered: {data!r}"
    assert closed, "the connection stayed open after a refused framing"


def test_a_smuggled_promotion_is_never_taken_in(service: Service) -> None:
    """The issue's case: a lower-case Transfer-Encoding first, a Content-Length a proxy would
    frame by, and a promotion hidden in what h11 would read as the next request."""
    hidden = b'{"MaHoSo": "SMUGGLED-1", "MaTTHC": "1.0001"}'  # never parsed: the connection is closed
    smuggled = (
        f"POST {PROMOTION} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "X-Forwarded-For: 10.9.9.9\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(hidden)}\r\n\r\n"
    ).encode() + hidden
    first_body = b"0\r\n\r\n" + smuggled
    payload = _post(f"transfer-encoding: chunked\r\ncontent-length: {len(first_body)}\r\n", first_body)
    data, closed = _exchange(service.port, payload)
    assert data.startswith(b"HTTP/1.1 400 ") and data.count(b"HTTP/1.1 ") == 1 and closed, data[:300]
    with sqlite3.connect(service.onestop) as conn:
        taken = conn.execute("SELECT COUNT(*) FROM ho_so WHERE ma_ho_so_qg = 'SMUGGLED-1'").fetchone()[0]
    assert taken == 0


def test_unambiguous_framing_keeps_the_connection(service: Service) -> None:
    """Chunked alone, Content-Length alone and pipelined requests are answered, each once."""
    chunked = _post("Transfer-Encoding: chunked\r\n", CHUNKED_5, path="/healthz")
    sized = _post("Content-Length: 5\r\n", b"hello", path="/healthz")
    data, closed = _exchange(service.port, chunked + sized + SMUGGLED, responses=3)
    assert data.count(b"HTTP/1.1 ") == 3, data
    assert b"HTTP/1.1 400 " not in data
    assert not closed


def test_an_early_401_is_read_by_a_caller_still_sending(service: Service) -> None:
    body = b"{" + b" " * (3 * 1024 * 1024) + b"}"
    payload = _post(
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n", body, path=PROMOTION
    )
    data, closed = _exchange(service.port, payload)
    assert data.startswith(b"HTTP/1.1 401 "), data[:200]
    assert b"connection: close" in data.lower() and closed


def test_an_early_413_is_read_by_a_caller_still_sending(service: Service) -> None:
    body = b"x" * (2 * 1024 * 1024)
    payload = _post(f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n", body, path=PROMOTION)
    data, closed = _exchange(service.port, payload)
    assert data.startswith(b"HTTP/1.1 413 "), data[:200]
    assert closed


def test_framing_refusals_are_counted(service: Service) -> None:
    _exchange(service.port, AMBIGUOUS["content-length then chunked"])
    metrics = httpx.get(f"http://127.0.0.1:{service.port}/metrics", timeout=10).text
    assert 'dvcsync_inbound_dropped_connections_total{reason="framing"}' in metrics
    assert _ok(f"http://127.0.0.1:{service.port}/healthz")
