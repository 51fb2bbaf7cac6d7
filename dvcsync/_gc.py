"""Garbage-collector settings for a process that dvcsync owns (the CLI, the enqueue producer).

Mapping and delivery allocate many short-lived objects; with the default thresholds the cyclic
collector runs every 700 allocations and keeps rescanning the long-lived heap (imports, compiled
mappings, code tables). Freezing what exists and collecting less often cut the user CPU of a
20,000 dossier push by ~5 % (bench/push.py). Not much less often: at (100_000, 50, 100) a full
collection almost never came and peak memory grew by 50 MB over 100,000 dossiers; at
(10_000, 10, 10) it is within 8 MB of the defaults. Library callers (tests, an embedding
application) keep their own settings.
"""

from __future__ import annotations

import gc


def tune_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
