"""A reconciliation's repair of one dossier, keyed by the report it answers."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from dvcsync.errors import DvcsyncError

from .enqueue import EnqueueOps
from .kinds import REPLACING_KINDS, OutboxState
from .page import history_rows, outbox_row
from .records import MappedRecord, payload_hash
from .tables import DOSSIER_T, OUTBOX_T, STEP_T


class _AlreadyRepaired(DvcsyncError):
    """Rolls back a repair whose entries exist already (the same report repaired twice)."""


class RepairOps(EnqueueOps):
    """Reconciliation's repairs, enqueued beside the pages."""

    def enqueue_repair(
        self,
        record: MappedRecord,
        *,
        tag: str,
        as_new: bool = False,
        resend_dossier: bool = False,
        steps_checked: bool = False,
        now: float | None = None,
    ) -> dict[str, int]:
        """A reconciliation repair of one dossier, in one transaction, keyed by ``tag`` (the report
        it answers) so that running the same repair twice enqueues nothing the second time.

        ``as_new``: the portal lost the dossier: send it as a create. ``resend_dossier``: the
        portal's copy differs: send it again as a replacement, though its hash was acknowledged.
        ``steps_checked``: every history entry goes out marked read-back-first, so the deliverer
        asks the portal what it holds and sends only what it lacks (never a duplicate)."""
        now = time.time() if now is None else now
        counts = {"dossiers": 0, "steps": 0}
        if record.dossier is None:
            return counts
        key = record.record_key
        digest = payload_hash(record.dossier)
        try:
            self._enqueue_repair(record, key, digest, tag, as_new, resend_dossier, steps_checked, now, counts)
        except _AlreadyRepaired:
            return {"dossiers": 0, "steps": 0}
        return counts

    def _enqueue_repair(
        self,
        record: MappedRecord,
        key: str,
        digest: str,
        tag: str,
        as_new: bool,
        resend_dossier: bool,
        steps_checked: bool,
        now: float,
        counts: dict[str, int],
    ) -> None:
        rows: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            self._serialize_enqueue(conn)
            if as_new or resend_dossier:
                rows.append(_resend_dossier(conn, record, digest, as_new=as_new, now=now))
                counts["dossiers"] = 1
            if steps_checked and record.steps:
                rows.extend(_recheck_history(conn, record, now))
                counts["steps"] = len(record.steps)
            for row in rows:
                row["idem_key"] = f"repair:{tag}:{row['idem_key']}"
            if rows:
                before = _entries_of(conn, key)
                self._insert_outbox(conn, rows)
                if _entries_of(conn, key) == before:  # this report's repair was enqueued before
                    raise _AlreadyRepaired


def _entries_of(conn: Connection, key: str) -> int:
    query = select(func.count()).select_from(OUTBOX_T).where(OUTBOX_T.c.record_key == key)
    return int(conn.execute(query).scalar_one())


def _resend_dossier(
    conn: Connection, record: MappedRecord, digest: str, *, as_new: bool, now: float
) -> dict[str, Any]:
    """The dossier's record made to expect this version (as a create with ``as_new``), its older
    pending versions superseded; returns its outbox row."""
    assert record.dossier is not None
    key = record.record_key
    values: dict[str, Any] = {
        "payload_hash": digest,
        "acked_hash": None,
        "status": record.dossier.get("TrangThaiHoSo", record.dossier.get("TrangThai")),
        "source_id": record.source_id,
        "source_updated_at": record.source_updated_at,
        "updated_at": now,
    }
    if as_new:
        values["on_portal"] = False
    moved = conn.execute(update(DOSSIER_T).where(DOSSIER_T.c.record_key == key).values(**values))
    if moved.rowcount == 0:
        conn.execute(insert(DOSSIER_T).values(record_key=key, on_portal=False, **values))
    conn.execute(
        update(OUTBOX_T)
        .where(
            and_(
                OUTBOX_T.c.record_key == key,
                OUTBOX_T.c.kind.in_(REPLACING_KINDS),
                OUTBOX_T.c.state == OutboxState.PENDING,
            )
        )
        .values(state=OutboxState.SUPERSEDED, updated_at=now)
    )
    return outbox_row(record.kind, key, record.dossier, digest, now)


def _recheck_history(conn: Connection, record: MappedRecord, now: float) -> list[dict[str, Any]]:
    """Every history entry recorded as unacknowledged and enqueued read-back-first: the
    deliverer sends only what the portal lacks."""
    key = record.record_key
    conn.execute(delete(STEP_T).where(STEP_T.c.record_key == key))
    conn.execute(
        insert(STEP_T),
        [
            {"record_key": key, "step_key": k, "entry_hash": payload_hash(e), "acked": False}
            for k, e in record.steps
        ],
    )
    return history_rows(key, record.steps, now, verify_first=True)
