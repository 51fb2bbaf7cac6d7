"""One inbound server for two tenants: each tenant's paths under /t/<code>/ reach its own province
database and state, paths of no tenant answer 404 in the contract's shape, monitoring stays at the
root, and a tenant's own caller rules guard its paths.

Routing and answers are tested with the application in process (``served``: ``run_app_in_process``,
every request from 127.0.0.1); the caller rules over real HTTP (``served_on_loopback``: the server as
``dvcsync serve`` configures it, a client bound to 127.0.0.2 is another machine)."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from dvcsync.config import Settings
from dvcsync.mapping import load_mappings
from dvcsync.province.sample import generate
from dvcsync.server import create_tenants_app, server_config
from dvcsync.tenants import for_tenant, tenant_codes
from mock_portal.testing import InProcessApp, free_port, run_app_in_process

REPO = Path(__file__).resolve().parents[2]
PROMOTION = json.loads(
    (REPO / "tests/fixtures/contract/thongbaokhuyenmai_push.json").read_text(encoding="utf-8")
)
PROMOTION_PATH = "/inbound/dvcqg/hoso"
CALLBACK_PATH = "/inbound/payment/dpnhankqthanhtoanhs"
BILL_PATH = "/inbound/payment/dptracuuthanhtoanhs"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tenants") / "onestop.db"
    generate(path, 30, 8)
    return path


@dataclass
class Served:
    url: str
    onestop: dict[str, Path]
    state: dict[str, Path]
    in_process: InProcessApp | None = None

    def client(self, source: str = "127.0.0.1") -> httpx.Client:
        if self.in_process is not None:
            assert source == "127.0.0.1", "in process, every request comes from 127.0.0.1"
            return self.in_process.client(timeout=10, trust_env=False)
        transport = httpx.HTTPTransport(local_address=source)
        return httpx.Client(base_url=self.url, transport=transport, timeout=10, trust_env=False)

    def dossiers(self, tenant: str, code: str) -> int:
        with sqlite3.connect(self.onestop[tenant]) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM ho_so WHERE so_ho_so = ?", (code,)).fetchone()[0])

    def inbox(self, tenant: str) -> list[tuple[str, str]]:
        with sqlite3.connect(self.state[tenant]) as conn:
            return [(str(k), str(s)) for k, s in conn.execute("SELECT kind, state FROM inbox ORDER BY id")]


@contextlib.contextmanager
def _serving(tmp_path: Path, sample: Path, *, loopback: bool) -> Iterator[Served]:
    onestop = {code: tmp_path / f"onestop-{code}.db" for code in ("a", "b")}
    for path in onestop.values():
        shutil.copy(sample, path)
    settings = Settings.load(
        None,
        use_env=False,
        province={"mappings": str(REPO / "mappings")},
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        # the process's rule: the portal group from 127.0.0.1 only (127.0.0.2 is "elsewhere")
        server={"port": free_port(), "portal": {"allow": ["127.0.0.1/32"]}},
        tenants={
            "a": {"province": {"source_url": f"sqlite:///{onestop['a']}"}},
            # b's payment platform calls from its own network: not from this machine
            "b": {
                "province": {"source_url": f"sqlite:///{onestop['b']}"},
                "server": {"payment": {"allow": ["10.0.0.0/8"]}},
            },
        },
    )
    mappings = load_mappings(settings.province.mappings)
    tenants = {code: (for_tenant(settings, code), mappings) for code in tenant_codes(settings)}
    app = create_tenants_app(settings, tenants)
    state = {code: tmp_path / f"state-{code}.db" for code in onestop}
    try:
        if loopback:
            with _on_loopback(app, settings) as url:
                yield Served(url, onestop, state)
        else:
            with run_app_in_process(app) as running:
                yield Served(running.url, onestop, state, running)
    finally:
        for engine in app.state.engines:
            engine.dispose()


@contextlib.contextmanager
def _on_loopback(app: FastAPI, settings: Settings) -> Iterator[str]:
    """``app`` under uvicorn as ``dvcsync serve`` configures it, in a thread; its base URL."""
    server = uvicorn.Server(server_config(app, settings.server))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("inbound server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{settings.server.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def served(tmp_path: Path, sample: Path) -> Iterator[Served]:
    with _serving(tmp_path, sample, loopback=False) as running:
        yield running


@pytest.fixture
def served_on_loopback(tmp_path: Path, sample: Path) -> Iterator[Served]:
    with _serving(tmp_path, sample, loopback=True) as running:
        yield running


def promotion(code: str) -> dict[str, Any]:
    return {**PROMOTION, "MaHoSo": code}


def test_each_tenant_takes_in_its_own_promotions(served: Served) -> None:
    with served.client() as client:
        reply = client.post(f"/t/a{PROMOTION_PATH}", json=promotion("G22.99-251120-9001"))
        assert (reply.status_code, reply.json()["error_code"]) == (200, 0), reply.text
        assert served.dossiers("a", "G22.99-251120-9001") == 1
        assert served.dossiers("b", "G22.99-251120-9001") == 0
        assert served.inbox("a") == [("promotion", "applied")] and served.inbox("b") == []

        # the same dossier pushed to b is new there, and a duplicate for a
        again = promotion("G22.99-251120-9001")
        assert client.post(f"/t/b{PROMOTION_PATH}", json=again).json()["error_code"] == 0
        assert client.post(f"/t/a{PROMOTION_PATH}", json=again).json()["error_code"] == 1
    assert served.dossiers("b", "G22.99-251120-9001") == 1
    assert served.inbox("b") == [("promotion", "applied")]


def test_paths_of_no_tenant_answer_404_in_the_contract_shape(served: Served) -> None:
    with served.client() as client:
        for path in (PROMOTION_PATH, "/t/zz" + PROMOTION_PATH, "/t/" + PROMOTION_PATH):
            reply = client.post(path, json=promotion("G22.99-251120-9002"))
            assert reply.status_code == 404, path
            body = reply.json()
            assert body["error_code"] == -1 and isinstance(body["message"], str), (path, body)
        callback = client.post(CALLBACK_PATH, json={"MaThamChieu": "X"})
        assert callback.status_code == 404 and callback.json()["MaLoi"] == "99"
        bill = client.post(BILL_PATH, json={"MaHoSo": "X"})
        assert bill.status_code == 404 and bill.json() == {"error_code": -1, "message": []}
    for tenant in ("a", "b"):
        assert served.dossiers(tenant, "G22.99-251120-9002") == 0 and served.inbox(tenant) == []


def test_monitoring_stays_at_the_root_with_each_tenants_backlog(served: Served) -> None:
    with served.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"ready": True, "problems": {}}
        text = client.get("/metrics").text
        only_a = client.get("/metrics", params={"tenant": "a"}).text
        assert client.get("/metrics", params={"tenant": "zz"}).status_code == 404
        assert client.get("/t/a/metrics").status_code == 404  # a tenant's application has no monitoring
    quarantined = {
        s.labels.get("tenant"): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "dvcsync_quarantined_records"
    }
    assert quarantined == {"a": 0.0, "b": 0.0}  # one series per tenant's state
    tenants_in_a = {
        s.labels.get("tenant") for family in text_string_to_metric_families(only_a) for s in family.samples
    }
    assert tenants_in_a == {None, "a"}  # a's series and the process's, no other tenant's
    assert "process_resident_memory_bytes" in only_a


def test_a_tenants_own_caller_rules_guard_its_paths(served_on_loopback: Served) -> None:
    served = served_on_loopback
    with served.client() as client:
        # b's payment platform is allowed from 10.0.0.0/8 only: this machine is refused, in MaLoi shape
        refused = client.post(f"/t/b{CALLBACK_PATH}", json={"MaThamChieu": "X"})
        assert refused.status_code == 403 and refused.json()["MaLoi"] == "99"
        # a keeps the process's default (loopback): admitted, and its handler answers (99: unknown body)
        admitted = client.post(f"/t/a{CALLBACK_PATH}", json={"MaThamChieu": "X"})
        assert admitted.status_code == 200 and admitted.json()["MaLoi"] == "99"
    # the process's portal rule applies to every tenant that does not set its own
    with served.client("127.0.0.2") as elsewhere:
        for tenant in ("a", "b"):
            reply = elsewhere.post(f"/t/{tenant}{PROMOTION_PATH}", json=promotion("G22.99-251120-9003"))
            assert reply.status_code == 403 and reply.json()["error_code"] == -1
    assert served.inbox("b") == served.inbox("a") == []
    with sqlite3.connect(served.state["a"]) as conn:  # the refused callback, counted in a's state only
        assert conn.execute("SELECT kind, reason, count FROM inbound_refusal").fetchall() == [
            ("payment_result", "malformed", 1)
        ]
    with sqlite3.connect(served.state["b"]) as conn:
        assert conn.execute("SELECT count(*) FROM inbound_refusal").fetchone() == (0,)
