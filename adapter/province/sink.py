"""Write inbound records into the province's database: a row and its child rows in one
transaction, idempotent on the record's natural key (a second take-in finds the first)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import StatementError

from adapter.contract import VN_TZ


class SinkError(RuntimeError):
    """The province refused or failed the write; nothing of the record was written."""


def db_error_text(exc: BaseException) -> str:
    """An error's type and the database's own message, never the statement's parameters.

    ``str()`` of a SQLAlchemy error appends ``[parameters: (...)]`` — ID numbers, phones and
    e-mails in clear — and PostgreSQL's ``DETAIL:`` line repeats a row's values, so both go: the
    driver's error (``orig``) gives the message, and only its first line is kept. What is left is
    safe to log and to store (``inbox.error``, ``run.error``)."""
    if isinstance(exc, StatementError) and exc.orig is not None:
        orig: BaseException = exc.orig
        diag = getattr(orig, "diag", None)  # psycopg: the primary message, without DETAIL
        primary = getattr(diag, "message_primary", None)
        message = primary if isinstance(primary, str) and primary else str(orig)
        name = type(orig).__name__
    else:
        message, name = str(exc), type(exc).__name__
    first = message.strip().splitlines()[0] if message.strip() else ""
    return f"{name}: {first}" if first else name


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
            raise SinkError(f"{table} {key}: {db_error_text(exc)}") from exc

    def withdraw(
        self,
        key: str,
        *,
        allowed: frozenset[str],
        status: str,
        step: dict[str, Any],
        table: str = "ho_so",
        key_column: str = "so_ho_so",
        status_column: str = "trang_thai",
        steps_table: str = "qua_trinh_xu_ly",
    ) -> tuple[bool, str, int | None]:
        """Set a dossier withdrawn and add the step that says so, if its current status allows it
        (one transaction). Returns ``(applied, status before, new step id)``."""
        now = datetime.now(VN_TZ).replace(tzinfo=None).isoformat(timespec="seconds")
        try:
            with self.engine.begin() as conn:
                quote = conn.dialect.identifier_preparer.quote
                row = conn.execute(
                    text(
                        f"SELECT id, {quote(status_column)} FROM {quote(table)}"
                        f" WHERE {quote(key_column)} = :k"
                    ),
                    {"k": key},
                ).first()
                if row is None:
                    raise SinkError(f"{table} {key}: not in the province")
                dossier_id, current = int(row[0]), str(row[1])
                if current not in allowed:
                    return False, current, None
                conn.execute(
                    text(
                        f"UPDATE {quote(table)} SET {quote(status_column)} = :s, updated_at = :now"
                        " WHERE id = :id"
                    ),
                    {"s": status, "now": now, "id": dossier_id},
                )
                order = conn.execute(
                    text(
                        f"SELECT COALESCE(MAX(thu_tu), 0) + 1 FROM {quote(steps_table)}"
                        f" WHERE {self.foreign_key} = :id"
                    ),
                    {"id": dossier_id},
                ).scalar_one()
                values = {
                    **step,
                    "thu_tu": order,
                    "thoi_diem": step.get("thoi_diem") or now,
                    self.foreign_key: dossier_id,
                }
                names = list(values)
                step_id = conn.execute(
                    text(
                        f"INSERT INTO {quote(steps_table)} ({', '.join(quote(c) for c in names)}) "
                        f"VALUES ({', '.join(':' + c for c in names)}) RETURNING id"
                    ),
                    values,
                ).scalar_one()
                return True, current, int(step_id)
        except SinkError:
            raise
        except Exception as exc:
            raise SinkError(f"{table} {key}: {db_error_text(exc)}") from exc
