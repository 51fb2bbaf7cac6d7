"""Named reads of the state for the modules outside it that read it without a ``StateStore``
at hand (a metrics scrape on an engine, the reconciler on the store's reader, the citizen check
on the state's engine): the SQL stays here, next to the tables and their indexes.

Each takes an ``Engine`` or a ``Connection`` the caller opened (several reads in one snapshot)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any, NamedTuple

from sqlalchemy import Engine, and_, func, select, text
from sqlalchemy.engine import Connection

from .kinds import INBOX_OPEN, INBOX_SETTLED, OUTBOX_OPEN, InboxKind, InboxState, OutboxState
from .tables import CONFLICT_T, DOSSIER_T, INBOX_T, REFUSAL_T

# ---------------------------------------------------------------------- the citizen check


def payload_hashes(engine: Engine, keys: Collection[str]) -> dict[str, str]:
    """The hash of the payload last enqueued, per dossier of ``keys`` the state knows."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(DOSSIER_T.c.record_key, DOSSIER_T.c.payload_hash).where(
                DOSSIER_T.c.record_key.in_(list(keys))
            )
        )
        return {str(k): str(h) for k, h in rows}


# ---------------------------------------------------------------------- refusals


def refusal_totals(engine: Engine) -> dict[tuple[str, str], int]:
    """Refused inbound bodies kept, by (kind, reason), over every caller."""
    query = select(REFUSAL_T.c.kind, REFUSAL_T.c.reason, func.sum(REFUSAL_T.c["count"])).group_by(
        REFUSAL_T.c.kind, REFUSAL_T.c.reason
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return {(str(kind), str(reason)): int(n or 0) for kind, reason, n in rows}


# ---------------------------------------------------------------------- the reconciler's inbox check


class ReceivedEvent(NamedTuple):
    natural_key: str
    state: str
    error: str | None
    payload: str
    received_at: float


class KeptConflict(NamedTuple):
    record_key: str
    province_value: str | None
    portal_value: str | None
    note: str
    detected_at: float


TAKEN_IN = (InboxState.APPLIED, InboxState.ACKNOWLEDGED)


def portal_dossiers_not_taken_in(conn: Connection) -> list[ReceivedEvent]:
    """Dossiers received from the portal that the province has not taken in, by code."""
    rows = conn.execute(
        select(
            INBOX_T.c.natural_key,
            INBOX_T.c.state,
            INBOX_T.c.error,
            INBOX_T.c.payload,
            INBOX_T.c.received_at,
        )
        .where(and_(INBOX_T.c.kind == InboxKind.PORTAL_DOSSIER, INBOX_T.c.state.not_in(TAKEN_IN)))
        .order_by(INBOX_T.c.natural_key)
    )
    return [ReceivedEvent(*row) for row in rows]


def conflicts_on(conn: Connection, field: str) -> list[KeptConflict]:
    """The conflicts kept on ``field``, by dossier and in the order they were found."""
    rows = conn.execute(
        select(
            CONFLICT_T.c.record_key,
            CONFLICT_T.c.province_value,
            CONFLICT_T.c.portal_value,
            CONFLICT_T.c.note,
            CONFLICT_T.c.detected_at,
        )
        .where(CONFLICT_T.c.field == field)
        .order_by(CONFLICT_T.c.record_key, CONFLICT_T.c.id)
    )
    return [KeptConflict(*row) for row in rows]


def received_keys(conn: Connection, kind: str, keys: Collection[str]) -> set[str]:
    """Which of ``keys`` the inbox holds an event of ``kind`` for."""
    wanted = and_(INBOX_T.c.kind == kind, INBOX_T.c.natural_key.in_(list(keys)))
    rows = conn.execute(select(INBOX_T.c.natural_key).where(wanted))
    return {str(key) for (key,) in rows}


# ---------------------------------------------------------------------- the backlog gauges

INBOX_RECENT = INBOX_SETTLED

# Plain SQL, the same on SQLite and PostgreSQL but for the index hint. SQLite needs it: once
# ANALYZE has run, its statistics (no skew) make ``state IN ('pending', 'dead')`` look like half
# the table and it scans every row; PostgreSQL's histograms see the skew and use the index.
_OUTBOX_SQL = (
    "SELECT CASE WHEN state = '{pending}' AND verify_first THEN 'in_flight'"
    " WHEN state = '{pending}' AND attempts > 0 THEN 'retry' ELSE state END, kind, count(*)"
    " FROM outbox{outbox_hint} WHERE state IN ({outbox_open}) GROUP BY 1, 2"
)
_INBOX_SQL = (  # two branches: an OR of both would not use one index under SQLite's statistics
    "SELECT kind, state, count(*) FROM inbox{inbox_hint} WHERE state IN ({inbox_open}) GROUP BY 1, 2"
    " UNION ALL SELECT kind, state, count(*) FROM inbox{inbox_hint}"
    " WHERE state IN ({inbox_recent}) AND updated_at >= :since GROUP BY 1, 2"
)
# the quarantine holds only the records failing now (cleared when they map again): small
_QUARANTINE_SQL = "SELECT count(*) FROM quarantine"


def _listed(states: Collection[str]) -> str:
    return ", ".join(f"'{s}'" for s in states)  # the enums' values, never input


def backlog_sql(dialect: str) -> dict[str, str]:
    """The scrape's statements (``:since`` is a parameter), each restricted by ``state IN
    (...)`` so an index on ``(state, ...)`` answers it; a test checks their plans. ``pending`` is
    split the way an operator reads it: ``in_flight`` (sent, answer not recorded: read back
    first), ``retry`` (failed before), ``pending`` (never tried)."""
    sqlite = dialect == "sqlite"
    names = {
        "pending": str(OutboxState.PENDING),
        "outbox_hint": " INDEXED BY ix_outbox_due" if sqlite else "",
        "inbox_hint": " INDEXED BY ix_inbox_settled" if sqlite else "",
        "outbox_open": _listed(OUTBOX_OPEN),
        "inbox_open": _listed(INBOX_OPEN),
        "inbox_recent": _listed(INBOX_RECENT),
    }
    return {
        "outbox": _OUTBOX_SQL.format(**names),
        "inbox": _INBOX_SQL.format(**names),
        "quarantine": _QUARANTINE_SQL,
    }


def read_backlog(engine: Engine, sql: dict[str, str], since: float) -> dict[str, list[Any]]:
    """The backlog rows of one state: ``outbox`` (state, kind, n), ``inbox`` (kind, state, n;
    the settled ones since ``since``) and ``quarantine`` ((n,)), by ``backlog_sql``'s statements."""
    with engine.connect() as conn:
        return {
            "outbox": list(conn.execute(text(sql["outbox"]))),
            "inbox": list(conn.execute(text(sql["inbox"]), {"since": since})),
            "quarantine": [(conn.execute(text(sql["quarantine"])).scalar_one(),)],
        }


# ---------------------------------------------------------------------- the reconciler's merge

_STATE_RECORDS = """
    WITH ob AS (
        SELECT record_key,
               SUM(CASE WHEN state = '{pending}' THEN 1 ELSE 0 END) AS pending,
               SUM(CASE WHEN state = '{dead}' THEN 1 ELSE 0 END) AS dead,
               MIN(CASE WHEN state = '{pending}' THEN created_at END) AS pending_since,
               MAX(CASE WHEN state = '{dead}' THEN updated_at END) AS dead_at,
               MAX(CASE WHEN state = '{dead}' THEN last_error END) AS dead_error,
               MAX(CASE WHEN state = '{dead}' THEN attempts END) AS dead_attempts
        FROM outbox WHERE state IN ('{pending}', '{dead}') GROUP BY record_key
    ), q AS (
        SELECT record_key, MIN(first_seen) AS first_seen, MAX(errors) AS errors, MAX(mapping) AS mapping
        FROM quarantine GROUP BY record_key
    ), k AS (
        SELECT record_key FROM dossier_state UNION SELECT record_key FROM q
        UNION SELECT record_key FROM ob
    )
    SELECT k.record_key AS k, d.on_portal, d.payload_hash, d.acked_hash, d.source_updated_at,
           d.status, d.updated_at AS state_updated_at,
           q.first_seen AS q_first, q.errors AS q_errors, q.mapping AS q_mapping,
           ob.pending, ob.dead, ob.pending_since, ob.dead_at, ob.dead_error, ob.dead_attempts
    FROM k LEFT JOIN dossier_state d ON d.record_key = k.record_key
    LEFT JOIN q ON q.record_key = k.record_key LEFT JOIN ob ON ob.record_key = k.record_key
    ORDER BY {order}
"""


def state_records(engine: Engine) -> Iterator[dict[str, Any]]:
    """Every record the state knows of (a sync record, a quarantine, an undelivered entry),
    streamed in byte order of its code (``COLLATE "C"`` on PostgreSQL, so it sorts as Python
    compares strings), with what is pending or dead for it. ``engine``: the store's reader."""
    order = 'k.record_key COLLATE "C"' if engine.dialect.name == "postgresql" else "k.record_key"
    sql = _STATE_RECORDS.format(pending=OutboxState.PENDING.value, dead=OutboxState.DEAD.value, order=order)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(text(sql))
        names = list(result.keys())
        for row in result:
            yield dict(zip(names, row, strict=True))
