"""The inbox: every event from the national side is written here first, deduplicated by its
natural key, then applied to the province and acknowledged, each step recorded."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .kinds import InboxState
from .store import StateStore
from .tables import INBOX_T


@dataclass
class InboxItem:
    id: int
    kind: str
    natural_key: str
    payload: dict[str, Any]
    state: str
    local_key: str | None


class Inbox:
    def __init__(self, store: StateStore) -> None:
        self.store = store

    def receive(self, kind: str, natural_key: str, payload: dict[str, Any]) -> InboxItem:
        """Record an event unless its natural key is already there; either way return the kept
        one. Two replicas receiving the same event at once insert one row (``ON CONFLICT DO
        NOTHING`` on the natural key), and both return it."""
        now = time.time()
        insert_ = pg_insert if self.store.engine.dialect.name == "postgresql" else sqlite_insert
        with self.store.begin() as conn:
            conn.execute(
                insert_(INBOX_T)
                .values(
                    kind=kind,
                    natural_key=natural_key,
                    state=InboxState.RECEIVED,
                    payload=json.dumps(payload, ensure_ascii=False),
                    received_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["kind", "natural_key"])
            )
            row = conn.execute(
                select(INBOX_T).where(and_(INBOX_T.c.kind == kind, INBOX_T.c.natural_key == natural_key))
            ).one()
        return InboxItem(row.id, row.kind, row.natural_key, json.loads(row.payload), row.state, row.local_key)

    @contextmanager
    def applying(self, item: InboxItem, lease_s: float = 60.0) -> Iterator[InboxItem | None]:
        """Claim an event while it is applied: the event as it stands now (another replica may
        have applied it meanwhile: look at its state), or None when another replica is applying
        it at this moment (the sender retries; it is never applied twice at once). A claim whose
        replica died ends with its lease."""
        from .replica import replica_id

        me, now = replica_id(), time.time()
        with self.store.begin() as conn:
            taken = conn.execute(
                update(INBOX_T)
                .where(
                    and_(
                        INBOX_T.c.id == item.id,
                        or_(
                            INBOX_T.c.claimed_by.is_(None),
                            INBOX_T.c.claim_until < now,
                            INBOX_T.c.claimed_by == me,
                        ),
                    )
                )
                .values(claimed_by=me, claim_until=now + lease_s)
            ).rowcount
            row = conn.execute(select(INBOX_T).where(INBOX_T.c.id == item.id)).one()
        if taken != 1:
            yield None
            return
        try:
            yield InboxItem(
                row.id, row.kind, row.natural_key, json.loads(row.payload), row.state, row.local_key
            )
        finally:
            with self.store.begin() as conn:
                conn.execute(
                    update(INBOX_T)
                    .where(and_(INBOX_T.c.id == item.id, INBOX_T.c.claimed_by == me))
                    .values(claimed_by=None, claim_until=None)
                )

    def mark(
        self, item_id: int, state: str, *, local_key: str | None = None, error: str | None = None
    ) -> None:
        values: dict[str, Any] = {"state": state, "error": error, "updated_at": time.time()}
        if local_key is not None:
            values["local_key"] = local_key
        with self.store.begin() as conn:
            conn.execute(update(INBOX_T).where(INBOX_T.c.id == item_id).values(**values))

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(INBOX_T.c.kind, INBOX_T.c.state, func.count()).group_by(
                    INBOX_T.c.kind, INBOX_T.c.state
                )
            )
            return {f"{kind}:{state}": int(n) for kind, state, n in rows}

    def rejected(self, limit: int = 200) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(INBOX_T.c.kind, INBOX_T.c.natural_key, INBOX_T.c.error)
                .where(INBOX_T.c.state == InboxState.REJECTED)
                .limit(limit)
            )
            return [dict(r._mapping) for r in rows]
