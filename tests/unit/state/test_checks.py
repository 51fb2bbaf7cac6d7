"""The persisted states and kinds: the enums of ``dvcsync.state.kinds``, the CHECK constraints
revision 0007 adds (SQLite by batch mode, PostgreSQL by ALTER TABLE) and the models agree; a state
at 0006 with every valid value upgrades with its rows, one holding a value outside them is
refused and left as it was, and a state at head refuses such a value on insert."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from dvcsync.state import InboxKind, InboxState, OutboxKind, OutboxState, StateStore
from dvcsync.state.kinds import CHECKED_COLUMNS, check_name
from dvcsync.state.migrations import head_revision
from dvcsync.state.tables import INBOX_T, OUTBOX_T

from ...postgres import create_database, postgres_server
from .legacy_state import migrate, model_diff, versions_of

REVISION = importlib.import_module("dvcsync.state.migrations.versions.0007_checks")


def _checks_of(url: str) -> dict[tuple[str, str], set[str]]:
    """The values each CHECK constraint of the outbox and inbox allows, as the database holds it."""
    engine = create_engine(url)
    try:
        found: dict[tuple[str, str], set[str]] = {}
        with engine.connect() as conn:
            inspector = inspect(conn)
            for table in ("outbox", "inbox"):
                for check in inspector.get_check_constraints(table):
                    column = check["name"].removeprefix(f"ck_{table}_")
                    found[(table, column)] = set(re.findall(r"'([^']*)'", check["sqltext"]))
        return found
    finally:
        engine.dispose()


def _values(enum: type[StrEnum]) -> set[str]:
    return {member.value for member in enum}


def test_the_enums_are_what_the_revision_checks() -> None:
    assert {(t, c): set(v) for t, cols in REVISION.CHECKS.items() for c, v in cols.items()} == {
        key: _values(enum) for key, enum in CHECKED_COLUMNS.items()
    }
    assert {
        ("outbox", "state"): OutboxState,
        ("outbox", "kind"): OutboxKind,
        ("inbox", "state"): InboxState,
        ("inbox", "kind"): InboxKind,
    } == CHECKED_COLUMNS
    assert _values(OutboxKind) == {"status", "steps", "dossier"}
    assert {"discarded", "superseded"} <= _values(OutboxState) and "attachment" in _values(InboxKind)


def test_the_models_declare_the_same_checks_and_describe_every_value() -> None:
    for table in (OUTBOX_T, INBOX_T):
        names = {c.name for c in table.constraints if c.name and str(c.name).startswith("ck_")}
        assert names == {check_name(table.name, col) for t, col in CHECKED_COLUMNS if t == table.name}
    models = importlib.import_module("dvcsync.state.models")
    for (table, column), enum in CHECKED_COLUMNS.items():
        model = {"outbox": models.OutboxEntry, "inbox": models.InboxEvent}[table]
        described = str(model.model_fields[column].description)
        assert set(described.split(" | ")) == _values(enum), (table, column, described)


# ---------------------------------------------------------------------- on a database


def _seed_every_value(url: str) -> None:
    """One outbox entry per (state, kind) and one inbox event per (state, kind), at 0006."""
    engine = create_engine(url)
    with engine.begin() as conn:
        n = 0
        for state in OutboxState:
            for kind in OutboxKind:
                n += 1
                conn.execute(
                    text(
                        "INSERT INTO outbox (idem_key, kind, record_key, payload, payload_hash, state,"
                        " attempts, next_attempt_at, verify_first, created_at, updated_at)"
                        " VALUES (:k, :kind, 'HS1', '{}', 'h', :state, 0, 0, FALSE, 0, 0)"
                    ),
                    {"k": f"key-{n}", "kind": kind.value, "state": state.value},
                )
        for state in InboxState:
            for kind in InboxKind:
                n += 1
                conn.execute(
                    text(
                        "INSERT INTO inbox (kind, natural_key, payload, state, received_at, updated_at)"
                        " VALUES (:kind, :k, '{}', :state, 0, 0)"
                    ),
                    {"k": f"key-{n}", "kind": kind.value, "state": state.value},
                )
    engine.dispose()


def _rows(url: str) -> list[tuple[str, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = list(conn.execute(text("SELECT idem_key, kind, state FROM outbox ORDER BY id")))
        rows += list(conn.execute(text("SELECT natural_key, kind, state FROM inbox ORDER BY id")))
    engine.dispose()
    return [tuple(r) for r in rows]


def _upgrades_with_its_rows(url: str) -> None:
    migrate(url, "upgrade", "0006")
    _seed_every_value(url)
    before = _rows(url)
    store = StateStore(url)
    try:
        assert store.upgrade() == ("0006", head_revision())
    finally:
        store.close()
    assert _rows(url) == before and len(before) == 5 * 3 + 5 * 5
    assert _checks_of(url) == {key: _values(enum) for key, enum in CHECKED_COLUMNS.items()}
    assert model_diff(url) == []


def _refuses_an_unknown_value(url: str, table: str, column: str) -> None:
    migrate(url, "upgrade", "0006")
    _seed_every_value(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {table} SET {column} = 'bogus' WHERE id = 1"))
    engine.dispose()
    before = _rows(url)
    store = StateStore(url)
    try:
        with pytest.raises(IntegrityError, match=f"ck_{table}_{column}|CHECK constraint failed"):
            store.upgrade()
    finally:
        store.close()
    assert versions_of(url) == ["0006"] and _rows(url) == before  # rolled back, nothing lost


def _refuses_an_unknown_value_at_head(url: str) -> None:
    store = StateStore(url)
    try:
        store.upgrade()
        for table, column in CHECKED_COLUMNS:
            with pytest.raises(IntegrityError), store.begin() as conn:
                if table == "outbox":
                    conn.execute(
                        text(
                            "INSERT INTO outbox (idem_key, kind, record_key, payload, payload_hash, state,"
                            " attempts, next_attempt_at, verify_first, created_at, updated_at)"
                            " VALUES ('x', :kind, 'HS1', '{}', 'h', :state, 0, 0, FALSE, 0, 0)"
                        ),
                        {
                            "kind": "bogus" if column == "kind" else "dossier",
                            "state": "bogus" if column == "state" else "pending",
                        },
                    )
                else:
                    conn.execute(
                        text(
                            "INSERT INTO inbox (kind, natural_key, payload, state, received_at, updated_at)"
                            " VALUES (:kind, 'x', '{}', :state, 0, 0)"
                        ),
                        {
                            "kind": "bogus" if column == "kind" else "promotion",
                            "state": "bogus" if column == "state" else "received",
                        },
                    )
    finally:
        store.close()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def test_sqlite_a_state_with_every_valid_value_upgrades_with_its_rows(url: str) -> None:
    _upgrades_with_its_rows(url)


@pytest.mark.parametrize(("table", "column"), sorted(CHECKED_COLUMNS))
def test_sqlite_a_state_with_an_unknown_value_is_refused_and_left_as_it_was(
    url: str, table: str, column: str
) -> None:
    _refuses_an_unknown_value(url, table, column)


def test_sqlite_a_state_at_head_refuses_an_unknown_value(url: str) -> None:
    _refuses_an_unknown_value_at_head(url)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with postgres_server() as found:
        yield found


@pytest.mark.slow
def test_postgres_the_checks_as_on_sqlite(server: str) -> None:
    _upgrades_with_its_rows(create_database(server, "checks_valid"))
    _refuses_an_unknown_value(create_database(server, "checks_refused"), "outbox", "state")
    _refuses_an_unknown_value(create_database(server, "checks_refused_kind"), "inbox", "kind")
    _refuses_an_unknown_value_at_head(create_database(server, "checks_head"))
