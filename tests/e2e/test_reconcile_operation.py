"""Reconciliation in operation: a read-back cut by an outage resumes where it stopped, the
comparison runs with the province and the state on PostgreSQL, the scheduled job writes dated
reports and keeps `keep_reports` of them, and personal data stays masked unless asked for."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from dvcsync.config import Settings
from dvcsync.mapping import load_mappings
from dvcsync.portal import PortalError, UnreachableError
from dvcsync.reconcile import Period, ReconcileOptions, reconcile
from dvcsync.reconcile.job import run_reconcile_job
from dvcsync.reconcile.period import local_now
from dvcsync.state import StateStore
from dvcsync.sync.cycles import run_push
from dvcsync.sync.runtime import open_runtime
from mock_portal.testing import RunningMock

from ..postgres import create_database, postgres_server
from .conftest import REPO, seed_portal
from .test_push_postgres import _copy_to_postgres

pytestmark = pytest.mark.slow

EVERYTHING = Period(date(2020, 1, 1), date(2100, 1, 1))


def _settings(mock: RunningMock, source: str, state: str, tmp: Path, **reconcile_: Any) -> Settings:
    return Settings.load(
        None,
        province={"source_url": source, "mappings": str(REPO / "mappings")},
        portal={"adapter_url": mock.adapter_url, "timeout": 5.0, "rate_limit": 1000, "concurrency": 8},
        state={"url": state},
        reconcile={"out_dir": str(tmp / "reports"), **reconcile_},
    )


class CutOff:
    """The portal client, with the portal going away after ``after`` read-backs (connection
    refused from then on), counting every read-back it passes on."""

    def __init__(self, client: Any, after: int | None) -> None:
        self.client = client
        self.after = after
        self.reads: Counter[str] = Counter()

    async def call(self, service: str, fields: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        if service == "TraCuuHoSo":
            if self.after is not None and sum(self.reads.values()) >= self.after:
                raise UnreachableError(service, "connection refused (the test cut the portal off)")
            self.reads[str((fields or {}).get("mahoso"))] += 1
        return await self.client.call(service, fields, **kwargs)


class Refusing(CutOff):
    """The portal refusing to answer for some dossiers (an error reply, every time)."""

    def __init__(self, client: Any, keys: list[str]) -> None:
        super().__init__(client, after=None)
        self.keys = set(keys)

    async def call(self, service: str, fields: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        key = str((fields or {}).get("mahoso"))
        if service == "TraCuuHoSo" and key in self.keys:
            self.reads[key] += 1
            raise PortalError(service, "error_code -1: the portal refused")
        return await super().call(service, fields, **kwargs)


def _run(settings: Settings, options: ReconcileOptions, cut: CutOff | None = None) -> Any:
    async def go() -> Any:
        async with open_runtime(settings) as runtime:
            if cut is not None:
                cut.client, runtime.client = runtime.client, cut  # type: ignore[assignment]
            return await reconcile(runtime, options)

    return asyncio.run(go())


def test_a_read_back_cut_by_an_outage_resumes_where_it_stopped(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    settings = _settings(mock, f"sqlite:///{onestop}", f"sqlite:///{tmp_path / 'state.db'}", tmp_path)
    mset = load_mappings(settings.province.mappings)
    seed_portal(mock, onestop)
    pushed = asyncio.run(run_push(settings, mset))
    assert pushed.dead == 0
    options = ReconcileOptions(period=EVERYTHING, formats=["json"], payments=False)

    first = CutOff(None, after=1200)
    with pytest.raises(UnreachableError):
        _run(settings, options, first)
    assert sum(first.reads.values()) == 1200
    assert list((tmp_path / "reports").glob(".work-*.sqlite")), "the answers so far are kept"

    second = CutOff(None, after=None)
    result = _run(settings, options, second)
    stage = result.stages["portal"]
    assert stage["resumed"] == 1000  # two whole chunks were recorded before the cut
    assert stage["read"] == stage["sampled"] - 1000 == sum(second.reads.values())
    # only the 200 of the chunk cut midway are asked again; the 1,000 recorded are not
    assert len(set(first.reads) & set(second.reads)) == 200
    assert max(second.reads.values()) == 1  # nobody asked twice in one run
    # the portal agrees with the state on every dossier: only the sample's unmappable rows remain
    found = {k: v for k, v in result.report.counts.items() if v}
    assert found == {"quarantined": pushed.enqueue.quarantined}, json.dumps(found)
    assert not list((tmp_path / "reports").glob(".work-*.sqlite")), "a finished run removes its file"

    # a dossier the portal refuses to answer is asked once a run, counted, and retried next run
    refusing = sorted(second.reads)[:3]
    picky = Refusing(None, refusing)
    with_failures = _run(settings, options, picky)
    assert with_failures.stages["portal"]["failed"] == 3
    assert {k: picky.reads[k] for k in refusing} == dict.fromkeys(refusing, 1)
    assert max(picky.reads.values()) == 1
    assert any("read-backs failed" in p for p in with_failures.problems)
    # a finished run keeps nothing: the next one asks the portal afresh (answers change)
    assert not list((tmp_path / "reports").glob(".work-*.sqlite"))

    # the next run starts afresh (nothing left to resume), and a sample reads only N
    third = CutOff(None, after=None)
    sampled = _run(
        settings,
        ReconcileOptions(
            period=EVERYTHING, formats=["json"], payments=False, portal_check="sample:50", seed=7
        ),
        third,
    )
    assert sum(third.reads.values()) == 50 == sampled.stages["portal"]["sampled"]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as server:
        yield server


def test_reconcile_with_province_and_state_on_postgresql(
    mock: RunningMock, onestop: Path, postgres: str, tmp_path: Path
) -> None:
    source = create_database(postgres, "onestop_recon")
    _copy_to_postgres(onestop, source)
    state = create_database(postgres, "state_recon")
    settings = _settings(mock, source, state, tmp_path)
    mset = load_mappings(settings.province.mappings)
    seed_portal(mock, onestop)
    pushed = asyncio.run(run_push(settings, mset))
    options = ReconcileOptions(period=EVERYTHING, formats=["json"], payments=False)
    found = {k: v for k, v in _run(settings, options).report.counts.items() if v}
    assert found == {"quarantined": pushed.enqueue.quarantined}

    # a stale change, visible to the structural merge on PostgreSQL's byte-ordered streams
    from sqlalchemy import create_engine, text

    engine = create_engine(source)
    two_days = (local_now() - timedelta(days=2)).isoformat()
    with engine.begin() as conn:
        code = conn.execute(
            text("SELECT so_ho_so FROM ho_so WHERE ma_ho_so_qg IS NULL AND trang_thai = 'done' LIMIT 1")
        ).scalar_one()
        conn.execute(
            text("UPDATE ho_so SET trang_thai = 'releasing', updated_at = :t WHERE so_ho_so = :c"),
            {"t": two_days, "c": code},
        )
    engine.dispose()
    result = _run(
        settings, ReconcileOptions(period=EVERYTHING, formats=["json"], payments=False, portal_check="none")
    )
    found = {k: v for k, v in result.report.counts.items() if v}
    assert found == {"stale": 1, "quarantined": pushed.enqueue.quarantined}
    assert [i.ma_ho_so for i in result.report.items() if i.category == "stale"] == [code]


def test_the_scheduled_job_writes_dated_reports_and_keeps_keep_reports(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    settings = _settings(
        mock,
        f"sqlite:///{onestop}",
        f"sqlite:///{tmp_path / 'state.db'}",
        tmp_path,
        keep_reports=2,
        portal_check="none",
        formats=["json", "csv"],
        period_days=3,
    )
    mset = load_mappings(settings.province.mappings)
    seed_portal(mock, onestop)
    asyncio.run(run_push(settings, mset))
    for _ in range(3):
        summary = asyncio.run(run_reconcile_job(settings, mset))
        assert summary["mismatches"] == 0
    folders = sorted(p for p in (tmp_path / "reports").iterdir() if p.is_dir())
    assert len(folders) == 2, folders
    assert {p.name for p in folders[-1].iterdir()} == {"reconcile.json", "reconcile.csv"}
    document = json.loads((folders[-1] / "reconcile.json").read_text(encoding="utf-8"))
    assert document["previous"] is not None  # each compares with the one before
    store = StateStore(settings.state.url)
    try:
        runs = [r for r in store.runs(limit=20) if r["job"] == "reconcile"]
    finally:
        store.close()
    assert len(runs) == 3 and {r["status"] for r in runs} == {"ok"}


def test_owner_names_are_masked_unless_asked(mock: RunningMock, onestop: Path, tmp_path: Path) -> None:
    settings = _settings(mock, f"sqlite:///{onestop}", f"sqlite:///{tmp_path / 'state.db'}", tmp_path)
    mset = load_mappings(settings.province.mappings)
    seed_portal(mock, onestop)
    asyncio.run(run_push(settings, mset))
    two_days = (local_now() - timedelta(days=2)).isoformat()
    with sqlite3.connect(onestop) as conn:
        code, owner = conn.execute(
            "SELECT so_ho_so, chu_ho_so FROM ho_so WHERE ma_ho_so_qg IS NULL AND trang_thai = 'done' LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE ho_so SET trang_thai = 'releasing', updated_at = ? WHERE so_ho_so = ?", (two_days, code)
        )
    base = {
        "period": EVERYTHING,
        "formats": ["json", "csv", "html", "xlsx"],
        "payments": False,
        "portal_check": "none",
    }
    masked = _run(settings, ReconcileOptions(**base, out_dir=tmp_path / "masked"))
    clear = _run(settings, ReconcileOptions(**base, out_dir=tmp_path / "clear", show_personal=True))
    stale = [i for i in clear.report.items() if i.category == "stale"]
    assert [i.province["owner"] for i in stale] == [owner]  # type: ignore[index]
    for path in masked.files:
        data = path.read_bytes()
        assert owner.encode() not in data, path.name
    assert owner.encode() in (tmp_path / "clear" / "reconcile.json").read_bytes()
