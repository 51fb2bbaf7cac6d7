"""One rate budget shared by every job and every replica (issue 21 item 3), shown with real
processes: three `dvcsync run` on one PostgreSQL state, every job scheduled every 2 s, a backlog
of 2,000 dossiers and the portal-submitted ones to pull, `[portal] rate_limit = 10`. The mock
counts every request it answers (``/_admin/stats``); over a 30 s window once all three run and
the push has stored dossiers, the requests per second stay within the rate plus the replicas'
bursts (each bucket starts full: ``concurrency`` tokens per replica).

The window's figures per service are printed for the report.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_portal.testing import RunningMock, run_mock_process

from ..postgres import create_database, postgres_server
from ..replicas import Replica, portal_progress, wait_for, write_config
from .conftest import db_upgrade, seed_portal

RATE = 10.0
CONCURRENCY = 4
WINDOW_S = 30.0
# dossiers a create carries: a replica's round is BATCH x CONCURRENCY x 8 dossiers, every one read
# back (TraCuuHoSo) before the round's first create. At 10 that is 320 read-backs a replica at the
# shared 10 requests a second: the first create came 73 s after the start, in a run of 125 s at
# load 7-8; at 2, a round is 64 (issue 22 item 6). The window needs delivery in it, not a size.
BATCH = 2
JOBS = ("pull", "payments", "catalogue", "reconcile", "prune")


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as server:
        yield server


def _stats(mock: RunningMock) -> tuple[int, Counter[str]]:
    data: dict[str, Any] = httpx.get(f"{mock.url}/_admin/stats", timeout=10, trust_env=False).json()
    per = Counter({name: sum(outcomes.values()) for name, outcomes in data["services"].items()})
    return int(data["total"]), per


def _all_delivering(replicas: list[Replica], portal_file: Path) -> bool:
    """Each replica's scheduler started and the push's first dossiers stored on the portal, so
    the window holds its read-backs and creates beside the pull, the catalogue and reconcile. Not
    history: a replica creates the dossiers it claims before their history, so in batches of 2
    none had come 180 s in at load 11 (in batches of 10, 13 history and 32 status calls came into
    the 300 of the window in both runs measured; the same budget sends them). True at once when a
    replica has died, to fail fast."""
    if not all(r.alive() for r in replicas):
        return True
    if not all("dvcsync running" in r.log() for r in replicas):
        return False
    return portal_progress(portal_file)[0] > 0


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_three_replicas_and_every_job_stay_within_the_rate_limit(
    sample_2000: Path, tmp_path: Path, postgres: str
) -> None:
    onestop = tmp_path / "onestop.db"
    shutil.copy(sample_2000, onestop)
    portal_file = tmp_path / "portal.db"
    with run_mock_process(state=str(portal_file)) as mock:
        seed_portal(mock, onestop)
        state_url = create_database(postgres, "dvcsync_shared_budget")
        configs = [
            write_config(
                tmp_path / f"dvcsync-{i}.toml",
                source=onestop,
                mock=mock,
                state_url=state_url,
                schedule_push="every 2s",
                portal={"rate_limit": RATE, "concurrency": CONCURRENCY, "batch_size": BATCH},
                schedule=dict.fromkeys(JOBS, "every 2s"),
            )
            for i in range(3)
        ]
        db_upgrade(configs[0])
        started = time.monotonic()
        replicas = [Replica.start(f"replica-{i}", c, "run", folder=tmp_path) for i, c in enumerate(configs)]
        try:
            # all three up and the push delivering: its first dossiers stored
            delivering = wait_for(lambda: _all_delivering(replicas, portal_file), 180)
            assert delivering, "\n".join(r.tail() for r in replicas)
            running = time.monotonic() - started
            time.sleep(5)  # past the start-up; not an expectation
            assert all(r.alive() for r in replicas), "\n".join(r.tail() for r in replicas)
            first, before = _stats(mock)
            began = time.monotonic()
            time.sleep(WINDOW_S)
            last, after = _stats(mock)
            took = time.monotonic() - began
            alive = all(r.alive() for r in replicas)
        finally:
            stopping = time.monotonic()
            codes = {r.name: r.stop() for r in replicas}
            stopped = time.monotonic() - stopping
    print(f"all three running, dossiers stored {running:.1f} s after the start; stopped in {stopped:.1f} s")
    per_second = (last - first) / took
    print(
        f"three replicas, every job every 2 s, rate_limit {RATE:g}: {last - first} requests in"
        f" {took:.1f} s = {per_second:.2f}/s; per service: {dict(after - before)}"
    )
    assert alive, "\n".join(r.tail() for r in replicas)
    assert set(codes.values()) <= {0, -15}, codes
    allowance = 3 * CONCURRENCY  # each replica's bucket may be full at the window's start
    assert last - first <= RATE * took + allowance, (last - first, took, dict(after - before))
