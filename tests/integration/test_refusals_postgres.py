"""Refused inbound bodies on a PostgreSQL state (issue 20 item 7): concurrent refusals from two
threads add to one row (the upsert), samples stay capped, and prune deletes the row once it has
not been seen for keep_days."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from dvcsync.state import StateStore
from dvcsync.state.refusals import SAMPLE_CAP, Refusals

from ..postgres import create_database, postgres_server

DAY = 86400.0
T0 = 1_750_000_000.0


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def test_refusals_on_postgresql(server: str) -> None:
    store = StateStore(create_database(server, "refusals"))
    store.upgrade()
    refusals = Refusals(store)

    def refuse(n: int) -> int:
        sample = {"at": T0 + n, "bytes": 10, "sha256": f"{n:064x}"}
        return refusals.record("payment_result", "203.0.113.7", "bad_signature", f"sai {n}", sample, T0 + n)

    with ThreadPoolExecutor(4) as pool:
        counts = sorted(pool.map(refuse, range(200)))
    assert counts == list(range(1, 201))  # every refusal counted once, none lost to a race
    [kept] = refusals.list()
    assert (kept.count, kept.first_seen, kept.last_seen) == (200, T0, T0 + 199)
    assert len(kept.samples) == SAMPLE_CAP
    assert store.prune(30, now=T0 + 199 + 29 * DAY).get("inbound_refusals") is None
    assert store.prune(30, now=T0 + 199 + 31 * DAY)["inbound_refusals"] == 1
    assert refusals.list() == []
    store.close()
