"""The jobs driven in process: the mock portal's ASGI app behind ``httpx.ASGITransport`` (no socket,
no server thread), a generated one-stop database and a real SQLite state in ``tmp_path``.

What these tests exercise is the jobs' decisions against a strict portal, not the network: the
transport, TLS, faults and real processes stay with tests/integration and tests/e2e.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dvcsync.config import Settings
from dvcsync.mapping import MappingSet, load_mappings
from dvcsync.portal import PortalClient
from dvcsync.province.sample import generate
from dvcsync.state import StateStore
from mock_portal.app import create_app
from mock_portal.config import MockConfig

REPO = Path(__file__).resolve().parents[3]
PORTAL = "http://127.0.0.1:9"
"""Where the settings say the portal is: never connected to, the transport hands requests to the app."""


@pytest.fixture(scope="session")
def mappings() -> MappingSet:
    return load_mappings(REPO / "mappings")


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 generated dossiers (seed 5): province- and portal-submitted ones, a few quarantined."""
    path = tmp_path_factory.mktemp("jobs") / "onestop.db"
    generate(path, 30, 5)
    return path


def job_settings(tmp: Path, onestop: Path, **payment: Any) -> Settings:
    return Settings.load(
        None,
        province={"source_url": f"sqlite:///{onestop}", "mappings": str(REPO / "mappings")},
        portal={"adapter_url": f"{PORTAL}/dvcqg", "soap_url": f"{PORTAL}/soap", "rate_limit": 10_000},
        state={"url": f"sqlite:///{tmp / 'state.db'}"},
        payment={
            "init_url": f"{PORTAL}/payment/init",
            "query_url": f"{PORTAL}/payment/query",
            "bill_url": f"{PORTAL}/payment/bill",
            "receipts_dir": str(tmp / "receipts"),
            **payment,
        },
    )


@dataclass
class Rig:
    """One test's province copy, state, settings and mock portal app."""

    tmp: Path
    onestop: Path
    settings: Settings
    mappings: MappingSet
    store: StateStore
    app: FastAPI

    def province(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the province database with plain sqlite3, not the adapter's code."""
        with sqlite3.connect(self.onestop) as conn:
            return conn.execute(sql, args).fetchall()

    def province_execute(self, sql: str, *args: Any) -> None:
        with sqlite3.connect(self.onestop) as conn:
            conn.execute(sql, args)

    @asynccontextmanager
    async def http(self, app: FastAPI | None = None) -> AsyncIterator[httpx.AsyncClient]:
        """A client whose requests go to ``app`` (this rig's mock unless given) in process."""
        transport = httpx.ASGITransport(app=app or self.app)
        async with httpx.AsyncClient(transport=transport, base_url=PORTAL) as client:
            yield client

    def portal(self, http: httpx.AsyncClient) -> PortalClient:
        return PortalClient(self.settings.portal, http)


async def admin(http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
    """The mock's admin API (``/_admin``), which tests use to seed and to look."""
    reply = await http.request(method, f"/_admin{path}", **kwargs)
    assert reply.status_code < 300, reply.text
    return reply.json()


@pytest.fixture
def rig(tmp_path: Path, sample: Path, mappings: MappingSet, state_at_head: StateStore) -> Iterator[Rig]:
    onestop = tmp_path / "onestop.db"
    shutil.copy(sample, onestop)
    settings = job_settings(tmp_path, onestop)
    store = state_at_head  # tmp_path / "state.db", at head: a copy of the session's migrated template
    assert store.url == settings.state.url
    app = create_app(MockConfig())
    try:
        yield Rig(tmp_path, onestop, settings, mappings, store, app)
    finally:
        store.close()
        app.state.store.close()
