"""A generated SQLite sample (either profile) copied into a server database, PostgreSQL or
MariaDB, with the types a real one-stop database there has: date-time columns as ``timestamp``
(PostgreSQL) or ``DATETIME`` (MariaDB), integer keys, text; the names exactly as in SQLite
(OpenCPS's camelCase stays camelCase: quoted on PostgreSQL, as MariaDB keeps them).

Which column is a date-time: one SQLite declares ``DATETIME``/``DATE`` (OpenCPS, as Liferay's
MySQL dialect makes them), or a ``TEXT`` column whose every value is an ISO 8601 local date-time
(the sample's ``YYYY-MM-DDTHH:MM:SS``): their values are parsed and written as datetimes, not
text. ISO dates alone become ``DATE``. A rowid key (``INTEGER PRIMARY KEY``) becomes the server's
auto-increment (the sample's ids are made by the database); any other key is a plain ``BIGINT``
(OpenCPS's come from Liferay's counter table). Indexes and unique constraints are copied; text
in them is ``VARCHAR(255)`` (MariaDB indexes no unbounded ``TEXT``)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    text,
)
from sqlalchemy.types import TypeEngine

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_VARCHAR = re.compile(r"^VARCHAR\((\d+)\)$")


def _sqlite(path: Path) -> sqlite3.Connection:
    """The sample's few broken UTF-8 values arrive with U+FFFD (servers keep no broken text)."""
    conn = sqlite3.connect(path)
    conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
    return conn


def _tables(conn: sqlite3.Connection) -> list[str]:
    """Tables in creation order (parents before children in both profiles)."""
    return [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        )
    ]


def _kind(conn: sqlite3.Connection, table: str, column: str, declared: str) -> str:
    """``datetime``, ``date`` or ``as declared``, from the declaration and, for text, the values."""
    if declared in ("DATETIME", "DATE", "TIMESTAMP"):
        return "datetime"
    if declared != "TEXT":
        return "declared"
    values = [
        v for (v,) in conn.execute(f'SELECT DISTINCT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL')
    ]
    if values and all(isinstance(v, str) and _DATE_TIME.match(v) for v in values):
        return "datetime"
    if values and all(isinstance(v, str) and _DATE.match(v) for v in values):
        return "date"
    return "declared"


def _type(declared: str, kind: str, indexed: bool) -> TypeEngine[Any]:
    if kind == "datetime":
        return DateTime()
    if kind == "date":
        return Date()
    if declared == "INTEGER":
        return Integer()
    if declared in ("BIGINT", "LONG"):
        return BigInteger()
    if declared in ("TINYINT", "SMALLINT", "BOOLEAN"):
        return SmallInteger()
    if declared in ("DOUBLE", "REAL", "FLOAT"):
        return Float()
    bounded = _VARCHAR.match(declared)
    if bounded:
        return String(int(bounded.group(1)))
    return String(255) if indexed else Text()


def _indexes(conn: sqlite3.Connection, table: str) -> list[tuple[str, bool, list[str]]]:
    """``(name, unique, columns)`` of the table's indexes, automatic ones (UNIQUE) included."""
    found = []
    for _seq, name, unique, origin, _partial in conn.execute(f'PRAGMA index_list("{table}")'):
        if origin == "pk":
            continue
        columns = [row[2] for row in conn.execute(f'PRAGMA index_info("{name}")')]
        found.append((str(name), bool(unique), columns))
    return found


def _metadata(conn: sqlite3.Connection) -> tuple[MetaData, dict[str, list[str]]]:
    """The server tables, and the columns whose text is parsed into dates, per table."""
    metadata = MetaData()
    temporal: dict[str, list[str]] = {}
    for table in _tables(conn):
        info = list(conn.execute(f'PRAGMA table_info("{table}")'))
        indexes = _indexes(conn, table)
        indexed = {column for _, _, columns in indexes for column in columns}
        keys = [row[1] for row in info if row[5]]
        columns, temporal[table] = [], []
        for _cid, name, declared_type, not_null, _default, pk in info:
            declared = str(declared_type).upper()
            kind = _kind(conn, table, name, declared)
            if kind in ("datetime", "date"):
                temporal[table].append(name)
            rowid = pk and declared == "INTEGER" and len(keys) == 1
            columns.append(
                Column(
                    name,
                    _type(declared, kind, indexed=bool(pk) or name in indexed),
                    primary_key=bool(pk),
                    autoincrement=bool(rowid),
                    nullable=not (not_null or pk),
                    quote=True,
                )
            )
        extras: list[Any] = []
        for index, (name, unique, index_columns) in enumerate(indexes):
            if name.startswith("sqlite_autoindex_"):
                extras.append(UniqueConstraint(*index_columns, name=f"uq_{table}_{index}"))
            else:
                extras.append(Index(name, *index_columns, unique=unique))
        Table(table, metadata, *columns, *extras, quote=True)
    return metadata, temporal


def _parsed(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if _DATE.match(value):
        return date.fromisoformat(value)
    return datetime.fromisoformat(value)


def _rows(
    conn: sqlite3.Connection, table: Table, temporal: list[str], chunk: int
) -> Iterator[list[dict[str, Any]]]:
    names = [column.name for column in table.columns]
    listed = ", ".join(f'"{name}"' for name in names)
    cursor = conn.execute(f'SELECT {listed} FROM "{table.name}"')
    while batch := cursor.fetchmany(chunk):
        rows = [dict(zip(names, row, strict=True)) for row in batch]
        for row in rows:
            for name in temporal:
                row[name] = _parsed(row[name])
        yield rows


def copy_sqlite(source: Path, url: str, *, chunk: int = 2000) -> dict[str, list[str]]:
    """Every table of the SQLite file ``source`` created in the (empty) database at ``url`` and
    filled. Returns the columns made date-times, per table. PostgreSQL's sequences are moved past
    the copied ids, as after the province's own inserts."""
    conn = _sqlite(source)
    try:
        metadata, temporal = _metadata(conn)
        engine = create_engine(url)
        try:
            with engine.begin() as target:
                metadata.create_all(target)
                for table in metadata.sorted_tables:
                    for rows in _rows(conn, table, temporal[table.name], chunk):
                        target.execute(table.insert(), rows)
                if engine.dialect.name == "postgresql":
                    _move_sequences(target, metadata)
        finally:
            engine.dispose()
    finally:
        conn.close()
    return temporal


def _move_sequences(target: Any, metadata: MetaData) -> None:
    quote = target.dialect.identifier_preparer.quote
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True:
                target.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence(:t, :c), COALESCE((SELECT"
                        f" MAX({quote(column.name)}) FROM {quote(table.name)}), 0) + 1, false)"
                    ),
                    {"t": quote(table.name), "c": column.name},
                )


__all__ = ["copy_sqlite"]
