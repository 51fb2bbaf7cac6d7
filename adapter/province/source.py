"""Read provincial records (a row plus its child rows) from any SQLAlchemy URL, in pages.

Tables and columns come from the mapping spec's ``source`` section, so the reader knows nothing
of the sample schema. Children are loaded per page with one ``IN`` query per child table: the cost
is a few queries per page, not per record.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, CursorResult

from adapter.source_spec import SourceSpec

Record = dict[str, Any]


class SourceUnavailable(RuntimeError):
    """The province database cannot be opened; the message says which and why."""


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
        self, watermark: str, last_key: int, *, lookback: str = "", until: str, page_size: int = 500
    ) -> Generator[list[Record], None, None]:
        """Rows changed after the cursor ``(watermark, last_key)``, in ``(updated_at, id)`` order,
        up to ``until`` (the cycle's start: rows written during the cycle wait for the next one).

        ``lookback`` (an earlier watermark) re-reads a window before the cursor, for rows whose
        ``updated_at`` was set before a slow transaction committed; re-read rows cost a hash
        comparison, not a push.
        """
        column = self.spec.updated_at
        if column is None:
            raise ValueError(f"source table {self.spec.table!r} declares no updated_at column")
        start_w, start_k = (lookback, 0) if lookback and lookback < watermark else (watermark, last_key)
        with self.engine.connect() as conn:
            table, key, upd = _quote(conn, self.spec.table), _quote(conn, self.spec.key), _quote(conn, column)
            cursor_w, cursor_k = start_w, start_k
            while True:
                sql = (
                    f"SELECT * FROM {table} WHERE ({upd} > :w OR ({upd} = :w AND {key} > :k)) "
                    f"AND {upd} <= :until ORDER BY {upd}, {key} LIMIT {int(page_size)}"
                )
                rows = _dicts(conn.execute(text(sql), {"w": cursor_w, "k": cursor_k, "until": until}))
                if not rows:
                    return
                self._attach_children(conn, rows)
                yield rows
                cursor_w, cursor_k = rows[-1][column], rows[-1][self.spec.key]

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
