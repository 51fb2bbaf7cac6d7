"""Issue #18 item 4, end to end: a dossier committed late, with an ``updated_at`` a minute before
the push cursor, is sent on the next cycle, exactly once, whatever form the source's timestamps
take (SQLite text with ``T`` or space, fraction, offset, mixed; PostgreSQL ``timestamp`` and
``timestamptz``). Before, a space-form source against the ``T``-form look-back lost it.

The cycles run with a fixed clock (after the sample's last change), never today's date."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import create_engine, text

from dvcsync.config import Settings
from dvcsync.demo import seed_portal_side
from dvcsync.mapping import MappingSet, load_mappings
from dvcsync.province.instants import parse_instant
from dvcsync.province.sample import generate
from dvcsync.state import StateStore
from dvcsync.sync.push import CURSOR, PushJob, PushSummary
from dvcsync.sync.runtime import open_runtime
from mock_portal.testing import RunningMock

from ..postgres import create_database, postgres_server
from .conftest import REPO
from .test_push_postgres import _copy_to_postgres

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CLOCK = datetime(2026, 11, 30, 12, 0, tzinfo=VN).timestamp()  # after the sample's last change
Render = Callable[[datetime, int], str]

FORMS: dict[str, Render] = {
    "T": lambda m, _i: m.astimezone(VN).replace(tzinfo=None).isoformat(timespec="seconds"),
    "space": lambda m, _i: m.astimezone(VN).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds"),
    "space-millis": lambda m, _i: (
        m.astimezone(VN).replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")
    ),
    "offset": lambda m, _i: m.astimezone(VN).isoformat(timespec="seconds"),
    "zulu": lambda m, _i: m.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z",
    "mixed-T-and-space": lambda m, i: (
        m.astimezone(VN).replace(tzinfo=None).isoformat(sep="T" if i % 2 else " ")
    ),
}


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lookback") / "onestop.db"
    generate(path, 150, 11)
    return path


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as server:
        yield server


def _settings(mock: RunningMock, source_url: str, state: str) -> Settings:
    return Settings.load(
        None,
        province={"source_url": source_url, "mappings": str(REPO / "mappings")},
        portal={"adapter_url": mock.adapter_url, "timeout": 5.0, "rate_limit": 1000},
        state={"url": state},
        push={"page_size": 40, "lookback_s": 300},
    )


async def _cycle(settings: Settings, mappings: MappingSet, clock: float) -> PushSummary:
    async with open_runtime(settings, mappings) as rt:
        return await PushJob(
            settings, mappings, rt.store, rt.client, rt.source, clock=lambda: clock
        ).run_cycle()


def _rewrite_sqlite(path: Path, render: Render) -> None:
    """Every dossier's ``updated_at`` written in the form under test (same instants)."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT id, updated_at FROM ho_so").fetchall()
        conn.executemany(
            "UPDATE ho_so SET updated_at = ? WHERE id = ?",
            [(render(parse_instant(value, VN), row_id), row_id) for row_id, value in rows],
        )


def _late_commit(source_url: str, cursor: datetime, value: object) -> str:
    """A dossier pushed before changes now, in a transaction stamped a minute before the cursor."""
    engine = create_engine(source_url)
    with engine.begin() as conn:
        row = conn.execute(
            text(
                "SELECT id, so_ho_so FROM ho_so WHERE ma_ho_so_qg IS NULL AND trang_thai = 'processing'"
                " ORDER BY id LIMIT 1"
            )
        ).one()
        conn.execute(
            text("UPDATE ho_so SET trich_yeu = trich_yeu || ' (bổ sung)', updated_at = :u WHERE id = :i"),
            {"u": value, "i": row.id},
        )
    engine.dispose()
    return str(row.so_ho_so)


def _portal(mock: RunningMock, code: str) -> dict[str, object]:
    return dict(httpx.get(f"{mock.url}/_admin/dossiers/{code}", timeout=30).json())


def _cursor(state: str) -> datetime:
    store = StateStore(state)
    try:
        watermark, _ = store.cursor(CURSOR)
    finally:
        store.close()
    assert watermark.endswith("+07:00"), watermark  # the canonical form: one instant, whatever the zone
    return parse_instant(watermark, VN)


def _late_commit_sent_once(
    mock: RunningMock,
    source_url: str,
    state: str,
    stamp: Callable[[datetime], object],
    legacy_cursor: Callable[[datetime], str] | None = None,
) -> None:
    """``legacy_cursor``: the cursor rewritten after the first cycle as an older dvcsync stored
    it (the source's own text), which must be read as the same instant."""
    settings = _settings(mock, source_url, state)
    mappings = load_mappings(REPO / "mappings")
    seed_portal_side(mock.url, source_url, mappings)  # the dossiers submitted there exist there
    first = asyncio.run(_cycle(settings, mappings, CLOCK))
    assert first.dossiers_pushed > 50 and first.dead == 0

    cursor = _cursor(state)
    if legacy_cursor is not None:
        store = StateStore(state)
        _, last_key = store.cursor(CURSOR)
        store.set_cursor(CURSOR, legacy_cursor(cursor), last_key)
        store.close()
    code = _late_commit(source_url, cursor, stamp(cursor - timedelta(seconds=60)))
    before = _portal(mock, code)

    second = asyncio.run(_cycle(settings, mappings, CLOCK + 60))
    assert (second.dossiers_pushed, second.dead) == (1, 0)
    after = _portal(mock, code)
    assert after["writes"] == int(str(before["writes"])) + 1
    assert str(after["TrichYeuHoSo"]).endswith("(bổ sung)")
    assert _cursor(state) == cursor  # the look-back never moves the cursor back

    third = asyncio.run(_cycle(settings, mappings, CLOCK + 120))  # the window re-read: nothing new
    assert (third.dossiers_pushed, third.calls) == (0, 0)
    assert _portal(mock, code)["writes"] == after["writes"]


@pytest.mark.parametrize("form", list(FORMS))
def test_sqlite_late_commit_sent_once(
    mock: RunningMock, small_sample: Path, tmp_path: Path, form: str
) -> None:
    onestop = tmp_path / "onestop.db"
    shutil.copy(small_sample, onestop)
    render = FORMS[form]
    _rewrite_sqlite(onestop, render)
    _late_commit_sent_once(
        mock, f"sqlite:///{onestop}", f"sqlite:///{tmp_path / 'state.db'}", lambda m: render(m, 2)
    )


@pytest.mark.parametrize("column_type", ["timestamp", "timestamptz"])
def test_postgresql_late_commit_sent_once(
    mock: RunningMock, small_sample: Path, postgres: str, tmp_path: Path, column_type: str
) -> None:
    source = create_database(postgres, f"lookback_{column_type}")
    _copy_to_postgres(small_sample, source)
    engine = create_engine(source)
    with engine.begin() as conn:  # the sample's naive local text becomes a real date-time column
        zone = " AT TIME ZONE 'Asia/Ho_Chi_Minh'" if column_type == "timestamptz" else ""
        using = f" USING updated_at::timestamp{zone}"
        conn.execute(text(f"ALTER TABLE ho_so ALTER COLUMN updated_at TYPE {column_type}{using}"))
    engine.dispose()

    def stamp(moment: datetime) -> object:
        return moment if column_type == "timestamptz" else moment.astimezone(VN).replace(tzinfo=None)

    _late_commit_sent_once(mock, source, f"sqlite:///{tmp_path / 'state.db'}", stamp)


@pytest.mark.parametrize("form", ["T", "space"])
def test_a_cursor_stored_by_an_older_version_is_read_as_its_instant(
    mock: RunningMock, small_sample: Path, tmp_path: Path, form: str
) -> None:
    onestop = tmp_path / "onestop.db"
    shutil.copy(small_sample, onestop)
    render = FORMS[form]
    _rewrite_sqlite(onestop, render)
    _late_commit_sent_once(
        mock,
        f"sqlite:///{onestop}",
        f"sqlite:///{tmp_path / 'state.db'}",
        lambda m: render(m, 2),
        legacy_cursor=lambda m: render(m, 2),
    )
