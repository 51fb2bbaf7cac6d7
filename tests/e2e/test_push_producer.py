"""The forked enqueue producer: it leaves exactly the state a single process leaves, and a
producer that fails or is killed mid-way fails the cycle without losing or doubling anything."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvcsync.config import Settings
from dvcsync.mapping import load_mappings
from dvcsync.province.source import Record
from dvcsync.sync import _producer
from dvcsync.sync.cycles import run_push
from dvcsync.sync.push import PushJob, PushSummary
from mock_portal.testing import RunningMock

from .conftest import seed_portal, settings_for
from .test_push import _assert_portal_equals, _expected, _stored

PAGE = 150  # 2,000 sample dossiers: the first page here, twelve more in the producer


def _settings(mock: RunningMock, onestop: Path, state: Path, *, parallel: bool) -> Settings:
    settings = settings_for(mock, onestop, state, batch_size=100, concurrency=4, rate_limit=1000)
    settings.push.page_size, settings.push.parallel_enqueue = PAGE, parallel
    return settings


def _push(settings: Settings) -> PushSummary:
    return asyncio.run(run_push(settings, load_mappings(settings.province.mappings)))


def _portal(mock: RunningMock) -> dict[str, Any]:
    """Every stored dossier with its history, without the mock's own bookkeeping (times)."""
    return {
        code: {k: v for k, v in body.items() if k not in ("created_at", "updated_at")}
        for code, body in _stored(mock).items()
    }


def _state(path: Path) -> dict[str, Any]:
    """Everything the push wrote to the state store, without ids and times."""
    with sqlite3.connect(path) as conn:
        return {
            "dossiers": sorted(
                conn.execute(
                    "SELECT record_key, payload_hash, acked_hash, on_portal, status FROM dossier_state"
                )
            ),
            "steps": sorted(conn.execute("SELECT record_key, step_key, entry_hash, acked FROM step_state")),
            "outbox": sorted(conn.execute("SELECT idem_key, kind, payload_hash, state FROM outbox")),
            "quarantine": sorted(conn.execute("SELECT mapping, record_key, errors FROM quarantine")),
            "cursor": conn.execute("SELECT name, watermark, last_key FROM cursor").fetchall(),
        }


def _counting_producers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    started: list[int] = []
    original = _producer.EnqueueProducer.__init__

    def spy(self: _producer.EnqueueProducer, job: PushJob, until: str) -> None:
        original(self, job, until)
        started.append(1)

    monkeypatch.setattr(_producer.EnqueueProducer, "__init__", spy)
    return started


def _comparable(summary: PushSummary) -> dict[str, Any]:
    return {k: v for k, v in summary.as_dict().items() if k not in ("elapsed_s", "calls")}


def test_a_forked_producer_leaves_the_state_one_process_leaves(
    mock: RunningMock, onestop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    producers = _counting_producers(monkeypatch)
    seed_portal(mock, onestop)
    alone = _push(_settings(mock, onestop, tmp_path / "alone.db", parallel=False))
    assert producers == []
    portal_alone = _portal(mock)

    httpx.post(f"{mock.url}/_admin/reset", timeout=30).raise_for_status()
    seed_portal(mock, onestop)
    forked = _push(_settings(mock, onestop, tmp_path / "forked.db", parallel=True))
    assert producers == [1]

    assert _comparable(forked) == _comparable(alone)
    assert forked.enqueue.records == 2000 and forked.dead == 0
    assert _portal(mock) == portal_alone
    assert _state(tmp_path / "forked.db") == _state(tmp_path / "alone.db")

    quiet = _push(_settings(mock, onestop, tmp_path / "forked.db", parallel=True))
    assert quiet.calls == 0 and producers == [1]  # less than a page to read: no fork


def _victim(onestop: Path, position: int) -> int:
    """The id of the dossier read at ``position`` (the source reads by updated_at, then id)."""
    with sqlite3.connect(onestop) as conn:
        (victim,) = conn.execute(
            "SELECT id FROM ho_so ORDER BY updated_at, id LIMIT 1 OFFSET ?", (position,)
        ).fetchone()
    return int(victim)


@pytest.mark.parametrize("how", ["raises", "is-killed"])
def test_a_producer_that_dies_fails_the_cycle_and_the_next_completes_it(
    mock: RunningMock, onestop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    seed_portal(mock, onestop)
    settings = _settings(mock, onestop, tmp_path / "state.db", parallel=True)
    victim = _victim(onestop, 6 * PAGE + 10)  # in the producer's sixth page
    original = PushJob.map_record

    def dies_on_victim(self: PushJob, record: Record) -> Any:
        if record["id"] == victim:
            if how == "raises":
                raise RuntimeError(f"cannot map dossier id={victim}")
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, record)

    monkeypatch.setattr(PushJob, "map_record", dies_on_victim)
    expected_error = "RuntimeError: cannot map" if how == "raises" else "exit code -9"
    with pytest.raises(_producer.EnqueueFailed, match=expected_error):
        _push(settings)
    monkeypatch.setattr(PushJob, "map_record", original)

    with sqlite3.connect(tmp_path / "state.db") as conn:
        watermark, last_key = conn.execute("SELECT watermark, last_key FROM cursor").fetchone()
        (failed,) = conn.execute("SELECT status FROM run ORDER BY id DESC LIMIT 1").fetchone()
        (delivered,) = conn.execute("SELECT COUNT(*) FROM outbox WHERE state = 'done'").fetchone()
    with sqlite3.connect(onestop) as conn:
        (committed,) = conn.execute(
            "SELECT COUNT(*) FROM ho_so WHERE (updated_at, id) <= (?, ?)", (watermark, last_key)
        ).fetchone()
    assert failed == "failed"
    assert committed == 6 * PAGE  # every page before the victim's, and none after
    assert delivered > 0  # what was committed went out before the cycle failed

    second = _push(settings)
    assert second.dead == 0
    assert second.enqueue.records < 2000  # resumed from the cursor, not from the start
    _assert_portal_equals(mock, _expected(onestop))


def test_a_fork_that_fails_leaves_the_work_to_the_cycle_itself(
    mock: RunningMock, onestop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fork(self: _producer.EnqueueProducer, job: PushJob, until: str) -> None:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(_producer.EnqueueProducer, "__init__", no_fork)
    seed_portal(mock, onestop)
    summary = _push(_settings(mock, onestop, tmp_path / "state.db", parallel=True))
    assert summary.enqueue.records == 2000 and summary.dead == 0
    _assert_portal_equals(mock, _expected(onestop))


def test_a_cycle_that_fails_while_the_producer_reads_stops_the_producer(
    mock: RunningMock, onestop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    async def portal_gone(self: PushJob, kind: str, due: Any, summary: PushSummary) -> None:
        raise RuntimeError("the portal went away")

    monkeypatch.setattr(PushJob, "_send", portal_gone)
    seed_portal(mock, onestop)
    settings = _settings(mock, onestop, tmp_path / "state.db", parallel=True)
    with pytest.raises(RuntimeError, match="went away"):
        _push(settings)
    assert multiprocessing.active_children() == []  # stopped and reaped, not left reading
    monkeypatch.undo()

    finished = _push(settings)  # resumes from whatever page the stopped producer committed last
    assert finished.dead == 0
    _assert_portal_equals(mock, _expected(onestop))
