"""The answers of a delivery round, recorded in one transaction of batched statements."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    Text,
    and_,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ._base import StoreBase
from .records import Outcome
from .tables import DOSSIER_T, OUTBOX_T, STEP_T

log = logging.getLogger(__name__)

# A transaction PostgreSQL rolled back to break a deadlock is run again this many times at most.
DEADLOCK_RETRIES = 3


class OutcomeOps(StoreBase):
    """Recording what became of the entries sent."""

    def failing_since(self, entry_ids: Sequence[int]) -> dict[int, float]:
        """When each of these entries first failed; entries that never failed are absent."""
        if not entry_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(OUTBOX_T.c.id, OUTBOX_T.c.failing_since).where(
                    and_(OUTBOX_T.c.id.in_(list(entry_ids)), OUTBOX_T.c.failing_since.is_not(None))
                )
            )
            return {int(i): float(t) for i, t in rows}

    def mark_in_flight(self, entry_ids: Sequence[int], now: float | None = None) -> None:
        """Write-ahead for append-only sends: should we die before the answer is recorded, the
        next run reads the portal back instead of sending these entries again."""
        if not entry_ids:
            return
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            conn.execute(
                update(OUTBOX_T)
                .where(OUTBOX_T.c.id.in_(list(entry_ids)))
                .values(verify_first=True, updated_at=now)
            )  # not fenced: marking an entry for read-back is always safe

    def record_outcomes(self, outcomes: Iterable[Outcome], now: float | None = None) -> None:
        """Apply the answers of one round in one transaction, as three batched statements
        (outbox, dossier records, history records): a round may carry thousands of answers."""
        now = time.time() if now is None else now
        entries: list[dict[str, Any]] = []
        dossiers: list[dict[str, Any]] = []
        steps: list[dict[str, Any]] = []
        outcomes_list = list(outcomes)
        for outcome in outcomes_list:
            entry, dossier, acked = outcome.rows(now)
            entries.append(entry)
            if dossier is not None:
                dossiers.append(dossier)
            steps.extend(acked)
        if not entries:
            return
        for attempt in range(1, DEADLOCK_RETRIES + 1):
            try:
                self._record(entries, dossiers, steps, outcomes_list, now)
                return
            except DBAPIError as exc:
                # PostgreSQL broke a lock cycle by rolling this transaction back (another process
                # updating the same rows in another order): nothing of it was applied; again
                if getattr(exc.orig, "pgcode", None) != "40P01" or attempt == DEADLOCK_RETRIES:
                    raise
                log.info("recording a round's answers: deadlock, attempt %d of %d", attempt, DEADLOCK_RETRIES)

    def _record(
        self,
        entries: list[dict[str, Any]],
        dossiers: list[dict[str, Any]],
        steps: list[dict[str, Any]],
        outcomes_list: list[Outcome],
        now: float,
    ) -> None:
        with self.engine.begin() as conn:
            if self.claims:
                kept = set(_fenced(conn, [e["e_id"] for e in entries]))
                if len(kept) < len(entries):
                    keys = {e["e_id"]: o for e, o in zip(entries, outcomes_list, strict=True)}
                    entries = [e for e in entries if e["e_id"] in kept]
                    kept_keys = {keys[i].record_key for i in kept}
                    dossiers = [d for d in dossiers if d["d_key"] in kept_keys]
                    steps = [r for r in steps if r["s_key"] in kept_keys]
                    if not entries:
                        return
            if self.engine.dialect.name == "postgresql":
                _record_as_arrays(conn, entries, dossiers, steps, now)
                return
            conn.execute(_OUTBOX_OUTCOME, entries)
            if dossiers:
                conn.execute(_DOSSIER_OUTCOME, dossiers)
            if steps:
                conn.execute(_STEP_ACKED, steps)


_OUTBOX_OUTCOME = (
    update(OUTBOX_T)
    .where(OUTBOX_T.c.id == bindparam("e_id"))
    .values(
        state=bindparam("e_state"),
        last_error=bindparam("e_error"),
        next_attempt_at=func.coalesce(bindparam("e_next", type_=Float), OUTBOX_T.c.next_attempt_at),
        verify_first=func.coalesce(bindparam("e_verify", type_=Boolean), OUTBOX_T.c.verify_first),
        payload=func.coalesce(bindparam("e_payload", type_=Text), OUTBOX_T.c.payload),
        attempts=OUTBOX_T.c.attempts + bindparam("e_inc", type_=Integer),
        failing_since=func.coalesce(OUTBOX_T.c.failing_since, bindparam("e_failed", type_=Float)),
        updated_at=bindparam("e_now"),
    )
)
_DOSSIER_OUTCOME = (
    update(DOSSIER_T)
    .where(DOSSIER_T.c.record_key == bindparam("d_key"))
    .values(
        on_portal=bindparam("d_on_portal"),
        acked_hash=func.coalesce(bindparam("d_acked", type_=Text), DOSSIER_T.c.acked_hash),
        updated_at=bindparam("d_now"),
    )
)
_STEP_ACKED = (
    update(STEP_T)
    .where(and_(STEP_T.c.record_key == bindparam("s_key"), STEP_T.c.step_key == bindparam("s_step")))
    .values(acked=True)
)


def _record_as_arrays(
    conn: Connection,
    entries: list[dict[str, Any]],
    dossiers: list[dict[str, Any]],
    steps: list[dict[str, Any]],
    now: float,
) -> None:
    """PostgreSQL: a round's answers as three statements over ``unnest`` of arrays, one round
    trip each. An executemany is one statement per row (psycopg2 pages them, still ~0.05 ms
    each: a round of 800 dossiers with six history entries each is 5,600 statements); the
    replicas' benchmark measured the difference. Rows in id and key order: every multi-row
    update of these tables locks in that order, so two never wait for each other in a cycle."""
    entries = sorted(entries, key=lambda e: int(e["e_id"]))
    conn.execute(
        text(
            "UPDATE outbox AS o SET state = v.state, last_error = v.error,"
            " next_attempt_at = COALESCE(v.next, o.next_attempt_at),"
            " verify_first = COALESCE(v.verify, o.verify_first),"
            " payload = COALESCE(v.payload, o.payload), attempts = o.attempts + v.inc, updated_at = :now,"
            " failing_since = COALESCE(o.failing_since, v.failed)"
            " FROM unnest(CAST(:ids AS bigint[]), CAST(:states AS text[]), CAST(:errors AS text[]),"
            " CAST(:nexts AS float8[]), CAST(:verifies AS boolean[]), CAST(:payloads AS text[]),"
            " CAST(:incs AS int[]), CAST(:faileds AS float8[]))"
            " AS v(id, state, error, next, verify, payload, inc, failed)"
            " WHERE o.id = v.id"
        ),
        {
            "now": now,
            "ids": [e["e_id"] for e in entries],
            "states": [e["e_state"] for e in entries],
            "errors": [e["e_error"] for e in entries],
            "nexts": [e["e_next"] for e in entries],
            "verifies": [e["e_verify"] for e in entries],
            "payloads": [e["e_payload"] for e in entries],
            "incs": [e["e_inc"] for e in entries],
            "faileds": [e["e_failed"] for e in entries],
        },
    )
    if dossiers:
        # one row each (the last answer wins, as one by one), locked in key order like every
        # multi-row update of dossier_state (no deadlock with a replica giving its claims back)
        last = dict(sorted({d["d_key"]: d for d in dossiers}.items()))
        conn.execute(
            text(
                "UPDATE dossier_state AS d SET on_portal = v.on_portal,"
                " acked_hash = COALESCE(v.acked, d.acked_hash), updated_at = :now"
                " FROM unnest(CAST(:keys AS text[]), CAST(:on_portal AS boolean[]), CAST(:acked AS text[]))"
                " AS v(record_key, on_portal, acked) WHERE d.record_key = v.record_key"
            ),
            {
                "now": now,
                "keys": list(last),
                "on_portal": [d["d_on_portal"] for d in last.values()],
                "acked": [d["d_acked"] for d in last.values()],
            },
        )
    if steps:
        conn.execute(
            text(
                "UPDATE step_state AS s SET acked = TRUE"
                " FROM unnest(CAST(:keys AS text[]), CAST(:steps AS text[])) AS v(record_key, step_key)"
                " WHERE s.record_key = v.record_key AND s.step_key = v.step_key"
            ),
            {"keys": [r["s_key"] for r in steps], "steps": [r["s_step"] for r in steps]},
        )


def _fenced(conn: Connection, ids: Sequence[int]) -> list[int]:
    """Of ``ids``, the entries whose dossier this replica still holds. An answer that comes
    back after the lease was taken over is not recorded: the new holder settles the entry
    (history by reading the portal back, see ``mark_in_flight``), so nothing is doubled."""
    if not ids:
        return list(ids)
    from .replica import replica_id

    rows = conn.execute(
        select(OUTBOX_T.c.id)
        .join(DOSSIER_T, DOSSIER_T.c.record_key == OUTBOX_T.c.record_key)
        .where(and_(OUTBOX_T.c.id.in_(list(ids)), DOSSIER_T.c.claimed_by == replica_id()))
    )
    kept = [int(i) for i in rows.scalars()]
    if len(kept) < len(ids):
        log.warning(
            "%d answers not recorded: their dossiers' claims were taken over by another replica"
            " (lease [state] claim_lease_s ran out); the new holder settles them",
            len(ids) - len(kept),
        )
    return kept
