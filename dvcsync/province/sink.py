"""Write inbound records into the province's database: a dossier and its child rows in one
transaction, idempotent on the record's natural key (a second take-in finds the first), and
withdrawals made on the portal. Tables, columns, ids and audit columns come from the province
schema (``mappings/province.yaml``), never from code."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import StatementError

from dvcsync.errors import DvcsyncError

from ._sql import insert, now_local_iso, quoter
from .schema import ProvinceSchema


class SinkError(DvcsyncError, RuntimeError):
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
    """The province's dossiers as inbound writes see them."""

    def __init__(
        self, engine: Engine, schema: ProvinceSchema | None = None, *, key_column: str | None = None
    ) -> None:
        self.engine = engine
        self.schema = schema or ProvinceSchema()
        self.key_column = key_column or self.schema.dossiers.key

    def local_key(self, row: dict[str, Any]) -> str:
        """The local number of a mapped dossier row."""
        return str(row[self.schema.dossiers.key])

    def create(self, table: str, row: dict[str, Any]) -> tuple[int, bool]:
        """Insert ``row`` (list-valued fields are child tables, named as in the schema) unless a
        row with the same key exists. Returns ``(id, created)``."""
        d = self.schema.dossiers
        now = now_local_iso()
        scalars = {k: v for k, v in row.items() if not isinstance(v, list)}
        children = {k: v for k, v in row.items() if isinstance(v, list)}
        for column in (d.audit.created, d.audit.updated):
            if column:
                scalars.setdefault(column, now)
        key = scalars.get(self.key_column)
        try:
            with self.engine.begin() as conn:
                q = quoter(conn)
                found = conn.execute(
                    text(f"SELECT {q(d.id)} FROM {q(table)} WHERE {q(self.key_column)} = :k"), {"k": key}
                ).first()
                if found is not None:
                    return int(found[0]), False
                new_id = insert(conn, table, d.id, d.ids, scalars)
                for child_table, items in children.items():
                    child = self.schema.child(child_table)
                    if child is None:
                        raise SinkError(f"{table} {key}: child table {child_table!r} is not in province.yaml")
                    for item in items:
                        values = {**item, child.dossier: new_id}
                        for column in (child.audit.created, child.audit.updated):
                            if column:
                                values.setdefault(column, now)
                        insert(conn, child_table, child.id, child.ids, values)
                return new_id, True
        except SinkError:
            raise
        except Exception as exc:  # the province's own constraints and triggers: report, write nothing
            raise SinkError(f"{table} {key}: {db_error_text(exc)}") from exc

    def withdraw(
        self, key: str, *, allowed: frozenset[str], status: str, key_column: str | None = None
    ) -> tuple[bool, str, int | None]:
        """Set a dossier withdrawn and add the step that says so (``steps.withdrawal`` of the
        schema), if its current status allows it (one transaction). ``key_column``: the local
        number (default) or the portal's code. Returns ``(applied, status before, new step id)``."""
        d, st = self.schema.dossiers, self.schema.steps
        column = key_column or d.key
        now = now_local_iso()
        try:
            with self.engine.begin() as conn:
                q = quoter(conn)
                row = conn.execute(
                    text(f"SELECT {q(d.id)}, {q(d.status)} FROM {q(d.table)} WHERE {q(column)} = :k"),
                    {"k": key},
                ).first()
                if row is None:
                    raise SinkError(f"{d.table} {key}: not in the province")
                dossier_id, current = int(row[0]), str(row[1])
                if current not in allowed:
                    return False, current, None
                sets = [f"{q(d.status)} = :s"] + ([f"{q(d.audit.updated)} = :now"] if d.audit.updated else [])
                conn.execute(
                    text(f"UPDATE {q(d.table)} SET {', '.join(sets)} WHERE {q(d.id)} = :id"),
                    {"s": status, "now": now, "id": dossier_id},
                )
                values: dict[str, Any] = {
                    **st.withdrawal,
                    st.status: status,
                    st.moment: now,
                    st.dossier: dossier_id,
                }
                if st.order:
                    values[st.order] = conn.execute(
                        text(
                            f"SELECT COALESCE(MAX({q(st.order)}), 0) + 1 FROM {q(st.table)}"
                            f" WHERE {q(st.dossier)} = :id"
                        ),
                        {"id": dossier_id},
                    ).scalar_one()
                for audit in (st.audit.created, st.audit.updated):
                    if audit:
                        values[audit] = now
                step_id = insert(conn, st.table, st.id, st.ids, values)
                return True, current, step_id
        except SinkError:
            raise
        except Exception as exc:
            raise SinkError(f"{d.table} {key}: {db_error_text(exc)}") from exc
