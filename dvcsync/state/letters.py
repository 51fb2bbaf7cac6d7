"""Dead letters, the quarantine and the outbox as an operator reads it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    and_,
    func,
    select,
    update,
)

from ._base import StoreBase
from .kinds import REPLACING_KINDS, OutboxKind, OutboxState
from .tables import DOSSIER_T, OUTBOX_T, QUARANTINE_T, STEP_T


class LetterOps(StoreBase):
    """Dead letters, the quarantine and the outbox as `dvcsync status` shows them."""

    def count_first_contacts(self) -> int:
        """Dossiers still waiting for their first read-back (``dvcsync adopt``'s backlog)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        and_(
                            OUTBOX_T.c.state == OutboxState.PENDING,
                            OUTBOX_T.c.kind.in_(REPLACING_KINDS),
                            OUTBOX_T.c.verify_first.is_(True),
                        )
                    )
                ).scalar_one()
            )

    def backlog(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(OUTBOX_T.c.state, OUTBOX_T.c.kind, func.count()).group_by(
                    OUTBOX_T.c.state, OUTBOX_T.c.kind
                )
            )
            return {f"{row[0]}:{row[1]}": int(row[2]) for row in rows}

    def entries_of(self, record_key: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    OUTBOX_T.c.id,
                    OUTBOX_T.c.kind,
                    OUTBOX_T.c.state,
                    OUTBOX_T.c.attempts,
                    OUTBOX_T.c.last_error,
                    OUTBOX_T.c.payload_hash,
                )
                .where(OUTBOX_T.c.record_key == record_key)
                .order_by(OUTBOX_T.c.id)
            )
            return [dict(row._mapping) for row in rows]

    def dead(self, limit: int = 1000) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    OUTBOX_T.c.id,
                    OUTBOX_T.c.kind,
                    OUTBOX_T.c.record_key,
                    OUTBOX_T.c.attempts,
                    OUTBOX_T.c.last_error,
                    OUTBOX_T.c.updated_at,
                )
                .where(OUTBOX_T.c.state == OutboxState.DEAD)
                .order_by(OUTBOX_T.c.id)
                .limit(limit)
            )
            return [dict(row._mapping) for row in rows]

    def requeue_dead(self, ids: Sequence[int] | None = None) -> int:
        """Dead letters back to pending with a fresh attempt budget (read back first if history)."""
        with self.engine.begin() as conn:
            query = update(OUTBOX_T).where(OUTBOX_T.c.state == OutboxState.DEAD)
            if ids is not None:
                query = query.where(OUTBOX_T.c.id.in_(list(ids)))
            result = conn.execute(
                query.values(
                    state=OutboxState.PENDING,
                    attempts=0,
                    next_attempt_at=0.0,
                    verify_first=OUTBOX_T.c.kind == OutboxKind.STEPS,
                    updated_at=time.time(),
                )
            )
            return int(result.rowcount)

    def discard_dead(self, ids: Sequence[int]) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(OUTBOX_T)
                .where(and_(OUTBOX_T.c.state == OutboxState.DEAD, OUTBOX_T.c.id.in_(list(ids))))
                .values(state=OutboxState.DISCARDED, updated_at=time.time())
            )
            return int(result.rowcount)

    def quarantined(self, limit: int = 1000) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    QUARANTINE_T.c.mapping,
                    QUARANTINE_T.c.record_key,
                    QUARANTINE_T.c.errors,
                    QUARANTINE_T.c.source_updated_at,
                    QUARANTINE_T.c.last_seen,
                )
                .order_by(QUARANTINE_T.c.record_key)
                .limit(limit)
            )
            return [dict(row._mapping) for row in rows]

    def delivered(self) -> tuple[int, int]:
        """(dossiers, history entries) delivered so far: the outbox's dossier entries done and
        the history entries acknowledged (on replicas, the others' deliveries included)."""
        with self.engine.connect() as conn:
            dossiers = conn.execute(
                select(func.count()).where(
                    and_(OUTBOX_T.c.kind == OutboxKind.DOSSIER, OUTBOX_T.c.state == OutboxState.DONE)
                )
            ).scalar_one()
            steps = conn.execute(select(func.count()).where(STEP_T.c.acked.is_(True))).scalar_one()
        return int(dossiers), int(steps)

    def count(self, table: str) -> int:
        tables = {
            "dossier_state": DOSSIER_T,
            "step_state": STEP_T,
            "outbox": OUTBOX_T,
            "quarantine": QUARANTINE_T,
        }
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(tables[table])).scalar_one())
