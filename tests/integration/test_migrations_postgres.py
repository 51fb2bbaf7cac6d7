"""The state store's migrations on a real PostgreSQL server: a database of the releases before
migrations is adopted with its data, the models and the migrations agree there too, and
migrators racing on one fresh database wait for each other (``pg_advisory_xact_lock``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from dvcsync.state import SchemaOutOfDate, StateStore
from dvcsync.state.migrations import head_revision

from ..postgres import create_database, postgres_server
from ..unit.state.legacy_state import (
    STATE_TABLES,
    assert_adopted_with_data,
    indexes_of,
    legacy_rows,
    make_legacy_state,
    migrate,
    model_diff,
    tables_of,
    versions_of,
)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def test_a_database_of_the_previous_release_is_stamped_and_upgraded_with_its_data(server: str) -> None:
    url = create_database(server, "migrate_legacy")
    make_legacy_state(url)
    before = legacy_rows(url)
    store = StateStore(url)
    try:
        with pytest.raises(SchemaOutOfDate, match=r"at revision 0001; .* run `dvcsync db upgrade`"):
            store.prepare()
        assert store.upgrade() == ("0001", head_revision())
        store.prepare()
        assert store.backlog() == {"done:dossier": 3, "pending:dossier": 3}
    finally:
        store.close()
    assert_adopted_with_data(url, before)
    assert model_diff(url) == []


def test_fresh_head_twice_and_behind(server: str) -> None:
    url = create_database(server, "migrate_fresh")
    store = StateStore(url)
    try:
        store.prepare()
        assert tables_of(url) == STATE_TABLES | {"alembic_version"}
        assert store.upgrade() == (head_revision(), head_revision())
        assert versions_of(url) == [head_revision()]
        assert model_diff(url) == [], "models.py and migrations/versions differ on PostgreSQL"
    finally:
        store.close()
    migrate(url, "downgrade", "0001")
    assert "ix_outbox_settled" not in indexes_of(url, "outbox")
    store = StateStore(url)
    try:
        with pytest.raises(SchemaOutOfDate, match=f"at revision 0001; this dvcsync needs {head_revision()}"):
            store.prepare()
        assert store.upgrade() == ("0001", head_revision())
    finally:
        store.close()
    migrate(url, "downgrade", "base")
    assert tables_of(url) == {"alembic_version"}
    migrate(url, "upgrade", "head")
    assert versions_of(url) == [head_revision()]


def test_migrators_racing_on_one_fresh_database(server: str) -> None:
    """Without the lock the second CREATE TABLE fails (duplicate pg_type row or "already exists");
    with it the others wait, then find the database at head."""
    url = create_database(server, "migrate_race")
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def prepare() -> None:
        store = StateStore(url)
        try:
            start.wait(timeout=30)
            store.prepare()
        except BaseException as exc:  # handed to the test
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=prepare) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert tables_of(url) == STATE_TABLES | {"alembic_version"}
    assert versions_of(url) == [head_revision()]
