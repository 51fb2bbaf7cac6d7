"""Delivery: which outbox entries are due, and (PostgreSQL) the claims that give each dossier's
entries to one replica at a time, with the leases that keep a live replica's claims."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    and_,
    case,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from ._base import StoreBase
from .kinds import OutboxKind, OutboxState
from .records import DueEntry
from .tables import DOSSIER_T, LEASE_T, OUTBOX_T

log = logging.getLogger(__name__)


class ClaimOps(StoreBase):
    """What is due, and the claims and leases that give each dossier to one replica."""

    def due(
        self,
        kind: str,
        limit: int,
        now: float | None = None,
        record_key: str | None = None,
        exclude: Collection[int] = (),
        first_contact: bool = False,
    ) -> list[DueEntry]:
        """Pending entries of ``kind`` whose time has come, oldest first, with what the state
        knows of their dossier (``on_portal`` decides create vs replace). On PostgreSQL only the
        entries of dossiers this replica has claimed (``_claim``): another replica's are left.
        ``exclude``: entries this process has in flight or not yet recorded (the deliverer reads
        the next round while the current one is out). ``first_contact``: only entries waiting
        for a read-back (``verify_first``), as ``dvcsync adopt`` settles them."""
        now = time.time() if now is None else now
        query = self._due_query(kind, now, record_key, exclude, first_contact)
        if self.claims:
            # committed before any claim of ours: a claim past its claim_until is only as good as
            # this row, so another replica must be able to see it (see _claim)
            self.renew_claims(now=now)
        with self.engine.begin() as conn:
            if self.claims:
                if not self._claim(conn, kind, limit, now, record_key, exclude, first_contact):
                    return []
                from .replica import replica_id

                # the claimed dossiers by their claim (indexed), not by a list of keys: PostgreSQL
                # would match each entry against the whole list (800 × 800 comparisons a round)
                query = query.where(DOSSIER_T.c.claimed_by == replica_id())
            return [
                DueEntry(
                    row.id,
                    row.kind,
                    row.record_key,
                    row.payload,
                    row.payload_hash,
                    row.attempts,
                    bool(row.on_portal),
                    bool(row.verify_first),
                )
                for row in conn.execute(query.limit(limit))
            ]

    def _due_query(
        self,
        kind: str,
        now: float,
        record_key: str | None,
        exclude: Collection[int] = (),
        first_contact: bool = False,
    ) -> Any:
        query = (
            select(
                OUTBOX_T.c.id,
                OUTBOX_T.c.kind,
                OUTBOX_T.c.record_key,
                OUTBOX_T.c.payload,
                OUTBOX_T.c.payload_hash,
                OUTBOX_T.c.attempts,
                OUTBOX_T.c.verify_first,
                DOSSIER_T.c.on_portal,
            )
            .join(DOSSIER_T, DOSSIER_T.c.record_key == OUTBOX_T.c.record_key)
            .where(
                and_(
                    OUTBOX_T.c.state == OutboxState.PENDING,
                    OUTBOX_T.c.kind == kind,
                    OUTBOX_T.c.next_attempt_at <= now,
                )
            )
            .order_by(OUTBOX_T.c.id)
        )
        if kind == OutboxKind.STEPS:
            # History goes only onto a dossier the portal already has, and in order: the portal
            # keeps arrival order, so a dossier's next entry waits until the one before is done.
            earlier = OUTBOX_T.alias("earlier")
            query = query.where(
                DOSSIER_T.c.on_portal.is_(True),
                ~(
                    select(earlier.c.id)
                    .where(
                        and_(
                            earlier.c.record_key == OUTBOX_T.c.record_key,
                            earlier.c.kind == OutboxKind.STEPS,
                            earlier.c.state == OutboxState.PENDING,
                            earlier.c.id < OUTBOX_T.c.id,
                        )
                    )
                    .exists()
                ),
            )
        if record_key is not None:
            query = query.where(OUTBOX_T.c.record_key == record_key)
        if exclude:
            query = query.where(OUTBOX_T.c.id.not_in(list(exclude)))
        if first_contact:
            query = query.where(OUTBOX_T.c.verify_first.is_(True))
        return query

    def _claim(
        self,
        conn: Connection,
        kind: str,
        limit: int,
        now: float,
        record_key: str | None,
        exclude: Collection[int] = (),
        first_contact: bool = False,
    ) -> list[str]:
        """Claim the dossiers of up to ``limit`` due entries for this replica: those nobody
        holds, whose lease ran out (their replica died) or that are ours already. ``FOR UPDATE
        OF dossier_state SKIP LOCKED`` passes over dossiers another replica is claiming at this
        instant, and PostgreSQL re-checks a row claimed meanwhile against the claim's own columns
        (the claim lives on the locked row), so two replicas never hold one dossier. A dossier's
        entries of every kind go with its claim: never two versions in flight on two replicas.

        A claim holds until its ``claim_until`` (a lease from now, on the row itself), and after
        that as long as its replica's row in ``replica_lease`` is renewed: renewing is then one
        row a replica, which never waits for (or deadlocks with) the dossiers' rows. That row is
        committed before the replica's first claim, so it is visible to any claim made after."""
        from .replica import replica_id

        me = replica_id()
        free = or_(
            DOSSIER_T.c.claimed_by.is_(None),
            DOSSIER_T.c.claimed_by == me,
            and_(DOSSIER_T.c.claim_until < now, ~_lease_alive(DOSSIER_T.c.claimed_by, now)),
        )
        candidates = (
            self._due_query(kind, now, record_key, exclude, first_contact)
            .with_only_columns(DOSSIER_T.c.record_key)
            .where(free)
            .limit(limit)
            .with_for_update(of=DOSSIER_T, skip_locked=True)
        )
        keys = list(dict.fromkeys(conn.execute(candidates).scalars()))
        if keys:
            conn.execute(
                update(DOSSIER_T)
                .where(DOSSIER_T.c.record_key.in_(keys))
                .values(claimed_by=me, claim_until=now + self.claim_lease_s)
            )
        return keys

    def pending_history(self, record_keys: Collection[str]) -> list[DueEntry]:
        """Every pending history entry of these dossiers, in order, whenever due: a read-back
        of a dossier met for the first time settles all of its history at once."""
        if not record_keys:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    OUTBOX_T.c.id,
                    OUTBOX_T.c.record_key,
                    OUTBOX_T.c.payload,
                    OUTBOX_T.c.payload_hash,
                    OUTBOX_T.c.attempts,
                    OUTBOX_T.c.verify_first,
                )
                .where(
                    and_(
                        OUTBOX_T.c.record_key.in_(list(record_keys)),
                        OUTBOX_T.c.kind == OutboxKind.STEPS,
                        OUTBOX_T.c.state == OutboxState.PENDING,
                    )
                )
                .order_by(OUTBOX_T.c.id)
            )
            return [
                DueEntry(
                    r.id,
                    OutboxKind.STEPS,
                    r.record_key,
                    r.payload,
                    r.payload_hash,
                    r.attempts,
                    False,
                    r.verify_first,
                )
                for r in rows
            ]

    def renew_claims(self, now: float | None = None, owner: str | None = None) -> int:
        """Extend this replica's (``owner``'s) lease: a live replica never loses its dossiers.
        One row, its own transaction."""
        if not self.claims:
            return 0
        from .replica import replica_id

        now = time.time() if now is None else now
        until = now + self.claim_lease_s
        values = {"replica": owner or replica_id(), "lease_until": until, "renewed_at": now}
        with self.engine.begin() as conn:
            conn.execute(
                pg_insert(LEASE_T)
                .values(**values)
                .on_conflict_do_update(
                    index_elements=["replica"],
                    set_={"lease_until": values["lease_until"], "renewed_at": now},
                )
            )
        return 1

    def reprove_claims(
        self, record_keys: Collection[str], now: float | None = None, owner: str | None = None
    ) -> set[str]:
        """The fence before a send, after this replica's lease may have lapsed (a pause longer
        than a lease, the state unreachable): which of these dossiers are still its own. Their
        claims are extended under the rows' locks (taken in key order, as every multi-row update
        of them is), so no other replica can take them before the calls leave; a dossier another
        replica took meanwhile is not returned and must not be sent."""
        keys = sorted(set(record_keys))
        if not self.claims or not keys:
            return set(keys)
        from .replica import replica_id

        me = owner or replica_id()
        now = time.time() if now is None else now
        self.renew_claims(now=now, owner=me)  # the lease row first: the claims then hold again
        with self.engine.begin() as conn:
            held = list(
                conn.execute(
                    select(DOSSIER_T.c.record_key)
                    .where(and_(DOSSIER_T.c.record_key.in_(keys), DOSSIER_T.c.claimed_by == me))
                    .order_by(DOSSIER_T.c.record_key)
                    .with_for_update()
                ).scalars()
            )
            if held:
                conn.execute(
                    update(DOSSIER_T)
                    .where(DOSSIER_T.c.record_key.in_(held))
                    .values(claim_until=now + self.claim_lease_s)
                )
        return set(held)

    def release_claims(self, owner: str | None = None) -> int:
        """Give back this replica's dossiers (end of a delivery): others may take them at once.
        The rows are locked in key order, as every multi-row update of them is."""
        if not self.claims:
            return 0
        from .replica import replica_id

        me = owner or replica_id()
        with self.engine.begin() as conn:
            mine = (
                select(DOSSIER_T.c.record_key)
                .where(DOSSIER_T.c.claimed_by == me)
                .order_by(DOSSIER_T.c.record_key)
                .with_for_update()
            )
            result = conn.execute(
                update(DOSSIER_T)
                .where(DOSSIER_T.c.record_key.in_(mine.scalar_subquery()))
                .values(claimed_by=None, claim_until=None)
            )
            conn.execute(delete(LEASE_T).where(LEASE_T.c.replica == me))
            return int(result.rowcount or 0)

    def live_replicas(self, now: float | None = None) -> int:
        """How many replicas hold a live lease, this one counted (at least 1): the portal's rate
        budget is shared among them (``dvcsync.portal.shared``). SQLite: one process."""
        if not self.claims:
            return 1
        from .replica import replica_id

        now = time.time() if now is None else now
        with self.engine.connect() as conn:
            others = conn.execute(
                select(func.count()).where(
                    and_(LEASE_T.c.lease_until >= now, LEASE_T.c.replica != replica_id())
                )
            ).scalar_one()
        return 1 + int(others)

    def replicas(self, now: float | None = None) -> list[dict[str, Any]]:
        """Who holds dossiers now (PostgreSQL): each replica's id, how many dossiers it holds and
        when its lease ends (a lease in the past: a replica that died, to be taken over)."""
        if not self.claims:
            return []
        now = time.time() if now is None else now
        until = func.coalesce(func.max(LEASE_T.c.lease_until), func.max(DOSSIER_T.c.claim_until))
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(DOSSIER_T.c.claimed_by, func.count(), until)
                .select_from(DOSSIER_T.outerjoin(LEASE_T, LEASE_T.c.replica == DOSSIER_T.c.claimed_by))
                .where(DOSSIER_T.c.claimed_by.is_not(None))
                .group_by(DOSSIER_T.c.claimed_by)
                .order_by(DOSSIER_T.c.claimed_by)
            )
            return [
                {"replica": who, "dossiers": int(n), "lease_ends_in_s": round(float(until) - now, 1)}
                for who, n, until in rows
            ]

    def next_attempt_at(self, kind: str, record_key: str | None = None) -> float | None:
        """When the earliest pending entry of ``kind`` falls due (None: nothing pending). On
        PostgreSQL an entry of a dossier another replica holds is due when its lease ends."""
        when: Any = OUTBOX_T.c.next_attempt_at
        if self.claims:
            from .replica import replica_id

            held_elsewhere = and_(
                DOSSIER_T.c.claimed_by.is_not(None),
                DOSSIER_T.c.claimed_by != replica_id(),
                DOSSIER_T.c.claim_until.is_not(None),
            )
            lease = (
                select(LEASE_T.c.lease_until)
                .where(LEASE_T.c.replica == DOSSIER_T.c.claimed_by)
                .scalar_subquery()
            )
            held_until = func.greatest(DOSSIER_T.c.claim_until, func.coalesce(lease, 0.0))
            when = case(
                (held_elsewhere, func.greatest(OUTBOX_T.c.next_attempt_at, held_until)),
                else_=OUTBOX_T.c.next_attempt_at,
            )
        query = (
            select(func.min(when))
            .join(DOSSIER_T, DOSSIER_T.c.record_key == OUTBOX_T.c.record_key)
            .where(and_(OUTBOX_T.c.state == OutboxState.PENDING, OUTBOX_T.c.kind == kind))
        )
        if record_key is not None:
            query = query.where(OUTBOX_T.c.record_key == record_key)
        if kind == OutboxKind.STEPS:
            query = query.where(DOSSIER_T.c.on_portal.is_(True))
        with self.engine.connect() as conn:
            earliest = conn.execute(query).scalar()
        return None if earliest is None else float(earliest)


def _lease_alive(replica: Any, now: float) -> Any:
    """The claimant's lease row is there and not over."""
    return (
        select(LEASE_T.c.replica)
        .where(and_(LEASE_T.c.replica == replica, LEASE_T.c.lease_until >= now))
        .exists()
    )
