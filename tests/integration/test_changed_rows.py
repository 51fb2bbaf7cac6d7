"""``SqlSource.iter_changed`` over real databases: every timestamp form of issue #18 (SQLite text
with ``T`` or space, fractions, offsets, ``Z``, mixed; PostgreSQL ``timestamp``, ``timestamptz``
and text) is read in instant order, resumes from any page's cursor without loss or repeat, and
re-reads a late commit inside the look-back."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine, event, text

from dvcsync.province.instants import parse_instant
from dvcsync.province.source import SourceDataError, SqlSource, make_engine
from dvcsync.source_spec import SourceSpec

from ..postgres import create_database, postgres_server

VN = ZoneInfo("Asia/Ho_Chi_Minh")
BASE = datetime(2026, 12, 7, 21, 0, 0, tzinfo=VN)
SPEC = SourceSpec(table="items", key="id", record_key="id", updated_at="updated_at")
Render = Callable[[datetime, int], Any]


def _naive(sep: str, spec: str = "seconds") -> Render:
    return lambda m, _i: m.astimezone(VN).replace(tzinfo=None).isoformat(sep=sep, timespec=spec)


def _varying(m: datetime, i: int) -> str:
    """Python's ``str(datetime)``: a fraction only when there is one, so widths vary."""
    return str(m.astimezone(VN).replace(tzinfo=None))


def _mixed(m: datetime, i: int) -> str:
    return _naive("T" if i % 2 else " ")(m, i)


def _zoned_mix(m: datetime, i: int) -> str:
    return [
        lambda: m.astimezone(VN).isoformat(),
        lambda: m.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z",
        lambda: m.astimezone(VN).replace(tzinfo=None).isoformat(sep=" "),
        lambda: m.astimezone(ZoneInfo("America/Sao_Paulo")).isoformat(),
    ][i % 4]()


TEXT_FORMS: dict[str, Render] = {
    "T": _naive("T"),
    "space": _naive(" "),
    "T-millis": _naive("T", "milliseconds"),
    "space-varying-fraction": _varying,
    "offset": lambda m, _i: m.astimezone(VN).isoformat(),
    "zulu": lambda m, _i: m.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z",
    "mixed-T-and-space": _mixed,
    "mixed-zones": _zoned_mix,
}


def _instants(count: int) -> list[datetime]:
    """Row times, with ties (two rows a moment) and fractions, in no id order."""
    moments = [
        BASE + timedelta(seconds=37 * (i // 2), microseconds=250_000 * (i % 3 == 0)) for i in range(count)
    ]
    return list(reversed(moments))  # ids run against time: order must come from updated_at


class Source:
    def __init__(self, engine: Engine, column_type: str, render: Render) -> None:
        self.engine, self.render = engine, render
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS items"))
            conn.execute(
                text(f"CREATE TABLE items (id INTEGER PRIMARY KEY, updated_at {column_type}, note TEXT)")
            )
            conn.execute(text("CREATE INDEX ix_items_updated ON items (updated_at, id)"))
        self.times: dict[int, datetime] = {}
        self.source = SqlSource(engine, SPEC)

    def add(self, moment: datetime, row_id: int | None = None) -> int:
        row_id = row_id or max(self.times, default=0) + 1
        with self.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO items (id, updated_at, note) VALUES (:i, :u, 'x')"),
                {"i": row_id, "u": self.render(moment, row_id)},
            )
            # the instant the column kept (a form without fraction, or timestamp(0), cuts it)
            kept = conn.execute(
                text("SELECT updated_at FROM items WHERE id = :i"), {"i": row_id}
            ).scalar_one()
        self.times[row_id] = parse_instant(kept, VN)
        assert abs(self.times[row_id] - moment) < timedelta(seconds=1)
        return row_id

    def changed(
        self,
        after: tuple[datetime, int] | None,
        *,
        lookback: datetime | None = None,
        until: datetime,
        page_size: int = 4,
    ) -> list[tuple[list[int], tuple[datetime, Any]]]:
        pages = self.source.iter_changed(
            after[0] if after else None,
            after[1] if after else 0,
            lookback=lookback,
            until=until,
            zone=VN,
            page_size=page_size,
        )
        return [([r["id"] for r in page.records], page.last) for page in pages]

    def in_order(self, ids: list[int]) -> list[int]:
        return sorted(ids, key=lambda i: (self.times[i], i))


def _sqlite(tmp_path: Path) -> Engine:
    path = tmp_path / "source.db"
    create_engine(f"sqlite:///{path}").dispose()
    path.touch()
    return make_engine(f"sqlite:///{path}")


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as server:
        yield server


def _local(m: datetime, _i: int) -> datetime:
    return m.astimezone(VN).replace(tzinfo=None)  # what a MariaDB DATETIME or timestamp holds


CASES = [pytest.param(("sqlite", "TEXT", render), id=f"sqlite-{name}") for name, render in TEXT_FORMS.items()]
CASES += [
    pytest.param(("sqlite", "DATETIME", TEXT_FORMS["space"]), id="sqlite-DATETIME-declared"),
    pytest.param(("postgresql", "timestamp", _local), id="pg-timestamp"),
    pytest.param(("postgresql", "timestamp(0)", _local), id="pg-timestamp0"),
    pytest.param(("postgresql", "timestamptz", lambda m, _i: m.astimezone(UTC)), id="pg-timestamptz"),
    pytest.param(("postgresql", "text", TEXT_FORMS["space"]), id="pg-text-space"),
    pytest.param(("postgresql", "varchar(40)", TEXT_FORMS["mixed-T-and-space"]), id="pg-varchar-mixed"),
    pytest.param(("postgresql", "text", TEXT_FORMS["offset"]), id="pg-text-offset"),
]


@pytest.fixture(params=CASES)
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Source]:
    dialect, column_type, render = request.param
    if dialect == "sqlite":
        engine = _sqlite(tmp_path)
    else:
        server = request.getfixturevalue("postgres")
        engine = make_engine(create_database(server, "changes"))
    made = Source(engine, column_type, render)
    yield made
    engine.dispose()


def _fill(source: Source, count: int) -> None:
    for n, moment in enumerate(_instants(count), start=1):
        source.add(moment, n)


def test_everything_in_instant_order_in_full_pages_and_resumable_from_any_page(source: Source) -> None:
    _fill(source, 23)
    until = BASE + timedelta(days=1)
    pages = source.changed(None, until=until)
    ids = [i for page, _ in pages for i in page]
    assert ids == source.in_order(list(source.times))
    assert [len(page) for page, _ in pages] == [4, 4, 4, 4, 4, 3]
    for page, last in pages:
        assert last == (source.times[page[-1]], page[-1])
    # the producer resumes from a page's cursor: the rest, exactly
    for n, (_, last) in enumerate(pages):
        rest = [i for page, _ in source.changed(last, until=until, page_size=5) for i in page]
        assert rest == ids[4 * (n + 1) :]


def test_until_is_inclusive_and_later_rows_wait(source: Source) -> None:
    _fill(source, 12)
    ordered = source.in_order(list(source.times))
    cut = source.times[ordered[5]]
    taken = [i for page, _ in source.changed(None, until=cut) for i in page]
    assert taken == [i for i in ordered if source.times[i] <= cut]
    assert ordered[5] in taken and ordered[-1] not in taken


def test_a_late_commit_inside_the_look_back_is_read_and_one_behind_the_cursor_alone_is_not(
    source: Source,
) -> None:
    _fill(source, 10)
    until = BASE + timedelta(days=1)
    pages = source.changed(None, until=until, page_size=100)
    cursor = pages[-1][1]
    late = source.add(cursor[0] - timedelta(seconds=60))  # committed now, stamped a minute ago
    assert late not in [i for page, _ in source.changed(cursor, until=until) for i in page]
    look_back = cursor[0] - timedelta(seconds=300)
    again = [i for page, _ in source.changed(cursor, lookback=look_back, until=until) for i in page]
    assert late in again
    # outside the look-back: behind it, so left (the reconcile report finds it)
    old = source.add(cursor[0] - timedelta(seconds=900))
    window = source.changed(cursor, lookback=cursor[0] - timedelta(seconds=300), until=until)
    assert old not in [i for page, _ in window for i in page]


def test_an_empty_table_and_an_empty_window(source: Source) -> None:
    until = BASE + timedelta(days=1)
    assert source.changed(None, until=until) == []
    _fill(source, 3)
    assert source.changed(None, until=BASE - timedelta(days=30)) == []


def _raw(engine: Engine, column_type: str, values: list[Any]) -> Source:
    made = Source(engine, column_type, lambda m, i: None)
    with engine.begin() as conn:
        for n, value in enumerate(values, start=1):
            conn.execute(
                text("INSERT INTO items (id, updated_at, note) VALUES (:i, :u, 'x')"), {"i": n, "u": value}
            )
    return made


def test_a_text_value_that_is_no_date_time_names_table_row_and_value(tmp_path: Path) -> None:
    made = _raw(_sqlite(tmp_path), "TEXT", ["2026-12-07T21:00:00", "07/12/2026 21:00", "2026-12-07 21:00:05"])
    with pytest.raises(SourceDataError, match=r"items id=2: updated_at .*'07/12/2026 21:00'"):
        made.changed(None, until=BASE + timedelta(days=1))


def test_numbers_in_the_column_are_a_clear_error(tmp_path: Path) -> None:
    made = _raw(_sqlite(tmp_path), "INTEGER", [1765115999])
    with pytest.raises(SourceDataError, match=r"items\.updated_at holds int values"):
        made.changed(None, until=BASE + timedelta(days=1))


@pytest.mark.parametrize(("form", "listed"), [("T", False), ("space", False), ("mixed-T-and-space", True)])
def test_one_form_keeps_the_keyset_on_the_index_and_mixed_forms_are_listed(
    tmp_path: Path, form: str, listed: bool
) -> None:
    made = Source(_sqlite(tmp_path), "TEXT", TEXT_FORMS[form])
    _fill(made, 30)
    seen: list[tuple[str, Any]] = []

    @event.listens_for(made.engine, "before_cursor_execute")
    def _capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    cursor = (made.times[20], 20)
    pages = made.changed(cursor, lookback=cursor[0] - timedelta(seconds=300), until=BASE + timedelta(days=1))
    assert pages
    keyset = [(s, p) for s, p in seen if "ORDER BY updated_at, id" in s]
    listing = [s for s, _ in seen if s.startswith("SELECT updated_at, id FROM items")]
    assert bool(listing) == listed and bool(keyset) != listed
    for statement, parameters in keyset:
        where = statement.split(" WHERE ", 1)[1]
        assert not re.search(r"\w\(\s*updated_at", where), where  # no function of the column
        with made.engine.connect() as conn:
            plan = " ".join(
                str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
        assert "ix_items_updated" in plan and "TEMP B-TREE" not in plan, plan
