"""Who may call the inbound server, tried as an attacker would, over real HTTP on loopback.

Loopback has a whole /8: a client bound to 127.0.0.2 is "another machine" to an allow-list of
127.0.0.1/32, and 127.0.0.3 plays the reverse proxy. Every refusal must store nothing.
"""

from __future__ import annotations

import json
import logging
import select
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from dvcsync.config import Settings
from dvcsync.mapping import load_mappings
from dvcsync.province.sample import generate
from dvcsync.server import create_server_app, listen_problems, server_config
from mock_portal.testing import free_port

REPO = Path(__file__).resolve().parents[2]
PROMOTION = json.loads(
    (REPO / "tests/fixtures/contract/thongbaokhuyenmai_push.json").read_text(encoding="utf-8")
)
TOKEN = "a-shared-credential-of-32-chars!"
PROMOTION_PATH = "/inbound/dvcqg/hoso"
CALLBACK_PATH = "/inbound/payment/dpnhankqthanhtoanhs"
BILL_PATH = "/inbound/payment/dptracuuthanhtoanhs"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("access") / "onestop.db"
    generate(path, 30, 3)
    return path


class Inbound:
    def __init__(self, url: str, onestop: Path, state: Path, settings: Settings) -> None:
        self.url, self.onestop, self.state, self.settings = url, onestop, state, settings

    def client(self, source: str = "127.0.0.1", **kwargs: Any) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=source)
        return httpx.Client(base_url=self.url, transport=transport, timeout=10, trust_env=False, **kwargs)

    def dossiers(self, code: str) -> int:
        with sqlite3.connect(self.onestop) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM ho_so WHERE so_ho_so = ?", (code,)).fetchone()[0])

    def inbox_rows(self) -> int:
        with sqlite3.connect(self.state) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0])


@contextmanager
def serving(settings: Settings, **overrides: Any) -> Iterator[str]:
    app = create_server_app(settings, load_mappings(settings.province.mappings))
    server = uvicorn.Server(server_config(app, settings.server, **overrides))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("inbound server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        for engine in app.state.engines:
            engine.dispose()


@pytest.fixture
def inbound(tmp_path: Path, sample: Path) -> Iterator[Callable[..., Inbound]]:
    """``inbound(allow=[...], token=..., payment={...})``: the server with that ``[server]``."""
    stack: list[Any] = []

    def start(**server: Any) -> Inbound:
        onestop = tmp_path / f"onestop{len(stack)}.db"
        shutil.copy(sample, onestop)
        state = tmp_path / f"state{len(stack)}.db"
        settings = Settings.load(
            None,
            province={"source_url": f"sqlite:///{onestop}", "mappings": str(REPO / "mappings")},
            state={"url": f"sqlite:///{state}"},
            server={"port": free_port(), **server},
        )
        ctx = serving(settings)
        url = ctx.__enter__()
        stack.append(ctx)
        return Inbound(url, onestop, state, settings)

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


def promotion(code: str) -> dict[str, Any]:
    return {**PROMOTION, "MaHoSo": code}


# ---------------------------------------------------------------------------------------- allow-list


def test_a_caller_outside_the_allow_list_is_refused_and_nothing_is_stored(
    inbound: Callable[..., Inbound], caplog: pytest.LogCaptureFixture
) -> None:
    server = inbound(allow=["127.0.0.1/32"])
    caplog.set_level(logging.WARNING)
    with server.client("127.0.0.2") as attacker:
        answer = attacker.post(PROMOTION_PATH, json=promotion("ATTACKER-0001"))
        bill = attacker.post(BILL_PATH, json={"MaHoSo": "000.00.01.H40-250101-0001"})
        callback = attacker.post(CALLBACK_PATH, json={"MaThamChieu": "X", "MaLoi": "00"})
    assert answer.status_code == 403 and answer.json()["error_code"] == -1
    assert bill.status_code == 403 and bill.json() == {"error_code": -1, "message": []}
    assert callback.status_code == 403 and callback.json()["MaLoi"] == "99"
    assert server.dossiers("ATTACKER-0001") == 0 and server.inbox_rows() == 0
    refused = [r.getMessage() for r in caplog.records if "refused with 403" in r.getMessage()]
    assert len(refused) == 3 and all("127.0.0.2" in line for line in refused)
    assert not any("ATTACKER" in r.getMessage() for r in caplog.records)  # no body in the log

    with server.client("127.0.0.1") as portal:
        created = portal.post(PROMOTION_PATH, json=promotion("G22.99-251120-9001"))
    assert created.status_code == 200 and created.json()["error_code"] == 0, created.text
    assert server.dossiers("G22.99-251120-9001") == 1


def test_by_default_only_loopback_may_call(inbound: Callable[..., Inbound]) -> None:
    server = inbound()
    with server.client("127.0.0.1") as local:
        assert local.post(PROMOTION_PATH, json=promotion("G22.99-251120-9002")).json()["error_code"] == 0
    # a caller from another machine cannot be made on loopback: ask the guard's rule directly
    from ipaddress import ip_address

    from dvcsync.server import AccessGuard

    guard = AccessGuard(lambda *a: None, server.settings.server)  # type: ignore[arg-type,return-value]
    for group in ("payment", "portal", "monitoring"):
        assert guard.rules[group].admits(ip_address("127.0.0.2"))
        assert not guard.rules[group].admits(ip_address("203.0.113.5"))
        assert not guard.rules[group].admits(ip_address("10.1.2.3"))


def test_each_group_has_its_own_allow_list_and_healthz_is_open(inbound: Callable[..., Inbound]) -> None:
    server = inbound(allow=["127.0.0.1/32"], monitoring={"allow": ["10.0.0.0/8"]})
    with server.client("127.0.0.1") as local, server.client("127.0.0.2") as other:
        for path in ("/metrics", "/readyz", "/docs", "/openapi.json", "/no-such-path"):
            assert local.get(path).status_code == 403, path
        assert local.get("/healthz").status_code == 200
        assert other.get("/healthz").status_code == 200
        assert local.post(BILL_PATH, json={"MaHoSo": "nothing"}).status_code == 200  # payment: [server]


# ---------------------------------------------------------------------------------------- credential


def test_a_bearer_credential_is_required_when_configured(inbound: Callable[..., Inbound]) -> None:
    server = inbound(portal={"token": TOKEN})
    with server.client() as client:
        missing = client.post(PROMOTION_PATH, json=promotion("ATTACKER-0002"))
        wrong = client.post(
            PROMOTION_PATH,
            json=promotion("ATTACKER-0003"),
            headers={"Authorization": f"Bearer {TOKEN[:-1]}x"},
        )
        basic = client.post(
            PROMOTION_PATH, json=promotion("ATTACKER-0004"), headers={"Authorization": f"Basic {TOKEN}"}
        )
        right = client.post(
            PROMOTION_PATH,
            json=promotion("G22.99-251120-9003"),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        # the token is the portal group's: the payment group is still loopback-only, token-free
        assert client.post(BILL_PATH, json={"MaHoSo": "x"}).status_code == 200
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401 and refused.json()["error_code"] == -1
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert right.json()["error_code"] == 0
    assert all(server.dossiers(f"ATTACKER-000{n}") == 0 for n in (2, 3, 4))
    assert server.inbox_rows() == 1


def test_a_credential_alone_admits_any_address(inbound: Callable[..., Inbound]) -> None:
    server = inbound(token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with server.client("127.0.0.2", headers=auth) as remote:
        assert remote.get("/metrics").status_code == 200
        assert remote.post(PROMOTION_PATH, json=promotion("G22.99-251120-9004")).json()["error_code"] == 0
    with server.client("127.0.0.2") as anonymous:
        assert anonymous.get("/metrics").status_code == 401


def test_the_mock_portal_sends_its_token_with_pushes(inbound: Callable[..., Inbound]) -> None:
    from mock_portal.testing import run_mock

    server = inbound(portal={"token": TOKEN})
    code = "G22.99-251120-9005"
    with run_mock(
        province_url=f"{server.url}{PROMOTION_PATH}", province_token=TOKEN, push_retry_s=0.05
    ) as mock:
        assert httpx.post(f"{mock.url}/_admin/portal-dossiers", json=[promotion(code)]).status_code == 201
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and server.dossiers(code) == 0:
            time.sleep(0.05)
    assert server.dossiers(code) == 1


# ---------------------------------------------------------------------------------------- proxies


def test_forwarding_headers_count_only_from_trusted_proxies(inbound: Callable[..., Inbound]) -> None:
    server = inbound(allow=["127.0.0.1/32"], trusted_proxies=["127.0.0.3/32"])
    spoof = {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1", "Forwarded": "for=127.0.0.1"}
    with server.client("127.0.0.2") as attacker:
        assert attacker.get("/metrics", headers=spoof).status_code == 403
        assert (
            attacker.post(PROMOTION_PATH, json=promotion("ATTACKER-0005"), headers=spoof).status_code == 403
        )
    with server.client("127.0.0.3") as proxy:
        assert proxy.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
        assert proxy.get("/metrics", headers={"X-Real-IP": "127.0.0.1"}).status_code == 200
        assert (
            proxy.get("/metrics", headers={"Forwarded": 'for="127.0.0.1:4711";proto=https'}).status_code
            == 200
        )
        # what the client wrote comes first; the proxy appends the address it saw: that one counts
        assert proxy.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1, 127.0.0.9"}).status_code == 403
        assert proxy.get("/metrics", headers={"X-Forwarded-For": "not-an-address"}).status_code == 403
        assert proxy.get("/metrics").status_code == 403  # the proxy itself is not allowed
    assert server.dossiers("ATTACKER-0005") == 0


# ---------------------------------------------------------------------------------------- limits


def _vm_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _raw_post(url: str, head: bytes, chunks: Iterator[bytes]) -> bytes:
    """Send ``head`` then the body chunk by chunk, stopping as soon as the server answers (as a
    careful client does: a server that refuses early closes the connection on the rest)."""
    host, port = url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                if select.select([sock], [], [], 0)[0]:
                    break
                sock.sendall(chunk)
        except OSError:
            pass  # the server closed on us: read what it said
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    return answer


def test_a_200_mb_body_gets_413_without_being_read_or_stored(inbound: Callable[..., Inbound]) -> None:
    server = inbound()
    size = 200 * 1024 * 1024
    chunk = b"[" * 65536
    before = _vm_rss_kib()
    peak = before
    declared = _raw_post(
        server.url,
        f"POST {PROMOTION_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n".encode(),
        (chunk for _ in range(size // len(chunk))),
    )
    peak = max(peak, _vm_rss_kib())

    def chunked() -> Iterator[bytes]:
        nonlocal peak
        for n in range(size // len(chunk)):
            if n % 256 == 0:
                peak = max(peak, _vm_rss_kib())
            yield b"%x\r\n%s\r\n" % (len(chunk), chunk)
        yield b"0\r\n\r\n"

    streamed = _raw_post(
        server.url,
        f"POST {CALLBACK_PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode(),
        chunked(),
    )
    assert declared.startswith(b"HTTP/1.1 413"), declared[:200]
    assert streamed.startswith(b"HTTP/1.1 413"), streamed[:200]
    assert b'"MaLoi":"99"' in streamed.replace(b" ", b"")
    assert (peak - before) < 50 * 1024, f"RSS grew {(peak - before) / 1024:.0f} MiB"
    assert server.inbox_rows() == 0


def test_requests_beyond_the_in_flight_cap_get_503(inbound: Callable[..., Inbound]) -> None:
    """With a cap of 1, a request whose body is still arriving holds the one place."""
    server = inbound(max_requests_in_flight=1)
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as slow:
        slow.sendall(f"POST {PROMOTION_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode())
        with server.client() as client:
            deadline = time.monotonic() + 10
            status = 0
            while time.monotonic() < deadline:
                status = client.get("/metrics").status_code
                if status == 503:
                    break
                time.sleep(0.05)
            assert status == 503
            assert client.get("/healthz").status_code == 200
    with server.client() as client:
        deadline = time.monotonic() + 10
        while client.get("/metrics").status_code != 200:
            assert time.monotonic() < deadline, "the place was not given back"
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------- start-up


def test_a_public_listen_address_needs_an_allow_list_or_a_credential() -> None:
    def problems(**server: Any) -> list[str]:
        return listen_problems(Settings.load(None, server=server).server)

    [problem] = problems(host="0.0.0.0")
    assert "allow" in problem and "token_file" in problem and "tls_client_ca" in problem
    assert problems(host="127.0.0.1") == []
    assert problems(host="0.0.0.0", allow=["203.0.113.0/24"]) == []
    assert problems(host="0.0.0.0", payment={"token": TOKEN}) == []
    assert problems(host="::1") == []
    [missing] = problems(host="127.0.0.1", tls_cert="/nonexistent/cert.pem", tls_key="/nonexistent/key.pem")[
        :1
    ]
    assert "tls_cert" in missing and "no such file" in missing


def test_short_tokens_and_bad_networks_are_configuration_errors() -> None:
    from dvcsync.config import ConfigError

    with pytest.raises(ConfigError, match="at least 16"):
        Settings.load(None, server={"payment": {"token": "short"}})
    with pytest.raises(ConfigError, match="not an IP address"):
        Settings.load(None, server={"allow": ["10.0.0.0/33"]})


def test_connections_beyond_the_cap_are_closed_at_once(inbound: Callable[..., Inbound]) -> None:
    from dvcsync.server._serve import DROPPED

    server = inbound(max_connections=16)
    host, port = server.url.removeprefix("http://").split(":")
    before = DROPPED["connections"]
    held = [socket.create_connection((host, int(port)), timeout=10) for _ in range(30)]
    try:
        deadline = time.monotonic() + 15  # accepting 30 connections may take a while on a busy machine
        while DROPPED["connections"] - before < 14:
            assert time.monotonic() < deadline, DROPPED
            time.sleep(0.05)
        closed = 0
        for sock in held:  # the 14 dropped ones read as closed now; the others stay open
            sock.settimeout(0.2)
            try:
                closed += sock.recv(1) == b""
            except TimeoutError:
                pass
            except OSError:
                closed += 1
        assert closed == 30 - 16 and DROPPED["connections"] - before == 14
    finally:
        for sock in held:
            sock.close()
    with server.client() as client:  # the places come back
        deadline = time.monotonic() + 10
        while client.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
