"""The state store: every state change the sync makes goes through here, in one transaction per
unit of work, so a crash at any instant leaves either all of a unit or none of it."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import sqlite3
import stat
import time
import urllib.parse
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import (
    Boolean,
    Engine,
    Float,
    Integer,
    Text,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError

from .models import (
    CatalogueAgency,
    CatalogueProcedure,
    CataloguePull,
    CatalogueSector,
    Conflict,
    Cursor,
    DossierState,
    InboundRefusal,
    InboxEvent,
    OutboxEntry,
    Quarantine,
    ReplicaLease,
    Run,
    SatisfactionSent,
    StateIdentity,
    StepState,
)

DOSSIER_T = DossierState.__table__  # type: ignore[attr-defined]
STEP_T = StepState.__table__  # type: ignore[attr-defined]
OUTBOX_T = OutboxEntry.__table__  # type: ignore[attr-defined]
CURSOR_T = Cursor.__table__  # type: ignore[attr-defined]
QUARANTINE_T = Quarantine.__table__  # type: ignore[attr-defined]
RUN_T = Run.__table__  # type: ignore[attr-defined]
INBOX_T = InboxEvent.__table__  # type: ignore[attr-defined]
CONFLICT_T = Conflict.__table__  # type: ignore[attr-defined]
LEASE_T = ReplicaLease.__table__  # type: ignore[attr-defined]
IDENTITY_T = StateIdentity.__table__  # type: ignore[attr-defined]
REFUSAL_T = InboundRefusal.__table__  # type: ignore[attr-defined]
CATALOGUE_TABLES = (
    CataloguePull.__table__,  # type: ignore[attr-defined]
    CatalogueProcedure.__table__,  # type: ignore[attr-defined]
    CatalogueAgency.__table__,  # type: ignore[attr-defined]
    CatalogueSector.__table__,  # type: ignore[attr-defined]
)
STATE_TABLES = (
    DOSSIER_T, STEP_T, OUTBOX_T, CURSOR_T, QUARANTINE_T, RUN_T, INBOX_T, CONFLICT_T, *CATALOGUE_TABLES,
    SatisfactionSent.__table__,  # type: ignore[attr-defined]
    LEASE_T,
    IDENTITY_T,
    REFUSAL_T,
)

log = logging.getLogger(__name__)

# History entries per outbox entry: a dossier's entries go out in order, one outbox entry a round.
STEPS_PER_CALL = 10
# A transaction PostgreSQL rolled back to break a deadlock is run again this many times at most.
DEADLOCK_RETRIES = 3
# How long a replica's claim on a dossier lasts unless renewed ([state] claim_lease_s).
CLAIM_LEASE_S = 60.0
# Enqueue transactions of every process take a transaction-level advisory lock (PostgreSQL), this
# class and the state's key: two processes comparing one dossier with the state at once would
# both insert its record.
ENQUEUE_LOCK_CLASS = int.from_bytes(b"dvce", "big") - 2**31
# Rows a pruning transaction rewrites: short enough never to hold the write lock for long.
PRUNE_BATCH = 1000
INBOX_SETTLED = ("applied", "acknowledged", "rejected")


def payload_hash(payload: Any) -> str:
    """Hash of the canonical JSON: key order and whitespace never count as a change."""
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


@dataclass
class MappedRecord:
    """One source record after mapping, ready to be compared with what the portal holds."""

    record_key: str
    source_id: int | None
    source_updated_at: str | None
    dossier: dict[str, Any] | None  # the DongBoHoSoMC item, None when it could not be mapped
    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (step key, TienDo item)
    errors: list[dict[str, str]] = field(default_factory=list)  # FieldError.as_dict() of every failure
    mapping: str = "dossier"
    kind: str = "dossier"  # "status": a portal-submitted dossier, reported by DongBoTrangThaiHoSo
    skipped: str | None = None  # not to be sent at all (no national equivalent): the reason


@dataclass
class EnqueueCounts:
    records: int = 0
    dossiers_enqueued: int = 0
    steps_enqueued: int = 0
    unchanged: int = 0
    quarantined: int = 0
    released: int = 0  # left quarantine because they map now
    steps_changed: int = 0  # history entries edited in the source after being sent (append-only portal)
    skipped: int = 0  # not sent by decision (a code table's skip: no national equivalent), not quarantined

    def add(self, other: EnqueueCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


_ENTRIES = ',"entries":['


@dataclass
class DueEntry:
    """An outbox entry ready to go. ``raw`` is the stored wire JSON: a batch is built by joining
    raw payloads, so dossiers are never parsed and re-serialised on their way out."""

    id: int
    kind: str
    record_key: str
    raw: str
    payload_hash: str
    attempts: int
    on_portal: bool
    verify_first: bool = False
    _parsed: Any = field(default=None, repr=False, compare=False)

    @property
    def payload(self) -> Any:
        if self._parsed is None:
            self._parsed = json.loads(self.raw)
        return self._parsed

    @cached_property
    def history(self) -> tuple[list[str], str]:
        """A history entry's step keys and its entries' JSON without the brackets, cut from the
        stored text instead of parsed and re-serialised. The text is ``{"keys":[...],"entries":
        [...]}`` as ``dumps`` writes it; a ``"`` inside a JSON string is always escaped, so the
        first ``,"entries":[`` is the separator."""
        raw = self.raw
        cut = raw.find(_ENTRIES)
        if raw.startswith('{"keys":[') and raw.endswith("]}") and cut > 0:
            return json.loads(raw[8:cut]), raw[cut + len(_ENTRIES) : -2]
        payload = self.payload
        return list(payload["keys"]), dumps(payload.get("entries", []))[1:-1]  # a pruned stub: none


class _AlreadyRepaired(Exception):
    """Rolls back a repair whose entries exist already (the same report repaired twice)."""


class SchemaOutOfDate(Exception):
    """The state database is at another revision than this dvcsync was written for: nothing may
    run on it until `dvcsync db upgrade` (or, when it is newer, a newer dvcsync)."""


def shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def newer_message(url: str, current: str) -> str:
    return (
        f"the state database {shown_url(url)} is at revision {current}, written by a newer dvcsync;"
        " upgrade dvcsync"
    )


class StateStore:
    def __init__(self, url: str, *, claim_lease_s: float = CLAIM_LEASE_S) -> None:
        self.url = url
        self.engine = make_state_engine(url)
        # Replicas (PostgreSQL): a dossier's entries are delivered by the one replica that claims
        # it, for ``claim_lease_s`` at a time, renewed while it lives (``renew_claims``).
        self.claims = self.engine.dialect.name == "postgresql"
        self.claim_lease_s = claim_lease_s

    # ------------------------------------------------------------------ schema

    def upgrade(self) -> tuple[str | None, str]:
        """Create the tables, or migrate them to this dvcsync's revision (``alembic upgrade
        head``), in one transaction that holds the migration lock: two processes doing it at
        once on a fresh database make one set of tables. A database of the releases before
        migrations is recognised and stamped as revision 0001 first. Returns ``(revision it was
        at, head)``; the first is None for an empty database."""
        from .migrations import head_revision, upgrade_to_head

        with self.engine.begin() as conn:
            before = upgrade_to_head(conn)
        return before, head_revision()

    def schema_status(self) -> tuple[str | None, str]:
        """``(current revision, head)``: current is None for an empty database, 0001 for one of
        the releases before migrations."""
        from .migrations import head_revision, revision_of

        with self.engine.connect() as conn:
            current, _stamped = revision_of(conn)
        return current, head_revision()

    def prepare(self) -> None:
        """What every run does before it touches the state: an empty database is created at
        head, one at head is used as it is, and any other is refused (``SchemaOutOfDate``), never
        migrated behind the operator's back."""
        from .migrations import is_known

        current, head = self.schema_status()
        if current == head:
            return
        if current is None:
            self.upgrade()  # rechecks under the lock: another process may have just made it
        elif is_known(current):
            raise SchemaOutOfDate(
                f"the state database {shown_url(self.url)} is at revision {current}; this dvcsync"
                f" needs {head}: run `dvcsync db upgrade`"
            )
        else:
            raise SchemaOutOfDate(newer_message(self.url, current))

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @cached_property
    def reader(self) -> Engine:
        """An engine for long reads that must not hold the write lock (see ``make_state_engine``)."""
        if self.engine.dialect.name != "sqlite":
            return self.engine  # PostgreSQL: a read transaction takes no lock a writer waits for
        return make_state_engine(self.url, read_only=True)

    def close(self) -> None:
        self.engine.dispose()
        if "reader" in self.__dict__ and self.reader is not self.engine:
            self.reader.dispose()

    # ------------------------------------------------------------------ identity

    def identity(self) -> dict[str, str]:
        """Whom this state serves, as recorded (empty for a state made before rev. 0006)."""
        with self.engine.connect() as conn:
            return {row.key: row.value for row in conn.execute(select(IDENTITY_T.c.key, IDENTITY_T.c.value))}

    def record_identity(self, values: dict[str, str], *, replace: bool = False) -> dict[str, str]:
        """Record the keys not recorded yet (all of them with ``replace``, `dvcsync db rebind`);
        returns the identity as it stands. Two processes binding at once keep the first."""
        now = time.time()
        with self.engine.begin() as conn:
            held = {row.key: row.value for row in conn.execute(select(IDENTITY_T.c.key, IDENTITY_T.c.value))}
            if replace:
                conn.execute(delete(IDENTITY_T))
                held = {}
            fresh = [{"key": k, "value": v, "recorded_at": now} for k, v in values.items() if k not in held]
            if fresh:
                conn.execute(insert(IDENTITY_T), fresh)
            return held | {row["key"]: row["value"] for row in fresh}

    # ------------------------------------------------------------------ cursor

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
        failed and advance the cursor — all in one transaction."""
        now = time.time() if now is None else now
        counts = EnqueueCounts(records=len(records))
        keys = [r.record_key for r in records]
        with self.engine.begin() as conn:
            self._serialize_enqueue(conn)
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
                for row in conn.execute(
                    select(QUARANTINE_T.c.record_key).where(QUARANTINE_T.c.record_key.in_(keys))
                )
            }
            outbox_rows: list[dict[str, Any]] = []
            new_states: list[dict[str, Any]] = []
            changed_states: list[dict[str, Any]] = []
            new_steps: list[dict[str, Any]] = []
            superseded: list[str] = []
            for record in records:
                if record.skipped:
                    counts.skipped += 1
                    if record.record_key in quarantined:  # it was waiting for a code: now decided
                        conn.execute(
                            delete(QUARANTINE_T).where(QUARANTINE_T.c.record_key == record.record_key)
                        )
                    continue
                if record.errors or record.dossier is None:
                    counts.quarantined += 1
                    self._quarantine(conn, record, now, exists=record.record_key in quarantined)
                    continue
                if record.record_key in quarantined:
                    counts.released += 1
                    conn.execute(delete(QUARANTINE_T).where(QUARANTINE_T.c.record_key == record.record_key))
                digest = payload_hash(record.dossier)
                state = known.get(record.record_key)
                fresh_steps = []
                for step_key, entry in record.steps:
                    entry_digest = payload_hash(entry)
                    previous = steps_known.get((record.record_key, step_key))
                    if previous is None:
                        fresh_steps.append((step_key, entry, entry_digest))
                    elif previous != entry_digest:
                        counts.steps_changed += 1
                if state is not None and state.payload_hash == digest and not fresh_steps:
                    counts.unchanged += 1
                    continue
                # First contact: the state has no evidence of what the portal holds of this
                # dossier (a new or lost state, a province coming from another integration). Its
                # entries are read back before anything is sent (sync.first_contact): the portal
                # may hold it already, and it never removes a history entry.
                unseen = is_first_contact(state)
                if state is None or state.payload_hash != digest:
                    counts.dossiers_enqueued += 1
                    outbox_rows.append(
                        _outbox_row(
                            record.kind,
                            record.record_key,
                            record.dossier,
                            digest,
                            now,
                            after=state.payload_hash if state is not None else None,
                            verify_first=unseen,
                        )
                    )
                    if state is not None:
                        superseded.append(record.record_key)
                    target = new_states if state is None else changed_states
                    target.append(
                        {
                            "record_key": record.record_key,
                            "source_id": record.source_id,
                            "source_updated_at": record.source_updated_at,
                            "payload_hash": digest,
                            "acked_hash": None,
                            "on_portal": False,
                            "status": record.dossier.get("TrangThaiHoSo", record.dossier.get("TrangThai")),
                            "updated_at": now,
                        }
                    )
                if fresh_steps:
                    counts.steps_enqueued += len(fresh_steps)
                    for start in range(0, len(fresh_steps), STEPS_PER_CALL):
                        chunk = fresh_steps[start : start + STEPS_PER_CALL]
                        payload = {"keys": [k for k, _, _ in chunk], "entries": [e for _, e, _ in chunk]}
                        outbox_rows.append(
                            _outbox_row(
                                "steps",
                                record.record_key,
                                payload,
                                payload_hash(payload),
                                now,
                                verify_first=unseen,
                            )
                        )
                    new_steps.extend(
                        {"record_key": record.record_key, "step_key": k, "entry_hash": d, "acked": False}
                        for k, _, d in fresh_steps
                    )
            if superseded:
                # a whole-dossier replace makes older pending versions of the same dossier pointless
                conn.execute(
                    update(OUTBOX_T)
                    .where(
                        and_(
                            OUTBOX_T.c.record_key.in_(superseded),
                            OUTBOX_T.c.kind.in_(["dossier", "status"]),
                            OUTBOX_T.c.state == "pending",
                        )
                    )
                    .values(state="superseded", updated_at=now)
                )
            if new_states:
                conn.execute(insert(DOSSIER_T), new_states)
            for row in sorted(changed_states, key=lambda r: r["record_key"]):  # lock order: by key
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
            if new_steps:
                conn.execute(insert(STEP_T), new_steps)
            if outbox_rows:
                self._insert_outbox(conn, outbox_rows)
            if cursor_name is not None:  # a one-off push enqueues without moving the cursor
                self._set_cursor(conn, cursor_name, watermark, last_key, now)
        return counts

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

    # ------------------------------------------------------------------ delivery

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
                    OUTBOX_T.c.state == "pending", OUTBOX_T.c.kind == kind, OUTBOX_T.c.next_attempt_at <= now
                )
            )
            .order_by(OUTBOX_T.c.id)
        )
        if kind == "steps":
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
                            earlier.c.kind == "steps",
                            earlier.c.state == "pending",
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
                        OUTBOX_T.c.kind == "steps",
                        OUTBOX_T.c.state == "pending",
                    )
                )
                .order_by(OUTBOX_T.c.id)
            )
            return [
                DueEntry(
                    r.id, "steps", r.record_key, r.payload, r.payload_hash, r.attempts, False, r.verify_first
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

    def _fenced(self, conn: Connection, ids: Sequence[int]) -> list[int]:
        """Of ``ids``, the entries whose dossier this replica still holds. An answer that comes
        back after the lease was taken over is not recorded: the new holder settles the entry
        (history by reading the portal back, see ``mark_in_flight``), so nothing is doubled."""
        if not self.claims or not ids:
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
                kept = set(self._fenced(conn, [e["e_id"] for e in entries]))
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
            .where(and_(OUTBOX_T.c.state == "pending", OUTBOX_T.c.kind == kind))
        )
        if record_key is not None:
            query = query.where(OUTBOX_T.c.record_key == record_key)
        if kind == "steps":
            query = query.where(DOSSIER_T.c.on_portal.is_(True))
        with self.engine.connect() as conn:
            earliest = conn.execute(query).scalar()
        return None if earliest is None else float(earliest)

    # ------------------------------------------------------------------ portal-side changes

    def on_portal_in(self, statuses: Iterable[str], after: str = "", limit: int = 10_000) -> list[str]:
        """Dossiers the portal holds whose last status sent is one of ``statuses``, by key after
        ``after`` (a rotating check reads a slice a cycle)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(DOSSIER_T.c.record_key)
                .where(
                    and_(
                        DOSSIER_T.c.on_portal.is_(True),
                        DOSSIER_T.c.status.in_(list(statuses)),
                        DOSSIER_T.c.record_key > after,
                    )
                )
                .order_by(DOSSIER_T.c.record_key)
                .limit(limit)
            )
            return [row[0] for row in rows]

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

    def record_conflict(
        self, record_key: str, field: str, province_value: str | None, portal_value: str | None, note: str
    ) -> bool:
        """Keep a conflict once (by record, field and the portal's value); True when new."""
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(CONFLICT_T.c.id).where(
                    and_(
                        CONFLICT_T.c.record_key == record_key,
                        CONFLICT_T.c.field == field,
                        CONFLICT_T.c.portal_value == portal_value,
                    )
                )
            ).first()
            if exists is not None:
                return False
            conn.execute(
                insert(CONFLICT_T).values(
                    record_key=record_key,
                    field=field,
                    province_value=province_value,
                    portal_value=portal_value,
                    note=note,
                    detected_at=time.time(),
                )
            )
            return True

    def conflicts(self, limit: int = 1000) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(CONFLICT_T).order_by(CONFLICT_T.c.id).limit(limit))
            return [dict(row._mapping) for row in rows]

    # ------------------------------------------------------------------ runs

    def start_run(self, job: str, now: float | None = None) -> int:
        from .replica import replica_id

        with self.engine.begin() as conn:
            inserted = conn.execute(
                insert(RUN_T).values(
                    job=job,
                    started_at=time.time() if now is None else now,
                    status="running",
                    counts="{}",
                    owner=replica_id(),
                )
            ).inserted_primary_key
        assert inserted is not None
        return int(inserted[0])

    def finish_run(
        self, run_id: int, status: str, counts: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        values: dict[str, Any] = {"finished_at": time.time(), "status": status, "error": error}
        if counts is not None:
            values["counts"] = json.dumps(counts, ensure_ascii=False)
        with self.engine.begin() as conn:
            conn.execute(update(RUN_T).where(RUN_T.c.id == run_id).values(**values))

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = [
                dict(r._mapping) for r in conn.execute(select(RUN_T).order_by(RUN_T.c.id.desc()).limit(limit))
            ]
        for row in rows:
            row["counts"] = json.loads(row["counts"] or "{}")
        return rows

    # ------------------------------------------------------------------ pruning

    def prune(self, keep_days: float, now: float | None = None, batch: int = PRUNE_BATCH) -> dict[str, int]:
        """Strip personal data from settled rows older than ``keep_days``: delivered (``done``)
        and superseded outbox entries, and inbox events applied, acknowledged or rejected. Each
        keeps a stub of codes, status, dates and the hash of what it held (``pruned_stub``), so
        reconciliation can still compare; its times stay as they were. Pending, in-flight and
        dead entries are never touched: they may still be sent. Refused inbound bodies not seen
        for ``keep_days`` are deleted (``_prune_refusals``).

        Works ``batch`` rows a transaction, so a large outbox never holds the write lock for
        long; an interrupted prune leaves whole batches done, and the next one takes the rest
        (a stub is never selected again). Returns the rows pruned by what they were."""
        now = time.time() if now is None else now
        cutoff = now - keep_days * 86400.0
        counts = {"outbox_done": 0, "outbox_superseded": 0, "inbox": 0}
        for state in ("done", "superseded"):
            last = 0
            while True:
                done, last = self._prune_outbox_batch(state, cutoff, last, batch)
                counts[f"outbox_{state}"] += done
                if last == 0:
                    break
        refusals = self._prune_refusals(cutoff, batch)  # before the inbox: deleted, not stubbed
        last = 0
        while True:
            done, last = self._prune_inbox_batch(cutoff, last, batch)
            counts["inbox"] += done
            if last == 0:
                break
        counts.update(refusals)
        return counts

    def _prune_refusals(self, cutoff: float, batch: int) -> dict[str, int]:
        """Refused inbound bodies not seen since ``cutoff`` go: the aggregates
        (``inbound_refusal``) and the one-row-per-refusal digests earlier versions kept in the inbox
        (``<MaThamChieu>#refused-<sha256>``). Counted only when there were some."""
        counts: dict[str, int] = {}
        legacy = and_(
            INBOX_T.c.kind == "payment_result",
            INBOX_T.c.state == "rejected",
            INBOX_T.c.natural_key.contains("#refused-"),
            INBOX_T.c.updated_at < cutoff,
        )
        for name, table, where in (
            ("inbound_refusals", REFUSAL_T, REFUSAL_T.c.last_seen < cutoff),
            ("inbox_refused", INBOX_T, legacy),
        ):
            removed = 0
            while True:
                with self.engine.begin() as conn:
                    ids = conn.execute(select(table.c.id).where(where).limit(batch)).scalars().all()
                    if ids:
                        conn.execute(delete(table).where(table.c.id.in_(ids)))
                if not ids:
                    break
                removed += len(ids)
            if removed:
                counts[name] = removed
        return counts

    def _prune_outbox_batch(self, state: str, cutoff: float, after: int, batch: int) -> tuple[int, int]:
        """One transaction: up to ``batch`` entries after id ``after``. Returns ``(pruned, last id)``,
        last id 0 when nothing was left."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(OUTBOX_T.c.id, OUTBOX_T.c.record_key, OUTBOX_T.c.payload, OUTBOX_T.c.payload_hash)
                .where(
                    and_(
                        OUTBOX_T.c.state == state,
                        OUTBOX_T.c.updated_at < cutoff,
                        OUTBOX_T.c.id > after,
                        ~OUTBOX_T.c.payload.startswith(_PRUNED_PREFIX),
                    )
                )
                .order_by(OUTBOX_T.c.id)
                .limit(batch)
            ).all()
            if not rows:
                return 0, 0
            conn.execute(
                _OUTBOX_PRUNE,
                [
                    {
                        "p_id": row.id,
                        "p_payload": dumps(pruned_stub(row.payload, row.record_key, row.payload_hash)),
                    }
                    for row in rows
                ],
            )
        return len(rows), int(rows[-1].id)

    def _prune_inbox_batch(self, cutoff: float, after: int, batch: int) -> tuple[int, int]:
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(INBOX_T.c.id, INBOX_T.c.natural_key, INBOX_T.c.payload)
                .where(
                    and_(
                        INBOX_T.c.state.in_(INBOX_SETTLED),
                        INBOX_T.c.updated_at < cutoff,
                        INBOX_T.c.id > after,
                        ~INBOX_T.c.payload.startswith(_PRUNED_PREFIX),
                    )
                )
                .order_by(INBOX_T.c.id)
                .limit(batch)
            ).all()
            if not rows:
                return 0, 0
            conn.execute(
                _INBOX_PRUNE,
                [
                    {
                        "p_id": row.id,
                        "p_payload": dumps(pruned_stub(row.payload, row.natural_key, key_name="natural_key")),
                    }
                    for row in rows
                ],
            )
        return len(rows), int(rows[-1].id)

    # ------------------------------------------------------------------ reading

    def count_first_contacts(self) -> int:
        """Dossiers still waiting for their first read-back (``dvcsync adopt``'s backlog)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        and_(
                            OUTBOX_T.c.state == "pending",
                            OUTBOX_T.c.kind.in_(["dossier", "status"]),
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
        assert record.dossier is not None
        rows: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            self._serialize_enqueue(conn)
            if as_new or resend_dossier:
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
                            OUTBOX_T.c.kind.in_(["dossier", "status"]),
                            OUTBOX_T.c.state == "pending",
                        )
                    )
                    .values(state="superseded", updated_at=now)
                )
                row = _outbox_row(record.kind, key, record.dossier, digest, now)
                row["idem_key"] = f"repair:{tag}:{row['idem_key']}"
                rows.append(row)
                counts["dossiers"] = 1
            if steps_checked and record.steps:
                conn.execute(delete(STEP_T).where(STEP_T.c.record_key == key))
                conn.execute(
                    insert(STEP_T),
                    [
                        {"record_key": key, "step_key": k, "entry_hash": payload_hash(e), "acked": False}
                        for k, e in record.steps
                    ],
                )
                for start in range(0, len(record.steps), STEPS_PER_CALL):
                    chunk = record.steps[start : start + STEPS_PER_CALL]
                    payload = {"keys": [k for k, _ in chunk], "entries": [e for _, e in chunk]}
                    row = _outbox_row("steps", key, payload, payload_hash(payload), now)
                    row["idem_key"] = f"repair:{tag}:{row['idem_key']}"
                    row["verify_first"] = True
                    rows.append(row)
                counts["steps"] = len(record.steps)
            if rows:
                before = conn.execute(
                    select(func.count()).select_from(OUTBOX_T).where(OUTBOX_T.c.record_key == key)
                ).scalar_one()
                self._insert_outbox(conn, rows)
                after = conn.execute(
                    select(func.count()).select_from(OUTBOX_T).where(OUTBOX_T.c.record_key == key)
                ).scalar_one()
                if after == before:  # this report's repair was enqueued before: nothing new
                    raise _AlreadyRepaired

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
                .where(OUTBOX_T.c.state == "dead")
                .order_by(OUTBOX_T.c.id)
                .limit(limit)
            )
            return [dict(row._mapping) for row in rows]

    def requeue_dead(self, ids: Sequence[int] | None = None) -> int:
        """Dead letters back to pending with a fresh attempt budget (read back first if history)."""
        with self.engine.begin() as conn:
            query = update(OUTBOX_T).where(OUTBOX_T.c.state == "dead")
            if ids is not None:
                query = query.where(OUTBOX_T.c.id.in_(list(ids)))
            result = conn.execute(
                query.values(
                    state="pending",
                    attempts=0,
                    next_attempt_at=0.0,
                    verify_first=OUTBOX_T.c.kind == "steps",
                    updated_at=time.time(),
                )
            )
            return int(result.rowcount)

    def discard_dead(self, ids: Sequence[int]) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(OUTBOX_T)
                .where(and_(OUTBOX_T.c.state == "dead", OUTBOX_T.c.id.in_(list(ids))))
                .values(state="discarded", updated_at=time.time())
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

    def count(self, table: str) -> int:
        tables = {
            "dossier_state": DOSSIER_T,
            "step_state": STEP_T,
            "outbox": OUTBOX_T,
            "quarantine": QUARANTINE_T,
        }
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(tables[table])).scalar_one())


# ---------------------------------------------------------------------- outcomes


@dataclass
class Outcome:
    """What happened to one outbox entry; ``rows`` turns it into the round's batched updates."""

    entry_id: int
    record_key: str
    kind: str
    result: str  # done | retry | dead | resend
    payload_hash: str | None = None
    error: str | None = None
    next_attempt_at: float = 0.0
    on_portal: bool | None = None
    step_keys: Sequence[str] = ()
    count_attempt: bool = True
    new_payload: Any = None  # replaces the entry's payload (e.g. only the history entries still missing)
    verify_first: bool | None = None

    def rows(self, now: float) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]:
        """Parameters for the batched outcome statements: the outbox row, the dossier record (or
        None when unchanged) and the history entries now acknowledged."""
        verify: bool | None
        if self.result == "done":
            state, error, verify = "done", None, False
        elif self.result == "dead":
            state, error, verify = "dead", self.error, self.verify_first
        else:  # retry later, or resend at once with a different create/replace choice
            state, error, verify = "pending", self.error, self.verify_first
        entry = {
            "e_id": self.entry_id,
            "e_state": state,
            "e_error": error,
            "e_next": self.next_attempt_at if state == "pending" else None,
            "e_verify": verify,
            "e_payload": dumps(self.new_payload) if self.new_payload is not None else None,
            "e_inc": 1 if self.count_attempt else 0,
            "e_failed": now if self.result in ("retry", "dead") and self.count_attempt else None,
            "e_now": now,
        }
        on_portal, acked_hash = self.on_portal, None
        if self.result == "done" and self.kind in ("dossier", "status"):
            on_portal, acked_hash = True, self.payload_hash
        dossier = (
            {"d_key": self.record_key, "d_on_portal": on_portal, "d_acked": acked_hash, "d_now": now}
            if on_portal is not None
            else None
        )
        acked = (
            [{"s_key": self.record_key, "s_step": step} for step in self.step_keys]
            if self.result == "done" and self.kind == "steps"
            else []
        )
        return entry, dossier, acked


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




def _lease_alive(replica: Any, now: float) -> Any:
    """The claimant's lease row is there and not over."""
    return (
        select(LEASE_T.c.replica)
        .where(and_(LEASE_T.c.replica == replica, LEASE_T.c.lease_until >= now))
        .exists()
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


# ---------------------------------------------------------------------- pruning

# Keys a pruned stub may keep: codes, statuses, dates and amounts, none of them about a person.
# An allow-list, so a field added to a contract later is dropped until someone says it is safe.
STUB_KEYS = (
    "MaHoSo",
    "MaHoSoDonVi",
    "SoBienNhan",
    "MaTTHC",
    "MaLinhVuc",
    "LoaiDoiTuong",
    "TrangThaiHoSo",
    "TrangThai",
    "NgayNopHoSo",
    "NgayTiepNhan",
    "NgayHenTra",
    "NgayTra",
    "NgayKetThucXuLy",
    "NgayTuChoi",
    "NgayXuLy",
    "KenhThucHien",
    "HinhThuc",
    "DonViXuLy",
    "MaThamChieu",
    "MaGiaoDich",
    "MaDoiTac",
    "MaNganHang",
    "MaLoi",
    "SoTien",
    "MaTienTe",
    "ThoiGianGD",
)
_PRUNED_PREFIX = '{"pruned":true'


def pruned_stub(raw: str, key: str, digest: str | None = None, *, key_name: str = "MaHoSo") -> dict[str, Any]:
    """What a settled payload keeps once pruned: a ``pruned`` marker (first, so a stub is
    recognised by its text), the record's key, the hash of the full payload (the stored one, or
    computed here before stripping), the allow-listed scalar codes (never a name, ID number,
    phone, e-mail or free text) and, of a history batch, its
    step keys and how many entries it held."""
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        payload = None
    if digest is None:
        digest = payload_hash(payload) if payload is not None else hashlib.sha256(raw.encode()).hexdigest()
    stub: dict[str, Any] = {"pruned": True, key_name: key, "hash": digest}
    if isinstance(payload, dict):
        stub.update(
            (k, payload[k]) for k in STUB_KEYS if isinstance(payload.get(k), str | int | float | bool)
        )
        keys = payload.get("keys")
        if isinstance(keys, list) and all(isinstance(k, str | int) for k in keys):
            stub["keys"] = keys
            entries = payload.get("entries")
            stub["entry_count"] = len(entries) if isinstance(entries, list) else 0
    return stub


_OUTBOX_PRUNE = (
    update(OUTBOX_T).where(OUTBOX_T.c.id == bindparam("p_id")).values(payload=bindparam("p_payload"))
)
_INBOX_PRUNE = update(INBOX_T).where(INBOX_T.c.id == bindparam("p_id")).values(payload=bindparam("p_payload"))


def is_first_contact(state: Any) -> bool:
    """A dossier the state knows nothing of the portal's copy: never seen, or enqueued but never
    acknowledged nor read back (``acked_hash`` empty and not known to be on the portal)."""
    return state is None or (state.acked_hash is None and not state.on_portal)


def _outbox_row(
    kind: str,
    record_key: str,
    payload: Any,
    digest: str,
    now: float,
    *,
    after: str | None = None,
    verify_first: bool = False,
) -> dict[str, Any]:
    """``after``: the hash this version replaces. A dossier can come back to an earlier version
    (A → B → A); keyed by its hash alone, the return to A would find A's old key and never be
    sent, leaving B on the portal. A change is keyed by what it replaces and when it was enqueued
    (a page is enqueued once: the cursor moves in the same transaction)."""
    key = f"{kind}:{record_key}:{digest}"
    if after is not None:
        key = f"{key}<{after}@{now!r}"
    return {
        "idem_key": key,
        "kind": kind,
        "record_key": record_key,
        "payload": dumps(payload),
        "payload_hash": digest,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": 0.0,
        "last_error": None,
        "verify_first": verify_first,
        "created_at": now,
        "updated_at": now,
    }


def make_state_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine on the state store. Its rows hold citizens' data, so statement parameters are
    kept out of errors and a SQLite file is private to its owner (``_private_sqlite_file``).
    ``read_only``: SQLite transactions begin deferred, so a long read (a reconciliation's merge
    over a million records) holds no write lock and never makes a writer wait (WAL readers see
    a snapshot)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _private_sqlite_file(parsed.database)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        from .replica import replica_id

        # a run is "interrupted" once no session of its owner is left (see state_lock)
        options["connect_args"] = {"application_name": replica_id()}
        if parsed.get_driver_name() == "psycopg2":
            # a round's answers are batched UPDATEs: psycopg2's executemany sends them one round
            # trip each (800 outcomes: ~250 ms); execute_batch pages them (measured in bench/replicas.py)
            options["executemany_mode"] = "values_plus_batch"
    engine = create_engine(url, future=True, hide_parameters=True, **options)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # transactions are begun below, not by sqlite3
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            _wal(cursor)
            # FULL: an acknowledged delivery survives power loss too, so it is never re-sent
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            # Take the write lock at BEGIN: a transaction that reads, then writes, would otherwise
            # fail at once (SQLITE_BUSY_SNAPSHOT) when another writer committed in between,
            # instead of waiting its turn under busy_timeout. Enqueue and delivery write at once.
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _wal(cursor: Any) -> None:
    """``journal_mode=WAL``. Two processes opening a new file at once both try to switch it, and
    SQLite answers one "database is locked" at once, without waiting (busy_timeout does not
    apply: both hold a shared lock and want an exclusive one): try again shortly, it is WAL then."""
    deadline = time.monotonic() + 30.0
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _is_sqlite_file(path: str) -> bool:
    """A regular file of ours holding a SQLite database (a PermissionError names an unreadable one).

    Asked of SQLite, never by ``open()``: closing any descriptor of a database file drops every
    POSIX lock this process holds on it, the locks of its open SQLite connections among them, and
    another writer then corrupts the file ("database disk image is malformed", "disk I/O error":
    SQLite's "How To Corrupt" 2.2). SQLite's own unix VFS keeps such a descriptor open until the
    process's last lock on the file is released, so a read-only connection is safe beside them."""
    if not os.path.isfile(path) or os.stat(path).st_uid != os.getuid() or not os.path.getsize(path):
        return False
    uri = "file:" + urllib.parse.quote(path) + "?mode=ro"
    try:
        probe = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        return False
    try:
        probe.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return True
    except sqlite3.DatabaseError:
        return False  # "file is not a database": not a state dvcsync made
    finally:
        probe.close()


def _loose(path: str) -> list[str]:
    """The state file and its -wal/-shm that group or others may read."""
    return [
        name
        for name in (path, path + "-wal", path + "-shm")
        if os.path.exists(name) and stat.S_IMODE(os.stat(name).st_mode) & 0o077
    ]


def _private_sqlite_file(database: str | None) -> None:
    """Create the state file 0600 (and a missing folder for it 0700) before SQLite opens it:
    SQLite gives its -wal and -shm files the main file's mode, so they follow. An existing file
    readable by group or others is tightened, said once at INFO."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return  # in memory, or a URI whose options SQLite interprets: left to the operator
    path = os.path.abspath(database)
    missing: list[str] = []
    folder = os.path.dirname(path)
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for created in reversed(missing):
        os.mkdir(created, 0o700)
        os.chmod(created, 0o700)  # exactly 0700, whatever the umask
    if os.path.isdir(path):  # never chmod a folder (issue 20): say what is wrong instead
        raise IsADirectoryError(errno.EISDIR, "the state URL names a folder, not a state file", path)
    if not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        return
    if not _loose(path):
        return  # the usual case (dvcsync makes it 0600): the file is not even opened
    if not _is_sqlite_file(path):
        return  # not a state dvcsync made: its mode is not dvcsync's to change (SQLite will say why)
    loose = _loose(path)  # again: the probe may have made a -shm with the main file's mode
    try:
        for name in loose:
            os.chmod(name, 0o600)
    except OSError as exc:
        log.warning("the state store %s is readable by others and cannot be made private: %s", path, exc)
        return
    log.info("the state store %s was readable by others: now 0600 (%s)", path, ", ".join(loose))
