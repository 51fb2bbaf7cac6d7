"""The inbox: every event from the national side is written here first, deduplicated by its
natural key, then applied to the province and acknowledged, each step recorded."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, select, update

from .store import INBOX_T, StateStore


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
        """Record an event unless its natural key is already there; either way return the kept one."""
        now = time.time()
        with self.store.begin() as conn:
            row = conn.execute(
                select(INBOX_T).where(and_(INBOX_T.c.kind == kind, INBOX_T.c.natural_key == natural_key))
            ).first()
            if row is None:
                conn.execute(
                    insert(INBOX_T).values(
                        kind=kind,
                        natural_key=natural_key,
                        state="received",
                        payload=json.dumps(payload, ensure_ascii=False),
                        received_at=now,
                        updated_at=now,
                    )
                )
                row = conn.execute(
                    select(INBOX_T).where(and_(INBOX_T.c.kind == kind, INBOX_T.c.natural_key == natural_key))
                ).one()
        return InboxItem(row.id, row.kind, row.natural_key, json.loads(row.payload), row.state, row.local_key)

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
                .where(INBOX_T.c.state == "rejected")
                .limit(limit)
            )
            return [dict(r._mapping) for r in rows]
