"""SQL helpers of the province boundary: quoting, and inserting a row the way the schema says
its ids are made (the database, a sequence, or the application's counter row)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from dvcsync.contract import VN_TZ

from .schema import Ids


def now_local_iso() -> str:
    """Province time as the shipped schema stores it: ISO 8601, local, seconds."""
    return datetime.now(VN_TZ).replace(tzinfo=None, microsecond=0).isoformat()


def quoter(conn: Connection) -> Any:
    return conn.dialect.identifier_preparer.quote


def next_id(conn: Connection, ids: Ids) -> int | None:
    """The id a new row gets from a sequence or a counter; None when the database makes it."""
    q = quoter(conn)
    if ids.strategy == "sequence":
        assert ids.sequence is not None
        return int(conn.execute(text(f"SELECT nextval('{ids.sequence}')")).scalar_one())
    if ids.strategy == "counter":
        table, name, value = q(ids.counter_table), q(ids.counter_name_column), q(ids.counter_value_column)
        # the UPDATE takes the row's write lock first: two writers never get the same id
        moved = conn.execute(
            text(f"UPDATE {table} SET {value} = {value} + 1 WHERE {name} = :n"), {"n": ids.counter_name}
        ).rowcount
        if moved != 1:
            conn.execute(
                text(f"INSERT INTO {table} ({name}, {value}) VALUES (:n, 1)"), {"n": ids.counter_name}
            )
        return int(
            conn.execute(
                text(f"SELECT {value} FROM {table} WHERE {name} = :n"), {"n": ids.counter_name}
            ).scalar_one()
        )
    return None


def insert(conn: Connection, table: str, id_column: str, ids: Ids, values: dict[str, Any]) -> int:
    """Insert one row; its id (made by the database, a sequence or the counter)."""
    q = quoter(conn)
    made = next_id(conn, ids)
    row = {**values, id_column: made} if made is not None else dict(values)
    names = list(row)
    binds = {f"v{n}": row[name] for n, name in enumerate(names)}
    sql = (
        f"INSERT INTO {q(table)} ({', '.join(q(c) for c in names)})"
        f" VALUES ({', '.join(f':v{n}' for n in range(len(names)))})"
    )
    if made is not None:
        conn.execute(text(sql), binds)
        return made
    return int(conn.execute(text(f"{sql} RETURNING {q(id_column)}"), binds).scalar_one())
