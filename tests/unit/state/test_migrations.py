"""Schema migrations of the state store: a database of the releases before migrations is adopted
with its data, runs refuse a database at another revision, the models and the migrations agree,
and two processes creating one database at once make one set of tables."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from dvcsync.cli import app
from dvcsync.state import SchemaOutOfDate, StateStore
from dvcsync.state.migrations import head_revision, script_directory, state_metadata
from mock_portal.testing import run_mock

from .legacy_state import (
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

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def test_a_database_of_the_previous_release_is_stamped_and_upgraded_with_its_data(url: str) -> None:
    make_legacy_state(url)
    before = legacy_rows(url)
    store = StateStore(url)
    try:
        assert store.schema_status() == ("0001", head_revision())
        assert store.upgrade() == ("0001", head_revision())
        store.prepare()  # at head now: passes
        assert store.backlog() == {"done:dossier": 3, "pending:dossier": 3}
        assert store.cursor("push:ho_so") == ("2025-08-01T10:06:00", 6)
    finally:
        store.close()
    assert_adopted_with_data(url, before)


def test_a_fresh_database_is_created_at_head_and_a_second_upgrade_changes_nothing(url: str) -> None:
    store = StateStore(url)
    try:
        assert store.schema_status() == (None, head_revision())
        assert store.upgrade() == (None, head_revision())
        assert tables_of(url) == STATE_TABLES | {"alembic_version"}
        assert store.upgrade() == (head_revision(), head_revision())
        assert versions_of(url) == [head_revision()]
        store.prepare()
    finally:
        store.close()


def test_prepare_creates_an_empty_database_at_head(url: str) -> None:
    store = StateStore(url)
    try:
        store.prepare()
        assert store.schema_status() == (head_revision(), head_revision())
    finally:
        store.close()
    assert tables_of(url) == STATE_TABLES | {"alembic_version"}


def test_prepare_refuses_a_database_behind_head_and_changes_nothing(url: str) -> None:
    migrate(url, "upgrade", "0001")
    store = StateStore(url)
    try:
        with pytest.raises(SchemaOutOfDate) as refused:
            store.prepare()
        message = str(refused.value)
        assert "is at revision 0001" in message and f"needs {head_revision()}" in message
        assert "run `dvcsync db upgrade`" in message and str(url).split("///")[1] in message
        assert versions_of(url) == ["0001"] and "ix_outbox_settled" not in indexes_of(url, "outbox")
    finally:
        store.close()


def test_prepare_refuses_an_unversioned_database_of_the_previous_release(url: str) -> None:
    make_legacy_state(url)
    store = StateStore(url)
    try:
        with pytest.raises(SchemaOutOfDate, match=r"at revision 0001; .* run `dvcsync db upgrade`"):
            store.prepare()
    finally:
        store.close()
    assert "alembic_version" not in tables_of(url)


def test_a_database_of_a_newer_dvcsync_is_refused_by_prepare_and_upgrade(url: str) -> None:
    StateStore(url).upgrade()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    store = StateStore(url)
    try:
        for attempt in (store.prepare, store.upgrade):
            with pytest.raises(SchemaOutOfDate, match=r"revision 0099, written by a newer dvcsync; upgrade"):
                attempt()
    finally:
        store.close()
    assert versions_of(url) == ["0099"]


def test_a_database_with_only_some_of_the_old_tables_is_not_adopted(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE outbox (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(SchemaOutOfDate, match="cannot be migrated"):
        StateStore(url).upgrade()
    assert "alembic_version" not in tables_of(url)  # the whole attempt was rolled back


def test_upgrade_downgrade_upgrade_and_every_step_both_ways(url: str) -> None:
    """Alembic's own practice: every downgrade undoes its upgrade exactly."""
    migrate(url, "upgrade", "head")
    migrate(url, "downgrade", "base")
    assert tables_of(url) == {"alembic_version"} and versions_of(url) == []
    revisions = [r.revision for r in reversed(list(script_directory().walk_revisions()))]
    assert revisions[:2] == ["0001", "0002"]
    for revision in revisions:  # the stairway: up one, down one, up one
        down = script_directory().get_revision(revision).down_revision or "base"
        migrate(url, "upgrade", revision)
        migrate(url, "downgrade", str(down))
        migrate(url, "upgrade", revision)
        assert versions_of(url) == [revision]
    assert tables_of(url) == STATE_TABLES | {"alembic_version"}
    assert model_diff(url) == []


def test_the_models_and_the_migrations_agree(url: str) -> None:
    StateStore(url).upgrade()
    diff = model_diff(url)
    assert diff == [], f"models.py and migrations/versions differ, write a revision: {diff}"
    assert {t.name for t in state_metadata().sorted_tables} == STATE_TABLES


def test_a_failed_migration_leaves_the_database_as_it_was(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole upgrade is one transaction on SQLite too: a failure half-way undoes the stamp
    and every earlier step, never a database stamped at a revision it does not have."""
    make_legacy_state(url)
    real = command.upgrade

    def failing(config: Any, revision: str) -> None:
        real(config, revision)
        raise RuntimeError("disk full")

    monkeypatch.setattr(command, "upgrade", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        StateStore(url).upgrade()
    assert "alembic_version" not in tables_of(url)
    assert "ix_outbox_settled" not in indexes_of(url, "outbox")
    assert legacy_rows(url)["outbox"]


ROUNDS = 3


def _prepare_each(urls: list[str], start: Any, results: Any) -> None:
    """One worker: for each round, wait for the other at the barrier, then prepare that round's
    fresh database. Started once for every round: a spawned interpreter takes seconds to import
    dvcsync, the race itself milliseconds."""
    for url in urls:
        start.wait(timeout=60)
        try:
            StateStore(url).prepare()
            results.put((url, "ok"))
        except Exception as exc:  # reported to the test, which fails with it
            results.put((url, repr(exc)))


def test_two_processes_preparing_one_fresh_database_at_once(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / f'state-{round_}.db'}" for round_ in range(ROUNDS)]
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_prepare_each, args=(urls, start, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=90) for _ in range(2 * ROUNDS)]
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(outcomes) == sorted((url, "ok") for url in urls for _ in range(2))
    for url in urls:
        assert tables_of(url) == STATE_TABLES | {"alembic_version"}
        assert versions_of(url) == [head_revision()]


# ---------------------------------------------------------------------- the commands

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> Path:
    for name in list(os.environ):
        if name.startswith("DVCSYNC_"):
            monkeypatch.delenv(name)
    from dvcsync.province.sample import generate

    onestop = tmp_path / "onestop.db"
    generate(onestop, 0, 1)
    path = tmp_path / "dvcsync.toml"
    path.write_text(
        f'[province]\nsource_url = "sqlite:///{onestop}"\nmappings = "{REPO / "mappings"}"\n'
        f'[state]\nurl = "{url}"\nlock_wait_s = 1\n',
        encoding="utf-8",
    )
    return path


def test_db_upgrade_reports_the_revisions(config: Path, url: str) -> None:
    make_legacy_state(url)
    before = legacy_rows(url)
    head = head_revision()
    result = runner.invoke(app, ["--config", str(config), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "state store" in result.output and f"upgraded from 0001 to {head}" in result.output
    again = runner.invoke(app, ["--config", str(config), "db", "upgrade"])
    assert again.exit_code == 0 and f"already at {head}" in again.output, again.output
    as_json = runner.invoke(app, ["--config", str(config), "db", "upgrade", "--json"])
    assert json.loads(as_json.output) == {"url": url, "from": head, "to": head, "upgraded": False}
    assert_adopted_with_data(url, before)


def test_db_upgrade_json_of_a_fresh_database(config: Path, url: str) -> None:
    result = runner.invoke(app, ["--config", str(config), "db", "upgrade", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"url": url, "from": None, "to": head_revision(), "upgraded": True}


def _dvcsync(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_sync_push_refuses_an_old_schema_until_db_upgrade(config: Path, url: str) -> None:
    migrate(url, "upgrade", "0001")
    # the mock in a thread of this process, over loopback: the refusal's exit code and message are
    # the real process's (`python -m dvcsync.cli`), the upgrade and the push after it in process
    with run_mock() as mock:
        with config.open("a", encoding="utf-8") as out:
            out.write(f'[portal]\nadapter_url = "{mock.adapter_url}"\n')
        refused = _dvcsync(config, "sync", "push")
        assert refused.returncode == 2, refused.stderr
        assert "is at revision 0001" in refused.stderr and "run `dvcsync db upgrade`" in refused.stderr
        assert "Traceback" not in refused.stderr + refused.stdout
        assert versions_of(url) == ["0001"]
        upgraded = runner.invoke(app, ["--config", str(config), "db", "upgrade"])
        assert upgraded.exit_code == 0, upgraded.output
        assert f"from 0001 to {head_revision()}" in upgraded.output
        pushed = runner.invoke(app, ["--config", str(config), "sync", "push", "--json"])
        assert pushed.exit_code == 0, (pushed.output, pushed.exception)


def test_run_refuses_an_old_schema_before_it_serves_or_schedules(config: Path, url: str) -> None:
    make_legacy_state(url)
    refused = _dvcsync(config, "run")
    assert refused.returncode == 2, refused.stderr
    assert "is at revision 0001" in refused.stderr and "run `dvcsync db upgrade`" in refused.stderr
    assert "Traceback" not in refused.stderr and "dvcsync running" not in refused.stderr
    assert "alembic_version" not in tables_of(url)
