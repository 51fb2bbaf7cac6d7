"""The province's system and the adapter's state on PostgreSQL: the source reads any SQLAlchemy
URL, the state store runs on a server database, and the forked enqueue producer works with both."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from dvcsync.config import Settings
from dvcsync.demo import seed_portal_side
from dvcsync.mapping import load_mappings
from dvcsync.province.sample.schema import DDL
from dvcsync.sync import _producer
from dvcsync.sync.cycles import run_push
from dvcsync.sync.push import PushJob
from mock_portal.testing import RunningMock

from ..postgres import create_database, postgres_server
from .conftest import REPO
from .test_push import _assert_portal_equals, _expected, _stored


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as server:
        yield server


def _copy_to_postgres(onestop: Path, url: str) -> None:
    """The sample one-stop database, tables and rows, on PostgreSQL. PostgreSQL keeps no broken
    UTF-8 in text, so the sample's few broken values arrive with U+FFFD in their place."""
    tables = re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", DDL)  # parents before children
    source = sqlite3.connect(onestop)
    source.text_factory = lambda raw: raw.decode("utf-8", "replace")
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in re.sub(r"--[^\n]*", "", DDL).split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
        for table in tables:
            cursor = source.execute(f"SELECT * FROM {table}")
            columns = [c[0] for c in cursor.description]
            rows = cursor.fetchall()
            if rows:
                conn.exec_driver_sql(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
                    rows,
                )
    source.close()
    engine.dispose()


def test_push_from_a_postgresql_province_with_its_state_on_postgresql(
    mock: RunningMock, onestop: Path, postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    forks: list[int] = []
    original = _producer.EnqueueProducer.__init__

    def counted(self: _producer.EnqueueProducer, job: PushJob, until: str) -> None:
        original(self, job, until)
        forks.append(1)

    monkeypatch.setattr(_producer.EnqueueProducer, "__init__", counted)
    source = create_database(postgres, "onestop")
    _copy_to_postgres(onestop, source)
    state = create_database(postgres, "dvcsync_state")
    settings = Settings.load(
        None,
        province={"source_url": source, "mappings": str(REPO / "mappings")},
        portal={"adapter_url": mock.adapter_url, "timeout": 5.0, "batch_size": 100, "rate_limit": 1000},
        state={"url": state},
        push={"page_size": 150},
    )
    mset = load_mappings(settings.province.mappings)
    portal_side = seed_portal_side(mock.url, source, mset)
    expected = _expected(source)
    assert len(expected) > 1500 and portal_side > 200

    first = asyncio.run(run_push(settings, mset))
    assert forks == [1]  # the producer ran against the server databases
    assert first.enqueue.records == 2000 and first.dead == 0
    assert (first.dossiers_pushed, first.statuses_reported) == (len(expected), portal_side)
    _assert_portal_equals(mock, expected)

    quiet = asyncio.run(run_push(settings, mset))
    assert quiet.calls == 0

    # three dossiers move on in the province: exactly those and their new steps go out
    engine = create_engine(source)
    with engine.begin() as conn:
        moved = conn.execute(
            text(
                "SELECT id, so_ho_so FROM ho_so WHERE trang_thai = 'processing' AND ma_ho_so_qg IS NULL"
                " ORDER BY id LIMIT 3"
            )
        ).fetchall()
        for dossier_id, _ in moved:
            conn.execute(
                text(
                    "INSERT INTO qua_trinh_xu_ly (id, ho_so_id, thu_tu, can_bo, chuc_danh, phong_ban,"
                    " noi_dung, trang_thai, thoi_diem) SELECT MAX(id) + 1, :d,"
                    " (SELECT MAX(thu_tu) + 1 FROM qua_trinh_xu_ly WHERE ho_so_id = :d), 'Đỗ Thị Mai',"
                    " 'Chuyên viên', 'Phòng Hộ tịch', 'Đã xử lý xong', 'releasing', '2026-11-20T10:00:00'"
                    " FROM qua_trinh_xu_ly"
                ),
                {"d": dossier_id},
            )
            conn.execute(
                text(
                    "UPDATE ho_so SET trang_thai = 'releasing', ngay_ket_thuc = '2026-11-20T10:00:00',"
                    " updated_at = '2026-11-20T10:00:01' WHERE id = :d"
                ),
                {"d": dossier_id},
            )
    engine.dispose()
    third = asyncio.run(run_push(settings, mset))
    assert (third.dossiers_pushed, third.steps_pushed, third.dead) == (3, 3, 0)
    stored = _stored(mock)
    assert all(stored[code]["TrangThaiHoSo"] == "9" for _, code in moved)


def test_replicas_share_a_postgresql_state_and_an_upgrade_excludes_them(postgres: str) -> None:
    """Several processes hold the state's lock shared; `db upgrade` (exclusive) waits for none."""
    from dvcsync.sync.state_lock import StateBusy, acquire

    state = create_database(postgres, "dvcsync_lock")
    first = acquire(state)
    second = acquire(state)  # a second replica beside the first
    assert first is not None and second is not None
    with pytest.raises(StateBusy, match="advisory lock, shared by replicas"):
        acquire(state, exclusive=True)
    first.close()
    second.close()
    upgrading = acquire(state, exclusive=True)  # released with their sessions
    assert upgrading is not None
    with pytest.raises(StateBusy, match="upgrading"):
        acquire(state)
    upgrading.close()


def test_a_job_runs_on_one_replica_at_a_time(postgres: str) -> None:
    """`job_lock`: the second holder is told to skip; a tenant's schema is a lock space of its own;
    the lock goes with the session, and the runs of a replica no longer connected are interrupted."""
    from dvcsync.state import StateStore
    from dvcsync.sync.state_lock import job_lock

    state = create_database(postgres, "dvcsync_jobs")
    other_schema = state + "?options=-csearch_path%3Dtenant_b"
    store = StateStore(state)
    store.prepare()
    run_id = store.start_run("pull")
    with store.begin() as conn:  # a run of a replica killed since: no session of its owner left
        conn.execute(text("UPDATE run SET owner = 'gone-host:4242:0badc0de' WHERE id = :i"), {"i": run_id})
    with job_lock(state, "pull") as first:
        assert first
        with job_lock(state, "pull") as second, job_lock(other_schema, "pull") as elsewhere:
            assert not second and elsewhere
        with job_lock(state, "payments") as another_job:
            assert another_job
    with job_lock(state, "pull") as again:
        assert again
    assert [r["status"] for r in store.runs() if r["id"] == run_id] == ["interrupted"]
    live = store.start_run("pull")  # a run whose owner is connected is left alone
    with job_lock(state, "pull") as taken:
        assert taken
    assert [r["status"] for r in store.runs() if r["id"] == live] == ["running"]
    store.close()


def test_db_upgrade_waits_for_the_replicas_and_a_replica_beside_a_one_off_does_not(
    postgres: str, tmp_path: Path
) -> None:
    """`dvcsync db upgrade` at the current revision takes no lock and returns at once beside a
    running replica (a rolling restart runs it before every start); a migration takes the state's
    lock exclusive: with a replica holding it shared it exits 3 naming it (its replica id and
    since when); `db prune` (shared) runs beside the same replica."""
    import os
    import subprocess
    import sys

    from dvcsync.sync.state_lock import acquire

    state = create_database(postgres, "dvcsync_upgrade_lock")
    env = {**os.environ, "DVCSYNC_STATE__URL": state, "DVCSYNC_STATE__LOCK_WAIT_S": "0"}
    env.pop("DVCSYNC_CONFIG", None)

    def dvcsync(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dvcsync.cli", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    from alembic import command

    from dvcsync.state.migrations import alembic_config
    from dvcsync.state.replica import replica_id

    assert dvcsync("db", "upgrade").returncode == 0
    replica = acquire(state)
    try:
        at_head = dvcsync("db", "upgrade")
        assert at_head.returncode == 0 and "already at" in at_head.stdout, at_head.stderr
        command.downgrade(alembic_config(url=state), "0005")  # this release's migration to run
        refused = dvcsync("db", "upgrade")
        assert refused.returncode == 3, refused.stderr
        assert "shared by replicas" in refused.stderr and replica_id() in refused.stderr
        command.upgrade(alembic_config(url=state), "head")
        beside = dvcsync("db", "prune")
        assert beside.returncode == 0, beside.stderr
    finally:
        assert replica is not None
        replica.close()
