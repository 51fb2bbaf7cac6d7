"""What `dvcsync status` and `dvcsync dead-letters` read: one state, or with tenants one
state per tenant (each tenant's state is its own, so each is read on its own)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dvcsync.config import Settings
from dvcsync.errors import TerminalError
from dvcsync.state import Inbox, StateStore
from dvcsync.tenants import ensure_schema, state_schema


def _store(settings: Settings) -> StateStore:
    ensure_schema(settings.state.url)  # a tenant's PostgreSQL schema, before its tables are made
    store = StateStore(settings.state.url)
    store.prepare()  # an out-of-date schema is reported, never migrated behind the operator's back
    return store


def state_exists(url: str) -> bool:
    """Whether anything has run on this state: its SQLite file, or its tenant's PostgreSQL
    schema, exists (a read-only command must not create them). True for other states."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        return not database or database == ":memory:" or Path(database).exists()
    schema = state_schema(url)
    if schema is None:
        return True
    engine = create_engine(url, poolclass=NullPool, hide_parameters=True)
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": schema})
            return found.first() is not None
    finally:
        engine.dispose()


def collect_tenants_status(tenants: dict[str, Settings]) -> dict[str, Any]:
    """``{"tenants": {code: status}}``, one tenant's state never hiding the others': a state
    that was never made is ``{"state": None}``, one that cannot be read (database down, schema
    out of date) ``{"error": why}``."""
    from sqlalchemy.exc import DBAPIError

    from dvcsync.state import SchemaOutOfDate

    out: dict[str, Any] = {}
    for code, settings in tenants.items():
        try:
            out[code] = collect_status(settings) if state_exists(settings.state.url) else {"state": None}
        except (SchemaOutOfDate, DBAPIError) as exc:
            why = str(exc) if isinstance(exc, SchemaOutOfDate) else f"{type(exc.orig).__name__}: {exc.orig}"
            out[code] = {"error": why.strip()}
    return {"tenants": out}


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
            "replicas": store.replicas(),  # PostgreSQL: who holds dossiers now ([] on SQLite)
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


class UnknownDeadLetters(TerminalError, ValueError):
    """Ids that name no dead letter (no such entry, or one that is not dead): nothing was changed."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        which = ", ".join(str(i) for i in ids)
        super().__init__(
            f"no dead letter with id {which}: nothing changed (`dvcsync dead-letters list` shows the ids)"
        )


def _known_dead(store: StateStore, ids: list[int]) -> None:
    dead = {int(row["id"]) for row in store.dead(limit=1_000_000_000)}
    unknown = sorted({i for i in ids if i not in dead})
    if unknown:
        raise UnknownDeadLetters(unknown)


def requeue_dead(settings: Settings, ids: list[int] | None) -> int:
    """Put dead letters back (all without ``ids``); an id that names none refuses the whole call."""
    store = _store(settings)
    try:
        if ids:
            _known_dead(store, ids)
        return store.requeue_dead(ids)
    finally:
        store.close()


def discard_dead(settings: Settings, ids: list[int]) -> int:
    store = _store(settings)
    try:
        _known_dead(store, ids)
        return store.discard_dead(ids)
    finally:
        store.close()
