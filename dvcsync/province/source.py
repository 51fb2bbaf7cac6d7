"""Read provincial records (a row plus its child rows) from any SQLAlchemy URL, in pages.

Tables and columns come from the mapping spec's ``source`` section, so the reader knows nothing
of the sample schema. Children are loaded per page with one ``IN`` query per child table: the cost
is a few queries per page, not per record.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, CursorResult

from dvcsync.errors import TerminalError
from dvcsync.province.instants import (
    DEFAULT_TIMEZONE,
    InstantError,
    column_value,
    day_text,
    naive_text,
    parse_instant,
)
from dvcsync.source_spec import SourceSpec

Record = dict[str, Any]
VN_ZONE = ZoneInfo(DEFAULT_TIMEZONE)
_SEPARATORS = ("T", " ")


class SourceUnavailable(TerminalError, RuntimeError):
    """The province database cannot be opened; the message says which and why."""


class SourceDataError(TerminalError, ValueError):
    """A source value the reader cannot place (an ``updated_at`` that is no date-time); the
    message names the table, the row and the value."""


@dataclass
class ChangedPage:
    """Changed records, and the ``(updated_at instant, id)`` of the last: the cursor after them."""

    records: list[Record]
    last: tuple[datetime, Any]


@dataclass(frozen=True)
class _Window:
    """``(after, until]`` in ``(instant, id)`` terms; ``after`` None: from the first row."""

    after: tuple[datetime, Any] | None
    until: datetime
    zone: tzinfo

    def holds(self, position: tuple[datetime, Any]) -> bool:
        return (self.after is None or position > self.after) and position[0] <= self.until

    def day_text(self, moment: datetime, days: int) -> str:
        return day_text(moment, self.zone, days)


class _Names:
    """The quoted table, key and change column."""

    def __init__(self, conn: Connection, table: str, key: str, column: str) -> None:
        self.table, self.key, self.upd = _quote(conn, table), _quote(conn, key), _quote(conn, column)


def _text_separator(conn: Connection, q: _Names, window: _Window) -> str | None:
    """How the text values of the window (a range a few days wider) are written: ``"T"`` or
    ``" "`` when all are naive with that separator (text order is time order), ``"mixed"``
    otherwise, None when there are none. One pass over the index range of the window."""
    clauses, bind = [f"{q.upd} < :hi"], {"hi": window.day_text(window.until, 3)}
    if window.after is not None:
        clauses.append(f"{q.upd} >= :lo")
        bind["lo"] = window.day_text(window.after[0], -2)
    time_part = f"SUBSTR({q.upd}, 11)"
    zoned = " OR ".join(
        [
            f"{q.upd} LIKE :zulu",
            f"{q.upd} LIKE :zulu_lower",
            f"{time_part} LIKE :plus",
            f"{time_part} LIKE :minus",
        ]
    )
    bind.update(zulu="%Z", zulu_lower="%z", plus="%+%", minus="%-%")
    row = conn.execute(
        text(
            f"SELECT COUNT({q.upd}), MIN(SUBSTR({q.upd}, 11, 1)), MAX(SUBSTR({q.upd}, 11, 1)),"
            f" SUM(CASE WHEN {zoned} THEN 1 ELSE 0 END) FROM {q.table} WHERE {' AND '.join(clauses)}"
        ),
        bind,
    ).one()
    count, low, high, zoned_count = row
    if not count:
        return None
    if low == high and low in _SEPARATORS and not zoned_count:
        return str(low)
    return "mixed"


def make_engine(url: str) -> Engine:
    """An engine for a province database. SQLite text that is not valid UTF-8 is read with
    surrogate escapes instead of failing the whole page, so one broken row is quarantined
    (the mapping engine names it) while the others sync. A SQLite file that does not exist is
    an error here (connecting would quietly create an empty one). Statement parameters are
    hidden from errors: they are citizens' data, and errors end up in logs and the state."""
    engine = create_engine(url, future=True, hide_parameters=True)
    database = engine.url.database
    if (
        engine.dialect.name == "sqlite"
        and database
        and database != ":memory:"
        and not Path(database).is_file()
    ):
        engine.dispose()
        raise SourceUnavailable(f"the province database {database} does not exist (province.source_url)")
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _lenient_text(dbapi_connection: Any, _record: Any) -> None:
            if isinstance(dbapi_connection, sqlite3.Connection):
                dbapi_connection.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")

    return engine


def _dicts(result: CursorResult[Any]) -> list[Record]:
    """Rows as plain dicts: zipping the column names is several times cheaper than ``row._mapping``."""
    names = list(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result]


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


class SqlSource:
    """Pages of records of one source spec."""

    def __init__(self, engine: Engine, spec: SourceSpec) -> None:
        self.engine = engine
        self.spec = spec

    def count(self) -> int:
        with self.engine.connect() as conn:
            table = _quote(conn, self.spec.table)
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())

    def iter_pages(
        self, page_size: int = 500, where: str = "", params: dict[str, Any] | None = None
    ) -> Generator[list[Record], None, None]:
        """All records in key order, ``page_size`` at a time (keyset paging: no OFFSET scans)."""
        last: Any = None
        with self.engine.connect() as conn:
            table, key = _quote(conn, self.spec.table), _quote(conn, self.spec.key)
            while True:
                clauses = [f"({where})"] if where else []
                bind = dict(params or {})
                if last is not None:
                    clauses.append(f"{key} > :_last")
                    bind["_last"] = last
                sql = f"SELECT * FROM {table}"
                if clauses:
                    sql += " WHERE " + " AND ".join(clauses)
                sql += f" ORDER BY {key} LIMIT {int(page_size)}"
                rows = _dicts(conn.execute(text(sql), bind))
                if not rows:
                    return
                self._attach_children(conn, rows)
                yield rows
                last = rows[-1][self.spec.key]

    def iter_changed(
        self,
        watermark: datetime | None,
        last_key: int,
        *,
        lookback: datetime | None = None,
        until: datetime,
        zone: tzinfo = VN_ZONE,
        page_size: int = 500,
    ) -> Generator[ChangedPage, None, None]:
        """Rows changed after the cursor ``(watermark, last_key)`` (None: from the first row), in
        the order of ``(updated_at instant, id)``, up to ``until`` included (the cycle's start:
        rows written during the cycle wait for the next one). Timestamps are compared as instants
        whatever the column's type or text form (see ``dvcsync.province.instants``); naive ones
        are in ``zone``.

        ``lookback`` (an earlier instant) re-reads a window before the cursor, for rows whose
        ``updated_at`` was set before a slow transaction committed; re-read rows cost a hash
        comparison, not a push. Every page but the last holds ``page_size`` records.
        """
        column = self.spec.updated_at
        if column is None:
            raise ValueError(f"source table {self.spec.table!r} declares no updated_at column")
        after: tuple[datetime, Any] | None = None
        if watermark is not None:
            after = (watermark, last_key)
        if lookback is not None and (watermark is None or lookback < watermark):
            after = (lookback, 0)
        with self.engine.connect() as conn:
            q = _Names(conn, self.spec.table, self.spec.key, column)
            sample = conn.execute(
                text(f"SELECT {q.upd} FROM {q.table} WHERE {q.upd} IS NOT NULL LIMIT 1")
            ).first()
            if sample is None:
                return
            window = _Window(after, until, zone)
            rows: Iterator[tuple[tuple[datetime, Any], Record]]
            if isinstance(sample[0], datetime):
                aware = sample[0].tzinfo is not None
                rows = self._keyset(
                    conn,
                    q,
                    window,
                    (column_value(after[0], zone, aware=aware), after[1]) if after else None,
                    ("<=", column_value(until, zone, aware=aware)),
                    page_size,
                )
            elif isinstance(sample[0], str):
                separator = _text_separator(conn, q, window)
                if separator is None:
                    return  # nothing in the window
                if separator in _SEPARATORS:
                    top = until.replace(microsecond=0) + timedelta(seconds=1)
                    rows = self._keyset(
                        conn,
                        q,
                        window,
                        (naive_text(after[0], zone, separator), after[1]) if after else None,
                        ("<", naive_text(top, zone, separator)),
                        page_size,
                    )
                else:
                    rows = self._listed(conn, q, window, page_size)
            else:
                raise SourceDataError(
                    f"{self.spec.table}.{column} holds {type(sample[0]).__name__} values: expected"
                    " date-times (a timestamp or datetime column, or ISO 8601 text)"
                )
            page: list[Record] = []
            position: tuple[datetime, Any] | None = None
            for position, record in rows:
                page.append(record)
                if len(page) == page_size:
                    self._attach_children(conn, page)
                    yield ChangedPage(page, position)
                    page = []
            if page and position is not None:
                self._attach_children(conn, page)
                yield ChangedPage(page, position)

    def _keyset(
        self,
        conn: Connection,
        q: _Names,
        window: _Window,
        first: tuple[Any, Any] | None,
        top: tuple[str, Any],
        page_size: int,
    ) -> Iterator[tuple[tuple[datetime, Any], Record]]:
        """Keyset pages over ``(updated_at, id)`` between bounds in the column's own terms (a
        superset of the window), filtered to the window exactly. The keyset is written
        ``upd >= w AND (upd > w OR id > k)``: one range on the ``(updated_at, id)`` index, read in
        its order (``upd > w OR (upd = w AND id > k)`` made SQLite merge two ranges and sort)."""
        column, key = self.spec.updated_at, self.spec.key
        assert column is not None
        cursor = first
        while True:
            clauses, bind = [f"{q.upd} {top[0]} :top"], {"top": top[1]}
            if cursor is not None:
                clauses.append(f"{q.upd} >= :w AND ({q.upd} > :w OR {q.key} > :k)")
                bind.update(w=cursor[0], k=cursor[1])
            sql = (
                f"SELECT * FROM {q.table} WHERE {' AND '.join(clauses)}"
                f" ORDER BY {q.upd}, {q.key} LIMIT {int(page_size)}"
            )
            rows = _dicts(conn.execute(text(sql), bind))
            for row in rows:
                position = (self._instant(row[column], row[key], window.zone), row[key])
                if window.holds(position):
                    yield position, row
            if len(rows) < page_size:
                return
            cursor = (rows[-1][column], rows[-1][key])

    def _listed(
        self, conn: Connection, q: _Names, window: _Window, page_size: int
    ) -> Iterator[tuple[tuple[datetime, Any], Record]]:
        """A text column of mixed forms: the window's ``(updated_at, id)`` listed through the index
        (a text range wide enough for any form), sorted by instant, rows read by id."""
        clauses, bind = [f"{q.upd} < :hi"], {"hi": window.day_text(window.until, 3)}
        if window.after is not None:
            clauses.append(f"{q.upd} >= :lo")
            bind["lo"] = window.day_text(window.after[0], -2)
        # a server-side cursor: the driver holds no second copy of the window while it is parsed
        listing = conn.execute(
            text(f"SELECT {q.upd}, {q.key} FROM {q.table} WHERE {' AND '.join(clauses)}"),
            bind,
            execution_options={"stream_results": True, "yield_per": 5000},
        )
        positions = sorted(
            position
            for value, row_key in listing
            if window.holds(position := (self._instant(value, row_key, window.zone), row_key))
        )
        for start in range(0, len(positions), page_size):
            chunk = positions[start : start + page_size]
            placeholders = ", ".join(f":i{n}" for n in range(len(chunk)))
            sql = f"SELECT * FROM {q.table} WHERE {q.key} IN ({placeholders})"
            found = {
                row[self.spec.key]: row
                for row in _dicts(conn.execute(text(sql), {f"i{n}": p[1] for n, p in enumerate(chunk)}))
            }
            for position in chunk:
                if position[1] in found:  # deleted since it was listed: gone
                    yield position, found[position[1]]

    def _instant(self, value: Any, row_key: Any, tz: tzinfo) -> datetime:
        try:
            return parse_instant(value, tz)
        except InstantError as exc:
            raise SourceDataError(
                f"{self.spec.table} {self.spec.key}={row_key}: {self.spec.updated_at} {exc}"
            ) from None

    def get(self, record_key: str) -> Record | None:
        """One record by its record key (e.g. ``so_ho_so``), with its children."""
        with self.engine.connect() as conn:
            table, column = _quote(conn, self.spec.table), _quote(conn, self.spec.record_key)
            row = conn.execute(text(f"SELECT * FROM {table} WHERE {column} = :k"), {"k": record_key}).first()
            if row is None:
                return None
            records = [dict(row._mapping)]
            self._attach_children(conn, records)
            return records[0]

    def _attach_children(self, conn: Connection, records: Sequence[Record]) -> None:
        ids = [record[self.spec.key] for record in records]
        by_id = {record[self.spec.key]: record for record in records}
        for name, child in self.spec.children.items():
            for record in records:
                record[name] = []
            table, fk = _quote(conn, child.table), _quote(conn, child.foreign_key)
            order = ", ".join([fk, *(_quote(conn, col) for col in child.order_by)])
            placeholders = ", ".join(f":i{n}" for n in range(len(ids)))
            sql = f"SELECT * FROM {table} WHERE {fk} IN ({placeholders}) ORDER BY {order}"
            for item in _dicts(conn.execute(text(sql), {f"i{n}": value for n, value in enumerate(ids)})):
                by_id[item[child.foreign_key]][name].append(item)
