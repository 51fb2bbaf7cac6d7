"""A state database exactly as the releases before migrations made it: their models, frozen here
(plain tables, as ``SQLModel.metadata.create_all`` created them) so the migration tests keep
testing the same starting point however the models change later. And some data in it."""

from __future__ import annotations

import json
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    insert,
    inspect,
    select,
    text,
)

from dvcsync.state import StateStore
from dvcsync.state.migrations import alembic_config, head_revision, state_metadata

LEGACY = MetaData()
Table(
    "dossier_state",
    LEGACY,
    Column("record_key", String, primary_key=True),
    Column("source_id", Integer),
    Column("source_updated_at", String),
    Column("payload_hash", String),
    Column("acked_hash", String),
    Column("on_portal", Boolean, nullable=False),
    Column("status", String),
    Column("updated_at", Float, nullable=False),
)
Table(
    "step_state",
    LEGACY,
    Column("record_key", String, primary_key=True),
    Column("step_key", String, primary_key=True),
    Column("entry_hash", String, nullable=False),
    Column("acked", Boolean, nullable=False),
)
Table(
    "outbox",
    LEGACY,
    Column("id", Integer, primary_key=True),
    Column("idem_key", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("record_key", String, nullable=False),
    Column("payload", Text, nullable=False),
    Column("payload_hash", String, nullable=False),
    Column("state", String, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", String),
    Column("verify_first", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("idem_key", name="uq_outbox_idem_key"),
    Index("ix_outbox_due", "state", "next_attempt_at"),
    Index("ix_outbox_record", "record_key"),
)
Table(
    "cursor",
    LEGACY,
    Column("name", String, primary_key=True),
    Column("watermark", String, nullable=False),
    Column("last_key", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Table(
    "quarantine",
    LEGACY,
    Column("mapping", String, primary_key=True),
    Column("record_key", String, primary_key=True),
    Column("errors", Text, nullable=False),
    Column("source_updated_at", String),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)
Table(
    "run",
    LEGACY,
    Column("id", Integer, primary_key=True),
    Column("job", String, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("status", String, nullable=False),
    Column("counts", Text, nullable=False),
    Column("error", String),
)
Table(
    "inbox",
    LEGACY,
    Column("id", Integer, primary_key=True),
    Column("kind", String, nullable=False),
    Column("natural_key", String, nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String, nullable=False),
    Column("local_key", String),
    Column("error", String),
    Column("received_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("kind", "natural_key", name="uq_inbox_natural_key"),
)
Table(
    "conflict",
    LEGACY,
    Column("id", Integer, primary_key=True),
    Column("record_key", String, nullable=False),
    Column("field", String, nullable=False),
    Column("province_value", String),
    Column("portal_value", String),
    Column("note", String, nullable=False),
    Column("detected_at", Float, nullable=False),
    UniqueConstraint("record_key", "field", "portal_value", name="uq_conflict"),
)


def _dossier(n: int) -> dict[str, Any]:
    return {
        "record_key": f"000.00.01.H40-250801-{n:04d}",
        "source_id": n,
        "source_updated_at": f"2025-08-01T10:{n % 60:02d}:00",
        "payload_hash": f"hash-{n}",
        "acked_hash": f"hash-{n}" if n % 2 else None,
        "on_portal": bool(n % 2),
        "status": "2",
        "updated_at": 1_754_000_000.0 + n,
    }


def _outbox(n: int, state: str) -> dict[str, Any]:
    return {
        "idem_key": f"dossier:000.00.01.H40-250801-{n:04d}:hash-{n}",
        "kind": "dossier",
        "record_key": f"000.00.01.H40-250801-{n:04d}",
        "payload": json.dumps({"MaHoSo": f"000.00.01.H40-250801-{n:04d}", "ChuHoSo": "Nguyễn Văn A"}),
        "payload_hash": f"hash-{n}",
        "state": state,
        "attempts": 1 if state == "done" else 0,
        "next_attempt_at": 0.0,
        "last_error": None,
        "verify_first": False,
        "created_at": 1_754_000_000.0 + n,
        "updated_at": 1_754_000_100.0 + n,
    }


LEGACY_ROWS: dict[str, list[dict[str, Any]]] = {
    "dossier_state": [_dossier(n) for n in range(1, 7)],
    "step_state": [
        {"record_key": "000.00.01.H40-250801-0001", "step_key": "17", "entry_hash": "e17", "acked": True}
    ],
    "outbox": [_outbox(n, "done" if n <= 3 else "pending") for n in range(1, 7)],
    "cursor": [{"name": "push:ho_so", "watermark": "2025-08-01T10:06:00", "last_key": 6, "updated_at": 1.5}],
    "run": [
        {
            "job": "push",
            "started_at": 1_754_000_000.0,
            "finished_at": 1_754_000_009.0,
            "status": "ok",
            "counts": '{"dossiers_pushed": 3}',
            "error": None,
        }
    ],
}


STATE_TABLES = {
    "dossier_state",
    "step_state",
    "outbox",
    "cursor",
    "quarantine",
    "run",
    "inbox",
    "conflict",
    "catalogue_pull",
    "catalogue_procedure",
    "catalogue_agency",
    "catalogue_sector",
    "satisfaction_sent",
    "replica_lease",
    "state_identity",
    "inbound_refusal",
}


def tables_of(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def indexes_of(url: str, table: str) -> dict[str, list[str | None]]:
    engine = create_engine(url)
    try:
        return {ix["name"] or "": ix["column_names"] for ix in inspect(engine).get_indexes(table)}
    finally:
        engine.dispose()


def versions_of(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


def migrate(url: str, verb: str, target: str) -> None:
    """``alembic upgrade|downgrade target`` on the state engine, as a developer would run it."""
    store = StateStore(url)
    try:
        with store.engine.begin() as conn:
            getattr(command, verb)(alembic_config(connection=conn), target)
    finally:
        store.close()


def assert_adopted_with_data(url: str, before: dict[str, list[dict[str, Any]]]) -> None:
    """After ``upgrade()`` of a previous release's database: every row, the head, the new indexes."""
    assert {name: len(rows) for name, rows in before.items()} == {
        name: len(rows) for name, rows in LEGACY_ROWS.items()
    }
    assert legacy_rows(url) == before
    assert versions_of(url) == [head_revision()]
    assert indexes_of(url, "outbox")["ix_outbox_settled"] == ["state", "updated_at"]
    assert indexes_of(url, "inbox")["ix_inbox_settled"] == ["state", "updated_at"]


def model_diff(url: str) -> list[Any]:
    """What autogenerate would write: the models against the database, none when they agree."""
    store = StateStore(url)
    try:
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, state_metadata()))
    finally:
        store.close()


def make_legacy_state(url: str) -> None:
    """The previous release's ``dvcsync db upgrade`` (``create_all``), then a few cycles' rows."""
    engine = create_engine(url)
    try:
        LEGACY.create_all(engine)
        with engine.begin() as conn:
            for name, rows in LEGACY_ROWS.items():
                conn.execute(insert(LEGACY.tables[name]), rows)
    finally:
        engine.dispose()


def legacy_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of the tables ``LEGACY_ROWS`` filled, without their generated ids, in key order."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = {}
            for name in LEGACY_ROWS:
                table = LEGACY.tables[name]
                rows = conn.execute(select(table).order_by(*table.primary_key.columns)).mappings()
                found[name] = [{k: v for k, v in row.items() if k != "id"} for row in rows]
            return found
    finally:
        engine.dispose()
