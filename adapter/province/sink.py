"""Write inbound records into the province's database: a row and its child rows in one
transaction, idempotent on the record's natural key (a second take-in finds the first)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from adapter.contract import VN_TZ


class SinkError(RuntimeError):
    """The province refused or failed the write; nothing of the record was written."""


class SqlSink:
    def __init__(
        self, engine: Engine, *, key_column: str = "so_ho_so", foreign_key: str = "ho_so_id"
    ) -> None:
        self.engine = engine
        self.key_column = key_column
        self.foreign_key = foreign_key

    def create(self, table: str, row: dict[str, Any]) -> tuple[int, bool]:
        """Insert ``row`` (list-valued fields are child tables) unless a row with the same key
        exists. Returns ``(id, created)``."""
        now = datetime.now(VN_TZ).replace(tzinfo=None).isoformat(timespec="seconds")
        scalars = {k: v for k, v in row.items() if not isinstance(v, list)}
        children = {k: v for k, v in row.items() if isinstance(v, list)}
        scalars.setdefault("created_at", now)
        scalars.setdefault("updated_at", now)
        key = scalars[self.key_column]
        try:
            with self.engine.begin() as conn:
                quote = conn.dialect.identifier_preparer.quote
                found = conn.execute(
                    text(f"SELECT id FROM {quote(table)} WHERE {quote(self.key_column)} = :k"), {"k": key}
                ).first()
                if found is not None:
                    return int(found[0]), False
                columns = list(scalars)
                new_id = conn.execute(
                    text(
                        f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "
                        f"VALUES ({', '.join(':' + c for c in columns)}) RETURNING id"
                    ),
                    scalars,
                ).scalar_one()
                for child_table, items in children.items():
                    for item in items:
                        values = {**item, self.foreign_key: new_id}
                        names = list(values)
                        conn.execute(
                            text(
                                f"INSERT INTO {quote(child_table)} ({', '.join(quote(c) for c in names)}) "
                                f"VALUES ({', '.join(':' + c for c in names)})"
                            ),
                            values,
                        )
                return int(new_id), True
        except Exception as exc:  # the province's own constraints and triggers: report, write nothing
            raise SinkError(f"{table} {key}: {type(exc).__name__}: {exc}") from exc
