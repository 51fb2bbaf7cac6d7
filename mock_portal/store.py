"""The mock's state in SQLite: what the portal and the payment platform have received.

Dossiers and history entries are kept as their canonical wire JSON text (the portal answers them
back as stored, unknown fields included), with the few columns the rules need beside them. Tables
are declared with SQLAlchemy; the hot paths run one ``executemany`` per batch on the single
connection, in one transaction per request, so storage never becomes the bottleneck.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Column, Index, Integer, MetaData, Table, Text, create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from dvcsync.contract import VN_TZ

metadata = MetaData()

dossiers = Table(
    "dossiers",
    metadata,
    Column("ma_ho_so", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("writes", Integer, nullable=False, default=1),
    Column("sync_writes", Integer, nullable=False, default=1),
    Column("history_writes", Integer, nullable=False, default=0),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
)
history = Table(
    "history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ma_ho_so", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", Text, nullable=False),
    Index("ix_history_ma_ho_so", "ma_ho_so", "id"),
)
warnings = Table(
    "warnings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ma_ho_so", Text, nullable=False),
    Column("service", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("at", Text, nullable=False),
    Index("ix_warnings_ma_ho_so", "ma_ho_so"),
)
portal_dossiers = Table(
    "portal_dossiers",
    metadata,
    Column("ma_ho_so", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("pushed_body", Text),
    Column("ngay_nop", Text, nullable=False),
    Column("acknowledged", Integer, nullable=False, default=0),
    Column("ma_ho_so_don_vi", Text),
    Column("status", Text, nullable=False, default="1"),
    Column("push_state", Text, nullable=False, default="none"),
    Column("push_answer", Text),
    Column("push_attempts", Integer, nullable=False, default=0),
    Column("created_at", Text, nullable=False),
)
portal_status = Table(
    "portal_status",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ma_ho_so", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("at", Text, nullable=False),
)
ratings = Table(
    "ratings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("body", Text, nullable=False),
    Column("at", Text, nullable=False),
)
payments = Table(
    "payments",
    metadata,
    Column("ma_tham_chieu", Text, primary_key=True),
    Column("ma_ho_so", Text),
    Column("so_tien", Integer, nullable=False),
    Column("init_body", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("ma_giao_dich", Text, nullable=False, default=""),
    Column("ma_ngan_hang", Text, nullable=False, default=""),
    Column("thoi_gian_init", Text, nullable=False),
    Column("thoi_gian_gd", Text, nullable=False),
    Column("deliveries", Text, nullable=False, default="[]"),
    Column("created_at", Text, nullable=False),
)

admin_edits = Table(
    "admin_edits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),  # "dossier" or "payment"
    Column("key", Text, nullable=False),  # MaHoSo or MaThamChieu
    Column("body", Text, nullable=False),
    Column("at", Text, nullable=False),
    Index("ix_admin_edits_key", "kind", "key", "id"),
)

# admin_edits is a table of its own (not a column) so a state file of an older mock gains it with
# create_all; edits outlive a deleted dossier, so a re-created one still shows it was lost.
ALL_TABLES = (dossiers, history, warnings, portal_dossiers, portal_status, ratings, payments, admin_edits)


def now_local() -> str:
    return datetime.now(VN_TZ).isoformat(timespec="microseconds")


def _pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA page_size=16384")  # effective for a new file: halves the cost of a 100-dossier insert
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=OFF")  # a mock: survive a process kill, not a power cut
    cur.close()


F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _lock_public_methods(cls: type[Store]) -> type[Store]:
    for name, value in list(vars(cls).items()):
        if callable(value) and not name.startswith("_") and name not in {"close"}:
            setattr(cls, name, _locked(value))
    return cls


@_lock_public_methods
class Store:
    """One SQLite connection, shared by the event loop and the batch-writer thread.

    ``lock`` (re-entrant) guards every public method; a caller that runs several statements as one
    transaction holds it around them (``with store.lock: ...; store.commit()``), so the connection's
    single transaction is never shared by the two threads.
    """

    def __init__(self, path: str) -> None:
        url = "sqlite://" if path == ":memory:" else f"sqlite:///{path}"
        self.engine: Engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        if path != ":memory:":
            event.listen(self.engine, "connect", _pragmas)
        metadata.create_all(self.engine)
        self.conn: Connection = self.engine.connect()
        self.lock = threading.RLock()

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def add_history_entry(self, code: str, body: str) -> None:
        """A portal-side history entry (a withdrawal): not a write the province made."""
        self.conn.exec_driver_sql(
            "INSERT INTO history (ma_ho_so, body, received_at) VALUES (?, ?, ?)", (code, body, now_local())
        )

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        result = self.conn.exec_driver_sql(sql, tuple(params)) if params else self.conn.exec_driver_sql(sql)
        return [tuple(row) for row in result]

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.conn.exec_driver_sql(sql, rows)

    # ------------------------------------------------------------ dossiers

    def statuses(self, codes: Iterable[str]) -> dict[str, str]:
        """Current status of those of ``codes`` that are stored (one query per batch)."""
        unique = list(dict.fromkeys(codes))
        found: dict[str, str] = {}
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for code, status in self._rows(
                f"SELECT ma_ho_so, status FROM dossiers WHERE ma_ho_so IN ({marks})", tuple(chunk)
            ):
                found[code] = status
        return found

    def insert_dossiers(self, rows: list[tuple[str, str, str]]) -> None:
        """``(MaHoSo, status, body)``: created with one write."""
        now = now_local()
        self._many(
            "INSERT INTO dossiers (ma_ho_so, status, body, writes, sync_writes, history_writes, created_at,"
            " updated_at) VALUES (?, ?, ?, 1, 1, 0, ?, ?)",
            [(code, status, body, now, now) for code, status, body in rows],
        )

    def replace_dossiers(self, rows: list[tuple[str, str, str]]) -> None:
        now = now_local()
        self._many(
            "UPDATE dossiers SET status = ?, body = ?, writes = writes + 1, sync_writes = sync_writes + 1,"
            " updated_at = ? WHERE ma_ho_so = ?",
            [(status, body, now, code) for code, status, body in rows],
        )

    def set_status(self, code: str, status: str, body: str) -> None:
        """A portal-side change of the body (withdrawal, admin edit): not a write the province made."""
        self.conn.exec_driver_sql(
            "UPDATE dossiers SET status = ?, body = ?, updated_at = ? WHERE ma_ho_so = ?",
            (status, body, now_local(), code),
        )

    def append_history(self, entries: list[tuple[str, str]]) -> None:
        """``(MaHoSo, body)`` in arrival order; each entry counts as one write of its dossier."""
        now = now_local()
        self._many(
            "INSERT INTO history (ma_ho_so, body, received_at) VALUES (?, ?, ?)",
            [(code, body, now) for code, body in entries],
        )
        self._many(
            "UPDATE dossiers SET writes = writes + 1, history_writes = history_writes + 1, updated_at = ?"
            " WHERE ma_ho_so = ?",
            [(now, code) for code, _ in entries],
        )

    def add_warning(self, code: str, service: str, message: str) -> None:
        self.conn.exec_driver_sql(
            "INSERT INTO warnings (ma_ho_so, service, message, at) VALUES (?, ?, ?, ?)",
            (code, service, message, now_local()),
        )

    def dossier(self, code: str) -> dict[str, Any] | None:
        rows = self._rows(
            "SELECT body, status, writes, sync_writes, history_writes, created_at, updated_at"
            " FROM dossiers WHERE ma_ho_so = ?",
            (code,),
        )
        if not rows:
            return None
        body, status, writes, sync_writes, history_writes, created_at, updated_at = rows[0]
        return {
            "body": json.loads(body),
            "status": status,
            "writes": writes,
            "sync_writes": sync_writes,
            "history_writes": history_writes,
            "created_at": created_at,
            "updated_at": updated_at,
        }

    def history_of(self, code: str) -> list[dict[str, Any]]:
        return [
            json.loads(body)
            for (body,) in self._rows("SELECT body FROM history WHERE ma_ho_so = ? ORDER BY id", (code,))
        ]

    def warnings_of(self, code: str) -> list[dict[str, Any]]:
        return [
            {"service": service, "message": message, "at": at}
            for service, message, at in self._rows(
                "SELECT service, message, at FROM warnings WHERE ma_ho_so = ? ORDER BY id", (code,)
            )
        ]

    def list_dossiers(self, offset: int, limit: int) -> tuple[int, list[tuple[Any, ...]]]:
        total = self._rows("SELECT count(*) FROM dossiers")[0][0]
        rows = self._rows(
            "SELECT d.ma_ho_so, d.status, d.writes, d.created_at, d.updated_at,"
            " (SELECT count(*) FROM history h WHERE h.ma_ho_so = d.ma_ho_so)"
            " FROM dossiers d ORDER BY d.rowid LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return total, rows

    def delete_dossier(self, code: str) -> None:
        """The portal loses the dossier with its history and warnings (admin: a lost record)."""
        for table in ("dossiers", "history", "warnings"):
            self.conn.exec_driver_sql(f"DELETE FROM {table} WHERE ma_ho_so = ?", (code,))

    def history_rows(self, code: str) -> list[tuple[int, str]]:
        """``(row id, body)`` of a dossier's history in stored order (entry n is row n - 1)."""
        return [
            (int(i), body)
            for i, body in self._rows("SELECT id, body FROM history WHERE ma_ho_so = ? ORDER BY id", (code,))
        ]

    def delete_history_row(self, row_id: int) -> None:
        self.conn.exec_driver_sql("DELETE FROM history WHERE id = ?", (row_id,))

    # ------------------------------------------------------------ admin edits (mock only)

    def add_admin_edit(self, kind: str, key: str, edit: dict[str, Any]) -> None:
        self.conn.exec_driver_sql(
            "INSERT INTO admin_edits (kind, key, body, at) VALUES (?, ?, ?, ?)",
            (kind, key, json.dumps(edit, ensure_ascii=False), now_local()),
        )

    def admin_edits_of(self, kind: str, key: str) -> list[dict[str, Any]]:
        return [
            {**json.loads(body), "at": at}
            for body, at in self._rows(
                "SELECT body, at FROM admin_edits WHERE kind = ? AND key = ? ORDER BY id", (kind, key)
            )
        ]

    # ------------------------------------------------------------ portal-submitted dossiers

    def portal_dossier(self, code: str) -> dict[str, Any] | None:
        rows = self._rows(
            "SELECT kind, body, pushed_body, ngay_nop, acknowledged, ma_ho_so_don_vi, status, push_state,"
            " push_answer, push_attempts, created_at FROM portal_dossiers WHERE ma_ho_so = ?",
            (code,),
        )
        if not rows:
            return None
        (
            kind,
            body,
            pushed,
            ngay_nop,
            ack,
            local_code,
            status,
            push_state,
            push_answer,
            attempts,
            created_at,
        ) = rows[0]
        return {
            "MaHoSo": code,
            "kind": kind,
            "body": json.loads(body),
            "pushed_body": json.loads(pushed) if pushed else None,
            "NgayNopHoSo": ngay_nop,
            "acknowledged": bool(ack),
            "MaHoSoDonVi": local_code,
            "status": status,
            "push_state": push_state,
            "push_answer": json.loads(push_answer) if push_answer else None,
            "push_attempts": attempts,
            "created_at": created_at,
            "status_reports": [
                json.loads(b)
                for (b,) in self._rows(
                    "SELECT body FROM portal_status WHERE ma_ho_so = ? ORDER BY id", (code,)
                )
            ],
        }

    def insert_portal_dossier(
        self, code: str, kind: str, body: str, pushed_body: str | None, ngay_nop: str
    ) -> None:
        self.conn.exec_driver_sql(
            "INSERT INTO portal_dossiers (ma_ho_so, kind, body, pushed_body, ngay_nop, acknowledged, status,"
            " push_state, push_attempts, created_at) VALUES (?, ?, ?, ?, ?, 0, '1', ?, 0, ?)",
            (code, kind, body, pushed_body, ngay_nop, "pending" if pushed_body else "none", now_local()),
        )

    def unacknowledged(self, since: str, until: str, offset: int, limit: int) -> list[dict[str, Any]]:
        sql = "SELECT body FROM portal_dossiers WHERE acknowledged = 0"
        params: list[Any] = []
        if since:
            sql += " AND ngay_nop >= ?"
            params.append(since)
        if until:
            sql += " AND ngay_nop <= ?"
            params.append(until)
        sql += " ORDER BY ngay_nop, ma_ho_so LIMIT ? OFFSET ?"
        params += [limit, offset]
        return [json.loads(body) for (body,) in self._rows(sql, tuple(params))]

    def acknowledge(self, code: str, local_code: str | None) -> None:
        self.conn.exec_driver_sql(
            "UPDATE portal_dossiers SET acknowledged = 1, ma_ho_so_don_vi = coalesce(?, ma_ho_so_don_vi)"
            " WHERE ma_ho_so = ?",
            (local_code, code),
        )

    def record_portal_status(self, code: str, status: str, body: str, local_code: str | None) -> None:
        self.conn.exec_driver_sql(
            "UPDATE portal_dossiers SET status = ?, ma_ho_so_don_vi = coalesce(?, ma_ho_so_don_vi)"
            " WHERE ma_ho_so = ?",
            (status, local_code, code),
        )
        self.conn.exec_driver_sql(
            "INSERT INTO portal_status (ma_ho_so, body, at) VALUES (?, ?, ?)", (code, body, now_local())
        )

    def set_push_result(self, code: str, state: str, answer: dict[str, Any] | None, attempts: int) -> None:
        self.conn.exec_driver_sql(
            "UPDATE portal_dossiers SET push_state = ?, push_answer = ?, push_attempts = ?"
            " WHERE ma_ho_so = ?",
            (state, json.dumps(answer, ensure_ascii=False) if answer is not None else None, attempts, code),
        )
        self.commit()

    def pending_pushes(self) -> list[tuple[str, dict[str, Any]]]:
        return [
            (code, json.loads(body))
            for code, body in self._rows(
                "SELECT ma_ho_so, pushed_body FROM portal_dossiers WHERE push_state = 'pending'"
            )
        ]

    def list_portal_dossiers(self) -> list[str]:
        return [code for (code,) in self._rows("SELECT ma_ho_so FROM portal_dossiers ORDER BY rowid")]

    # ------------------------------------------------------------ ratings

    def replace_ratings(self, items: list[tuple[tuple[str, str, str], str]]) -> int:
        """Store figures by their natural key (month, procedure, agency): a second send of a key
        replaces the first, as a province's correction must (the replacement moves to the end of the
        arrival order). The key is read from the stored JSON, so a state file of an older mock,
        whose table has no key column, keeps working. Returns how many were replacements."""
        now = now_local()
        replaced = 0
        for (month, procedure, agency), body in items:
            replaced += self.conn.exec_driver_sql(
                "DELETE FROM ratings WHERE json_extract(body, '$.NgayTongHop') = ?"
                " AND coalesce(json_extract(body, '$.MaThuTuc'), '') = ?"
                " AND coalesce(json_extract(body, '$.Madonvi'), '') = ?",
                (month, procedure, agency),
            ).rowcount
            self.conn.exec_driver_sql("INSERT INTO ratings (body, at) VALUES (?, ?)", (body, now))
        return replaced

    def ratings_all(self) -> list[dict[str, Any]]:
        return [json.loads(body) for (body,) in self._rows("SELECT body FROM ratings ORDER BY id")]

    def count_ratings(self) -> int:
        return int(self._rows("SELECT count(*) FROM ratings")[0][0])

    # ------------------------------------------------------------ payments

    def insert_payment(self, ref: str, code: str | None, amount: int, init_body: str, init_time: str) -> None:
        self.conn.exec_driver_sql(
            "INSERT INTO payments (ma_tham_chieu, ma_ho_so, so_tien, init_body, state, ma_giao_dich,"
            " ma_ngan_hang, thoi_gian_init, thoi_gian_gd, deliveries, created_at)"
            " VALUES (?, ?, ?, ?, '3', '', '', ?, ?, '[]', ?)",
            (ref, code, amount, init_body, init_time, init_time, now_local()),
        )

    _PAYMENT_COLS = (
        "ma_tham_chieu",
        "ma_ho_so",
        "so_tien",
        "init_body",
        "state",
        "ma_giao_dich",
        "ma_ngan_hang",
        "thoi_gian_init",
        "thoi_gian_gd",
        "deliveries",
        "created_at",
    )

    def payment(self, ref: str) -> dict[str, Any] | None:
        rows = self._rows(
            f"SELECT {', '.join(self._PAYMENT_COLS)} FROM payments WHERE ma_tham_chieu = ?", (ref,)
        )
        return self._payment_dict(rows[0]) if rows else None

    def _payment_dict(self, row: tuple[Any, ...]) -> dict[str, Any]:
        item = dict(zip(self._PAYMENT_COLS, row, strict=True))
        item["init_body"] = json.loads(item["init_body"])
        item["deliveries"] = json.loads(item["deliveries"])
        return item

    def payments_all(self) -> list[dict[str, Any]]:
        return [
            self._payment_dict(r)
            for r in self._rows(f"SELECT {', '.join(self._PAYMENT_COLS)} FROM payments ORDER BY rowid")
        ]

    def settle_payment(self, ref: str, state: str, transaction: str, bank: str, when: str) -> None:
        self.conn.exec_driver_sql(
            "UPDATE payments SET state = ?, ma_giao_dich = ?, ma_ngan_hang = ?, thoi_gian_gd = ?"
            " WHERE ma_tham_chieu = ?",
            (state, transaction, bank, when, ref),
        )

    def set_payment_amount(self, ref: str, amount: int) -> None:
        self.conn.exec_driver_sql("UPDATE payments SET so_tien = ? WHERE ma_tham_chieu = ?", (amount, ref))

    def add_delivery(self, ref: str, delivery: dict[str, Any]) -> None:
        """Append one delivery attempt and commit (it is its own transaction)."""
        item = self.payment(ref)
        if item is None:
            return
        item["deliveries"].append(delivery)
        self.conn.exec_driver_sql(
            "UPDATE payments SET deliveries = ? WHERE ma_tham_chieu = ?",
            (json.dumps(item["deliveries"], ensure_ascii=False), ref),
        )
        self.commit()

    def count_payments(self) -> int:
        return int(self._rows("SELECT count(*) FROM payments")[0][0])

    # ------------------------------------------------------------ admin

    def reset(self) -> None:
        for table in ALL_TABLES:
            self.conn.exec_driver_sql(f"DELETE FROM {table.name}")
        self.commit()
