"""Cross-dossier history calls: every due entry in exactly one call, none over the batch size,
and fewer calls than one dossier a call or first-come packing."""

from __future__ import annotations

import json
import random

from dvcsync.state import DueEntry
from dvcsync.sync.push import pack_history


def _entry(number: int, steps: int) -> DueEntry:
    key = f"HS-{number}"
    raw = json.dumps(
        {"keys": [str(s) for s in range(steps)], "entries": [{"MaHoSo": key, "n": s} for s in range(steps)]},
        separators=(",", ":"),
    )
    return DueEntry(number, "steps", key, raw, "h", 0, True)


def _sequential(sizes: list[int], size: int) -> int:
    """What the adapter did before: fill a call in arrival order, start another when one does not fit."""
    calls, room = 0, 0
    for n in sizes:
        if n > room:
            calls, room = calls + 1, size
        room -= n
    return calls


def test_six_and_four_share_calls() -> None:
    due = [_entry(1, 6), _entry(2, 6), _entry(3, 4), _entry(4, 4)]
    calls = pack_history(due, 10)
    assert sorted(sorted(len(e.history[0]) for e in call) for call in calls) == [[4, 6], [4, 6]]
    assert _sequential([6, 6, 4, 4], 10) == 3
    assert [len(c) for c in pack_history(due, 1)] == [1, 1, 1, 1]  # the benchmark's "before"


def test_random_rounds_pack_every_entry_once_within_the_size() -> None:
    rng = random.Random(13)
    for size in (10, 25, 50, 100):
        for _ in range(50):
            sizes = [rng.randint(1, 10) for _ in range(rng.randint(1, 400))]
            due = [_entry(i, n) for i, n in enumerate(sizes)]
            calls = pack_history(due, size)
            assert sorted(e.id for call in calls for e in call) == list(range(len(sizes)))
            assert all(sum(len(e.history[0]) for e in call) <= size for call in calls)
            assert all(len({e.record_key for e in call}) == len(call) for call in calls)
            lower = -(-sum(sizes) // size)
            assert lower <= len(calls) <= _sequential(sizes, size)


def test_an_entry_larger_than_the_batch_goes_alone() -> None:
    calls = pack_history([_entry(1, 10), _entry(2, 3)], 5)
    assert sorted(len(c) for c in calls) == [1, 1]
