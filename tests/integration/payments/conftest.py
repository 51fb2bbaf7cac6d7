"""Payments over real HTTP: the adapter's inbound server under uvicorn, the mock platform beside it,
real SQLite files for the province and the state store."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from dvcsync.config import Settings
from dvcsync.mapping import MappingSet, load_mappings
from dvcsync.province.sample import generate
from dvcsync.server import create_server_app
from dvcsync.sync.cycles import run_payments
from dvcsync.sync.payments import PaymentSummary
from mock_portal.testing import RunningMock

from ..mock_portal.soap_support import serve

REPO = Path(__file__).resolve().parents[3]
CALLBACK_PATH = "/inbound/payment/dpnhankqthanhtoanhs"
LOOKUP_PATH = "/inbound/payment/dptracuuthanhtoanhs"


@pytest.fixture(scope="session")
def mappings() -> MappingSet:
    return load_mappings(REPO / "mappings")


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("payments") / "onestop.db"
    generate(path, 40, 7)
    return path


@dataclass
class Province:
    """The province database file, read and prepared with plain sqlite3 (not the adapter's code)."""

    path: Path

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.path) as conn:
            return conn.execute(sql, args).fetchall()

    def execute(self, sql: str, *args: Any) -> None:
        with sqlite3.connect(self.path) as conn:
            conn.execute(sql, args)

    def make_paying(self, index: int = 0) -> tuple[str, int]:
        """The ``index``-th dossier with fees collected up front, now asking for payment with those
        fees unpaid and no attempts; (so_ho_so, amount)."""
        rows = self.query(
            "SELECT h.id, h.so_ho_so FROM ho_so h WHERE EXISTS (SELECT 1 FROM le_phi l"
            " WHERE l.ho_so_id = h.id AND l.hinh_thuc_thu = 'thu_truoc' AND l.so_tien > 0) ORDER BY h.id"
        )
        ho_so_id, code = rows[index]
        self.execute(
            "UPDATE ho_so SET trang_thai = 'paying', updated_at = '2026-01-02T03:04:05' WHERE id = ?",
            ho_so_id,
        )
        self.execute("UPDATE le_phi SET da_thanh_toan = 0 WHERE ho_so_id = ?", ho_so_id)
        self.execute("DELETE FROM thanh_toan WHERE ho_so_id = ?", ho_so_id)
        amount = self.query(
            "SELECT SUM(so_tien) FROM le_phi WHERE ho_so_id = ? AND hinh_thuc_thu = 'thu_truoc'", ho_so_id
        )[0][0]
        return str(code), int(amount)

    def attempts(self, code: str) -> list[dict[str, Any]]:
        with sqlite3.connect(self.path) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "SELECT t.* FROM thanh_toan t JOIN ho_so h ON h.id = t.ho_so_id"
                " WHERE h.so_ho_so = ? ORDER BY t.id",
                (code,),
            ).fetchall()
            return [dict(r) for r in rows]

    def unpaid_fees(self, code: str) -> int:
        return int(
            self.query(
                "SELECT COUNT(*) FROM le_phi l JOIN ho_so h ON h.id = l.ho_so_id WHERE h.so_ho_so = ?"
                " AND l.hinh_thuc_thu = 'thu_truoc' AND l.da_thanh_toan = 0",
                code,
            )[0][0]
        )

    def updated_at(self, code: str) -> str:
        return str(self.query("SELECT updated_at FROM ho_so WHERE so_ho_so = ?", code)[0][0])

    def snapshot(self, code: str) -> tuple[Any, ...]:
        """Everything a payment may change for one dossier."""
        fees = self.query(
            "SELECT l.id, l.da_thanh_toan FROM le_phi l JOIN ho_so h ON h.id = l.ho_so_id"
            " WHERE h.so_ho_so = ? ORDER BY l.id",
            code,
        )
        return (self.updated_at(code), fees, [tuple(a.values()) for a in self.attempts(code)])


@dataclass
class Env:
    url: str
    province: Province
    settings: Settings
    mappings: MappingSet
    state: Path
    tmp: Path

    @property
    def callback_url(self) -> str:
        return f"{self.url}{CALLBACK_PATH}"

    def job_settings(self, mock: RunningMock, **payment: Any) -> Settings:
        """The adapter's settings for payment cycles against ``mock`` (polling from age 0 by default)."""
        values = {
            "init_url": f"{mock.url}/payment/init",
            "query_url": f"{mock.url}/payment/query",
            "bill_url": f"{mock.url}/payment/bill",
            "poll_min_age_s": 0,
            "receipts_dir": self.tmp / "receipts",
            **payment,
        }
        return self.settings.model_copy(update={"payment": self.settings.payment.model_copy(update=values)})

    def cycle(self, mock: RunningMock, **payment: Any) -> PaymentSummary:
        return asyncio.run(run_payments(self.job_settings(mock, **payment), self.mappings))

    def inbox(self) -> list[tuple[str, str, str | None]]:
        with sqlite3.connect(self.state) as conn:
            return conn.execute(
                "SELECT natural_key, state, error FROM inbox WHERE kind = 'payment_result' ORDER BY id"
            ).fetchall()


def make_settings(tmp: Path, onestop: Path, **payment: Any) -> Settings:
    return Settings.load(
        None,
        province={"source_url": f"sqlite:///{onestop}", "mappings": str(REPO / "mappings")},
        state={"url": f"sqlite:///{tmp / 'state.db'}"},
        payment=payment,
    )


@pytest.fixture
def env(tmp_path: Path, sample: Path, mappings: MappingSet) -> Iterator[Env]:
    """A fresh copy of the province and the adapter's inbound server serving it."""
    onestop = tmp_path / "onestop.db"
    shutil.copy(sample, onestop)
    settings = make_settings(tmp_path, onestop)
    with served(settings, mappings) as url:
        yield Env(url, Province(onestop), settings, mappings, tmp_path / "state.db", tmp_path)


@contextlib.contextmanager
def served(settings: Settings, mappings: MappingSet) -> Iterator[str]:
    app: FastAPI = create_server_app(settings, mappings)
    try:
        with serve(app) as url:
            yield url
    finally:
        for engine in app.state.engines:
            engine.dispose()


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.03)
    return condition()
