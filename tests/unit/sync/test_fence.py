"""The fence before a send (issue 21): after this replica's lease lapsed, a call carries only the
entries whose dossiers it re-proved in the state; the others are not sent at all."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dvcsync.state import DueEntry
from dvcsync.sync.push import ClaimsLost, PushJob


class _Keeper:
    def __init__(self, holding: bool, lapses: int, still_mine: set[str] | None) -> None:
        self._holding, self.lapses, self.still_mine = holding, lapses, still_mine
        self.asked: list[set[str]] = []

    def holding(self) -> bool:
        return self._holding

    def reprove(self, keys: set[str]) -> set[str]:
        self.asked.append(keys)
        if self.still_mine is None:
            raise ConnectionError("state unreachable")
        return keys & self.still_mine


def _job(keeper: _Keeper, claimed_at: int) -> tuple[Any, list[DueEntry]]:
    job: Any = PushJob.__new__(PushJob)  # only the fence: no settings, store or client needed
    job._keeper = keeper
    entries = [DueEntry(i, "dossier", f"HS-{i}", "{}", "h", 0, False) for i in range(4)]
    job._claimed_at = {e.id: claimed_at for e in entries}
    return job, entries


def test_no_lapse_sends_everything_without_asking_the_state() -> None:
    keeper = _Keeper(holding=True, lapses=0, still_mine=set())
    job, entries = _job(keeper, claimed_at=0)
    assert asyncio.run(job._fence(entries)) == entries
    assert keeper.asked == []


@pytest.mark.parametrize(
    "holding, lapses", [(False, 0), (True, 1)], ids=["lease-running-out", "lapsed-since"]
)
def test_after_a_lapse_only_the_dossiers_still_held_are_sent(holding: bool, lapses: int) -> None:
    keeper = _Keeper(holding=holding, lapses=lapses, still_mine={"HS-1", "HS-3"})
    job, entries = _job(keeper, claimed_at=0)
    kept = asyncio.run(job._fence(entries))
    assert [e.record_key for e in kept] == ["HS-1", "HS-3"]
    assert keeper.asked == [{"HS-0", "HS-1", "HS-2", "HS-3"}]


def test_a_state_that_cannot_be_asked_stops_the_delivery() -> None:
    keeper = _Keeper(holding=False, lapses=0, still_mine=None)
    job, entries = _job(keeper, claimed_at=0)
    with pytest.raises(ClaimsLost):
        asyncio.run(job._fence(entries))
