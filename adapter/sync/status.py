"""What `dvcsync status` and `dvcsync dead-letters` read."""

from __future__ import annotations

import json
from typing import Any

from adapter.config import Settings
from adapter.state import Inbox, StateStore


def _store(settings: Settings) -> StateStore:
    store = StateStore(settings.state.url)
    store.prepare()  # an out-of-date schema is reported, never migrated behind the operator's back
    return store


def collect_status(settings: Settings) -> dict[str, Any]:
    store = _store(settings)
    try:
        quarantined = store.quarantined(limit=200)
        dead = store.dead(limit=200)
        runs = store.runs(limit=10)
        return {
            "backlog": store.backlog(),
            "dossiers": store.count("dossier_state"),
            "quarantined_count": store.count("quarantine"),
            "quarantined": [
                {
                    "mapping": q["mapping"],
                    "record_key": q["record_key"],
                    "reasons": [_reason(e) for e in json.loads(q["errors"])],
                }
                for q in quarantined
            ],
            "dead_count": len(store.dead(limit=1_000_000)),
            "dead": dead,
            "runs": runs,
            "conflicts": store.conflicts(limit=200),
            "inbox": Inbox(store).counts(),
        }
    finally:
        store.close()


def _reason(error: dict[str, str]) -> str:
    origin = f" (from {error['source']})" if error.get("source") else ""
    return f"{error['field']}{origin} = {error['value']}: {error['reason']}"


def list_dead(settings: Settings) -> list[dict[str, Any]]:
    store = _store(settings)
    try:
        return store.dead()
    finally:
        store.close()


def requeue_dead(settings: Settings, ids: list[int] | None) -> int:
    store = _store(settings)
    try:
        return store.requeue_dead(ids)
    finally:
        store.close()


def discard_dead(settings: Settings, ids: list[int]) -> int:
    store = _store(settings)
    try:
        return store.discard_dead(ids)
    finally:
        store.close()
