"""Enqueueing: a page of mapped records compared with the state, what changed enqueued, what
failed quarantined and the cursor moved, in one transaction."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    and_,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection

from ._base import StoreBase
from .kinds import REPLACING_KINDS, OutboxState
from .page import PageDecision, decide_page
from .records import EnqueueCounts, MappedRecord, dumps
from .tables import CURSOR_T, DOSSIER_T, OUTBOX_T, QUARANTINE_T, STEP_T

# Enqueue transactions of every process take a transaction-level advisory lock (PostgreSQL), this
# class and the state's key: two processes comparing one dossier with the state at once would
# both insert its record.
ENQUEUE_LOCK_CLASS = int.from_bytes(b"dvce", "big") - 2**31


class EnqueueOps(StoreBase):
    """Enqueueing pages, the cursors that say how far a source was read, and the quarantine."""

    def cursor(self, name: str) -> tuple[str, int]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CURSOR_T.c.watermark, CURSOR_T.c.last_key).where(CURSOR_T.c.name == name)
            ).first()
        return (row.watermark, row.last_key) if row else ("", 0)

    # ------------------------------------------------------------------ enqueue

    def enqueue_page(
        self,
        records: Sequence[MappedRecord],
        *,
        cursor_name: str | None,
        watermark: str,
        last_key: int,
        now: float | None = None,
    ) -> EnqueueCounts:
        """Compare a page of mapped records with the state, enqueue what changed, quarantine what
        failed and advance the cursor — all in one transaction. What to write is decided by
        ``decide_page``, from what is read here."""
        now = time.time() if now is None else now
        keys = [r.record_key for r in records]
        with self.engine.begin() as conn:
            self._serialize_enqueue(conn)
            known, steps_known, quarantined = _read_page_state(conn, keys)
            decision = decide_page(records, known, steps_known, quarantined, now)
            self._write_page(conn, decision, now)
            if cursor_name is not None:  # a one-off push enqueues without moving the cursor
                self._set_cursor(conn, cursor_name, watermark, last_key, now)
        return decision.counts

    def _write_page(self, conn: Connection, decision: PageDecision, now: float) -> None:
        for held, before in decision.quarantine:
            if isinstance(held, str):
                conn.execute(delete(QUARANTINE_T).where(QUARANTINE_T.c.record_key == held))
            else:
                self._quarantine(conn, held, now, exists=bool(before))
        if decision.superseded:
            # a whole-dossier replace makes older pending versions of the same dossier pointless
            conn.execute(
                update(OUTBOX_T)
                .where(
                    and_(
                        OUTBOX_T.c.record_key.in_(decision.superseded),
                        OUTBOX_T.c.kind.in_(REPLACING_KINDS),
                        OUTBOX_T.c.state == OutboxState.PENDING,
                    )
                )
                .values(state=OutboxState.SUPERSEDED, updated_at=now)
            )
        if decision.new_states:
            conn.execute(insert(DOSSIER_T), decision.new_states)
        for row in sorted(decision.changed_states, key=lambda r: r["record_key"]):  # lock order: by key
            conn.execute(
                update(DOSSIER_T)
                .where(DOSSIER_T.c.record_key == row["record_key"])
                .values(
                    status=row["status"],
                    source_id=row["source_id"],
                    source_updated_at=row["source_updated_at"],
                    payload_hash=row["payload_hash"],
                    updated_at=now,
                )
            )
        if decision.new_steps:
            conn.execute(insert(STEP_T), decision.new_steps)
        if decision.outbox_rows:
            self._insert_outbox(conn, decision.outbox_rows)

    def _serialize_enqueue(self, conn: Connection) -> None:
        """PostgreSQL: one enqueue transaction at a time across replicas and one-off commands
        (released at commit); SQLite's BEGIN IMMEDIATE already does it."""
        if self.engine.dialect.name == "postgresql":
            from .replica import lock_key

            conn.execute(
                text("SELECT pg_advisory_xact_lock(:c, :k)"),
                {"c": ENQUEUE_LOCK_CLASS, "k": lock_key(self.url, "enqueue")},
            )

    def _insert_outbox(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        existing = {
            row.idem_key
            for row in conn.execute(
                select(OUTBOX_T.c.idem_key).where(OUTBOX_T.c.idem_key.in_([r["idem_key"] for r in rows]))
            )
        }
        fresh = [r for r in rows if r["idem_key"] not in existing]
        if fresh:
            conn.execute(insert(OUTBOX_T), fresh)

    def _quarantine(self, conn: Connection, record: MappedRecord, now: float, *, exists: bool) -> None:
        errors = dumps(record.errors)
        if exists:
            conn.execute(
                update(QUARANTINE_T)
                .where(
                    and_(
                        QUARANTINE_T.c.mapping == record.mapping,
                        QUARANTINE_T.c.record_key == record.record_key,
                    )
                )
                .values(errors=errors, source_updated_at=record.source_updated_at, last_seen=now)
            )
        else:
            conn.execute(
                insert(QUARANTINE_T).values(
                    mapping=record.mapping,
                    record_key=record.record_key,
                    errors=errors,
                    source_updated_at=record.source_updated_at,
                    first_seen=now,
                    last_seen=now,
                )
            )

    def _set_cursor(self, conn: Connection, name: str, watermark: str, last_key: int, now: float) -> None:
        updated = conn.execute(
            update(CURSOR_T)
            .where(CURSOR_T.c.name == name)
            .values(watermark=watermark, last_key=last_key, updated_at=now)
        )
        if updated.rowcount == 0:
            conn.execute(
                insert(CURSOR_T).values(name=name, watermark=watermark, last_key=last_key, updated_at=now)
            )

    def set_cursor(self, name: str, watermark: str, last_key: int = 0) -> None:
        with self.engine.begin() as conn:
            self._set_cursor(conn, name, watermark, last_key, time.time())

    def mark_steps_known(self, record_key: str, steps: Sequence[tuple[str, str]]) -> None:
        """History entries the portal already holds (it wrote them itself): never to be sent."""
        if not steps:
            return
        with self.engine.begin() as conn:
            conn.execute(
                insert(STEP_T),
                [{"record_key": record_key, "step_key": k, "entry_hash": h, "acked": True} for k, h in steps],
            )


def _read_page_state(
    conn: Connection, keys: list[str]
) -> tuple[dict[str, Any], dict[tuple[str, str], str], set[str]]:
    """What the state holds of a page's dossiers: their records, their history entries' hashes
    and which of them are quarantined."""
    known = {
        row.record_key: row
        for row in conn.execute(
            select(
                DOSSIER_T.c.record_key,
                DOSSIER_T.c.payload_hash,
                DOSSIER_T.c.acked_hash,
                DOSSIER_T.c.on_portal,
            ).where(DOSSIER_T.c.record_key.in_(keys))
        )
    }
    steps_known: dict[tuple[str, str], str] = {
        (row.record_key, row.step_key): row.entry_hash
        for row in conn.execute(
            select(STEP_T.c.record_key, STEP_T.c.step_key, STEP_T.c.entry_hash).where(
                STEP_T.c.record_key.in_(keys)
            )
        )
    }
    quarantined = {
        row.record_key
        for row in conn.execute(select(QUARANTINE_T.c.record_key).where(QUARANTINE_T.c.record_key.in_(keys)))
    }
    return known, steps_known, quarantined
