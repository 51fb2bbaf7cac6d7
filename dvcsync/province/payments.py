"""The province side of payments: attempts, fees and the dossier's audit column, each change in
one province transaction, on the tables and values of the province schema (``payments``,
``fees``, ``dossiers``, ``statuses.paying`` of ``mappings/province.yaml``).

Shared by the payment job (INIT, QUERY, GET_BILL), the inbound callback endpoint and reconcile,
so a paid result is applied by one function whichever way it arrives, and at most once: the
attempt row moves to paid only if it is not already, and the fees and dossier only change when
it did. Attempt states are read as ``created``/``paid``/``failed`` whatever the province calls them.

Two shapes of attempt (``payments.on_fees``): a row of its own (the sample), or written on the
fee rows it bills (OpenCPS's ``opencps_paymentfile``), read back grouped by reference. When a
fee is collected is a column, or derived from one (``fees.collection: {column, values}``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from dvcsync.contract import VN_TZ, parse_local_iso

from ._sql import insert, now_local_iso, quoter
from .schema import ProvinceSchema

CREATED, PAID, FAILED = "created", "paid", "failed"
_AFTER_TAG = "TS"  # in a reference: the attempt is for the fees collected after processing


def stage_of(ref: str, schema: ProvinceSchema | None = None) -> str:
    """The collection stage (the fees' collection value) an attempt's reference was made for
    (``…-TS…``: after processing); references made before stages existed were all up front."""
    fees = (schema or ProvinceSchema()).fees
    return fees.after if ref.rsplit("-", 1)[-1].startswith(_AFTER_TAG) else fees.ahead


@dataclass(frozen=True)
class Due:
    """A dossier that asks for payment: the amount of its unpaid fees of one stage, up front
    first, then those collected after processing. ``stage`` is the fees' collection value."""

    dossier_id: int
    dossier_key: str
    amount: int
    stage: str


@dataclass(frozen=True)
class Attempt:
    dossier_id: int
    dossier_key: str
    reference: str
    amount: int
    state: str  # created | paid | failed
    created: str
    receipt: str | None

    def age_s(self, now: datetime | None = None) -> float:
        now = now or datetime.now(VN_TZ)
        return (now - parse_local_iso(self.created)).total_seconds()


class PaymentLedger:
    def __init__(self, engine: Engine, schema: ProvinceSchema | None = None) -> None:
        self.engine = engine
        self.schema = schema or ProvinceSchema()
        p = self.schema.payments
        self._to_canonical = {
            str(p.state_created): CREATED,
            str(p.state_paid): PAID,
            str(p.state_failed): FAILED,
        }
        self._from_canonical = {CREATED: p.state_created, PAID: p.state_paid, FAILED: p.state_failed}
        self.on_fees = p.on_fees
        if p.on_fees and p.table != self.schema.fees.table:
            raise ValueError(
                f"province.yaml payments.on_fees: payments.table {p.table!r} must be fees.table"
                f" {self.schema.fees.table!r} (an attempt is written on the fee rows it bills)"
            )

    @property
    def ahead(self) -> str:
        return self.schema.fees.ahead

    @property
    def after(self) -> str:
        return self.schema.fees.after

    def stage_of(self, ref: str) -> str:
        return stage_of(ref, self.schema)

    def _names(self, conn: Connection) -> dict[str, str]:
        """Every table and column, quoted for this database, by a neutral name."""
        q, s = quoter(conn), self.schema
        d, f, p = s.dossiers, s.fees, s.payments
        return {
            "D": q(d.table), "d_id": q(d.id), "d_key": q(d.key), "d_portal": q(d.portal_code),
            "d_status": q(d.status), "d_agency": q(d.agency),
            "d_updated": q(d.audit.updated) if d.audit.updated else "",
            "F": q(f.table), "f_dossier": q(f.dossier), "f_amount": q(f.amount),
            "f_paid": q(f.paid),
            "P": q(p.table), "p_id": q(p.id), "p_dossier": q(p.dossier), "p_ref": q(p.reference),
            "p_amount": q(p.amount), "p_state": q(p.state), "p_txn": q(p.transaction),
            "p_bank": q(p.bank), "p_created": q(p.created), "p_settled": q(p.settled),
            "p_receipt": q(p.receipt),
        }  # fmt: skip

    def _coll(self, conn: Connection, alias: str = "") -> str:
        """The fee's collection value (ahead or after) as SQL: its column, or derived from one."""
        c, q = self.schema.fees.collection, quoter(conn)
        if isinstance(c, str):
            return f"{alias}{q(c)}"
        column = f"{alias}{q(c.column)}"
        marks = ", ".join(f":coll{n}" for n in range(len(c.values)))
        return f"(CASE WHEN {column} IS NULL OR {column} IN ({marks}) THEN :after ELSE :ahead END)"

    def _coll_params(self) -> dict[str, Any]:
        c = self.schema.fees.collection
        values = {} if isinstance(c, str) else {f"coll{n}": v for n, v in enumerate(c.values)}
        return {**values, "ahead": self.ahead, "after": self.after}

    def _unpaid(self, column: str) -> tuple[str, dict[str, Any]]:
        """``column`` holds a value of a fee not paid yet: SQL and its parameters."""
        values = self.schema.fees.unpaid
        if not isinstance(self.schema.fees.paid_no, list):
            return f"{column} = :unpaid", {"unpaid": values[0]}
        marks = ", ".join(f":unpaid{n}" for n in range(len(values)))
        return f"{column} IN ({marks})", {f"unpaid{n}": v for n, v in enumerate(values)}

    def _attempt_sql(self, conn: Connection, where: str, *, ordered: bool = False) -> str:
        """Attempts matching ``where`` (on ``t``, the attempt's rows), oldest first if ``ordered``."""
        n = self._names(conn)
        if not self.on_fees:
            return (
                f"SELECT t.{n['p_dossier']} AS dossier_id, h.{n['d_key']} AS dossier_key,"
                f" t.{n['p_ref']} AS reference, t.{n['p_amount']} AS amount, t.{n['p_state']} AS state,"
                f" t.{n['p_created']} AS created, t.{n['p_receipt']} AS receipt"
                f" FROM {n['P']} t JOIN {n['D']} h ON h.{n['d_id']} = t.{n['p_dossier']}"
                f" WHERE {where}" + (f" ORDER BY t.{n['p_id']}" if ordered else "")
            )
        # one attempt, several fee rows: grouped by reference (its rows move together)
        return (
            f"SELECT t.{n['p_dossier']} AS dossier_id, h.{n['d_key']} AS dossier_key,"
            f" t.{n['p_ref']} AS reference, SUM(t.{n['p_amount']}) AS amount, MIN(t.{n['p_state']}) AS state,"
            f" MIN(t.{n['p_created']}) AS created, MAX(t.{n['p_receipt']}) AS receipt"
            f" FROM {n['P']} t JOIN {n['D']} h ON h.{n['d_id']} = t.{n['p_dossier']}"
            f" WHERE t.{n['p_ref']} IS NOT NULL AND {where}"
            f" GROUP BY t.{n['p_dossier']}, h.{n['d_key']}, t.{n['p_ref']}"
            + (f" ORDER BY MIN(t.{n['p_id']})" if ordered else "")
        )

    def _attempt(self, row: Any) -> Attempt:
        return Attempt(
            int(row.dossier_id),
            str(row.dossier_key),
            str(row.reference),
            int(row.amount),
            self._to_canonical.get(str(row.state), str(row.state)),
            str(row.created),
            row.receipt,
        )

    # ------------------------------------------------------------------ reads

    def due(self, retry_after_s: float = 0) -> list[Due]:
        """Dossiers in the paying status with unpaid fees (sum > 0), no attempt still created and
        no attempt failed less than ``retry_after_s`` ago (a refusing platform is not asked again
        every cycle). One stage at a time: what is owed up front, then what is owed after
        processing; one open attempt per dossier is what keeps anything from being billed twice."""
        cutoff = (datetime.now(VN_TZ) - timedelta(seconds=retry_after_s)).replace(tzinfo=None, microsecond=0)
        with self.engine.connect() as conn:
            n = self._names(conn)
            coll = self._coll(conn, "l.")
            unpaid, unpaid_params = self._unpaid(f"l.{n['f_paid']}")
            referenced = f" AND t.{n['p_ref']} IS NOT NULL" if self.on_fees else ""
            sql = text(
                f"SELECT h.{n['d_id']} AS id, h.{n['d_key']} AS dossier_key,"
                f" SUM(CASE WHEN {coll} = :ahead THEN l.{n['f_amount']} ELSE 0 END) AS ahead,"
                f" SUM(CASE WHEN {coll} = :after THEN l.{n['f_amount']} ELSE 0 END) AS after"
                f" FROM {n['D']} h JOIN {n['F']} l ON l.{n['f_dossier']} = h.{n['d_id']}"
                f" AND {unpaid} AND {coll} IN (:ahead, :after)"
                f" WHERE h.{n['d_status']} = :paying AND NOT EXISTS ("
                f"   SELECT 1 FROM {n['P']} t WHERE t.{n['p_dossier']} = h.{n['d_id']}{referenced}"
                f"   AND (t.{n['p_state']} = :created OR (t.{n['p_state']} = :failed"
                f"   AND COALESCE(t.{n['p_settled']}, t.{n['p_created']}) > :cutoff)))"
                f" GROUP BY h.{n['d_id']}, h.{n['d_key']} HAVING SUM(l.{n['f_amount']}) > 0"
                f" ORDER BY h.{n['d_id']}"
            )
            params = {
                **self._coll_params(),
                **unpaid_params,
                "paying": self.schema.statuses.paying,
                "created": self._from_canonical[CREATED],
                "failed": self._from_canonical[FAILED],
                "cutoff": cutoff.isoformat(),
            }
            rows = conn.execute(sql, params).all()
        return [
            Due(int(r.id), str(r.dossier_key), int(r.ahead), self.ahead)
            if int(r.ahead) > 0
            else Due(int(r.id), str(r.dossier_key), int(r.after), self.after)
            for r in rows
            if int(r.ahead) > 0 or int(r.after) > 0
        ]

    def amount_due(self, dossier_key: str) -> int | None:
        """What the dossier owes now (up front first); None when the dossier is unknown."""
        owed = self.owed(dossier_key)
        return None if owed is None else owed[1]

    def owed(self, dossier_key: str) -> tuple[str, int] | None:
        """The stage the dossier owes now and its amount (``(ahead, 0)`` when nothing is owed);
        None when the dossier is unknown."""
        with self.engine.connect() as conn:
            n = self._names(conn)
            row = conn.execute(
                text(f"SELECT {n['d_id']} FROM {n['D']} WHERE {n['d_key']} = :c"), {"c": dossier_key}
            ).first()
            if row is None:
                return None
            coll = self._coll(conn)
            unpaid, unpaid_params = self._unpaid(n["f_paid"])
            sums: dict[str, int] = {
                str(stage): int(total)
                for stage, total in conn.execute(
                    text(
                        f"SELECT {coll}, COALESCE(SUM({n['f_amount']}), 0) FROM {n['F']}"
                        f" WHERE {n['f_dossier']} = :h AND {unpaid}"
                        f" AND {coll} IN (:ahead, :after) GROUP BY {coll}"
                    ),
                    {"h": row[0], **unpaid_params, **self._coll_params()},
                ).all()
            }
        ahead, after = sums.get(self.ahead, 0), sums.get(self.after, 0)
        return (self.ahead, ahead) if ahead > 0 or after <= 0 else (self.after, after)

    def attempt(self, ref: str) -> Attempt | None:
        with self.engine.connect() as conn:
            n = self._names(conn)
            row = conn.execute(text(self._attempt_sql(conn, f"t.{n['p_ref']} = :r")), {"r": ref}).first()
            return self._attempt(row) if row is not None else None

    def attempts(self, state: str) -> list[Attempt]:
        """Attempts in ``state`` (created, paid or failed), oldest first."""
        with self.engine.connect() as conn:
            n = self._names(conn)
            rows = conn.execute(
                text(self._attempt_sql(conn, f"t.{n['p_state']} = :s", ordered=True)),
                {"s": self._from_canonical.get(state, state)},
            )
            return [self._attempt(r) for r in rows]

    def without_receipt(self) -> list[Attempt]:
        with self.engine.connect() as conn:
            n = self._names(conn)
            rows = conn.execute(
                text(
                    self._attempt_sql(
                        conn,
                        f"t.{n['p_state']} = :paid"
                        f" AND (t.{n['p_receipt']} IS NULL OR t.{n['p_receipt']} = '')",
                        ordered=True,
                    )
                ),
                {"paid": self._from_canonical[PAID]},
            )
            return [self._attempt(r) for r in rows]

    # ------------------------------------------------------------------ reconciliation reads

    def _reconcile_sql(self, conn: Connection, where: str, order: str = "") -> str:
        """Attempts matching ``where`` as reconcile compares them: reference, the dossier's code
        on the portal (the portal's own for one submitted there), amount, state, times,
        transaction, agency."""
        n = self._names(conn)
        dossier = (
            f"CASE WHEN h.{n['d_portal']} IS NOT NULL AND h.{n['d_portal']} <> ''"
            f" THEN h.{n['d_portal']} ELSE h.{n['d_key']} END"
        )
        if not self.on_fees:
            return (
                f"SELECT t.{n['p_ref']} AS reference, {dossier} AS dossier,"
                f" t.{n['p_amount']} AS amount, t.{n['p_state']} AS state, t.{n['p_created']} AS created,"
                f" t.{n['p_settled']} AS settled, t.{n['p_txn']} AS txn, h.{n['d_agency']} AS agency"
                f" FROM {n['P']} t JOIN {n['D']} h ON h.{n['d_id']} = t.{n['p_dossier']} WHERE {where}"
                + (f" ORDER BY {order}" if order else "")
            )
        return (
            f"SELECT t.{n['p_ref']} AS reference, MIN({dossier}) AS dossier,"
            f" SUM(t.{n['p_amount']}) AS amount, MIN(t.{n['p_state']}) AS state,"
            f" MIN(t.{n['p_created']}) AS created, MAX(t.{n['p_settled']}) AS settled,"
            f" MAX(t.{n['p_txn']}) AS txn, MIN(h.{n['d_agency']}) AS agency"
            f" FROM {n['P']} t JOIN {n['D']} h ON h.{n['d_id']} = t.{n['p_dossier']}"
            f" WHERE t.{n['p_ref']} IS NOT NULL AND {where} GROUP BY t.{n['p_ref']}"
            + (f" ORDER BY {order}" if order else "")
        )

    def _reconcile_row(self, names: list[str], row: Any) -> dict[str, Any]:
        out = dict(zip(names, row, strict=True))
        out["state"] = self._to_canonical.get(str(out["state"]), out["state"])
        return out

    def attempts_settled_between(self, since: str, until: str) -> Iterator[dict[str, Any]]:
        """Attempts whose result (or, still open, creation) falls on the days ``since``..``until``
        (ISO dates, inclusive), by reference, streamed; keys: reference, dossier, amount, state
        (created, paid, failed), created, settled, txn, agency."""
        with self.engine.connect() as conn:
            n = self._names(conn)
            sql = text(
                self._reconcile_sql(
                    conn,
                    f"substr(COALESCE(t.{n['p_settled']}, t.{n['p_created']}), 1, 10)"
                    " BETWEEN :since AND :until",
                    f"t.{n['p_ref']}",
                )
            )
            result = conn.execution_options(stream_results=True, yield_per=2000).execute(
                sql, {"since": since, "until": until}
            )
            names = list(result.keys())
            for row in result:
                yield self._reconcile_row(names, row)

    def attempts_by_ref(self, refs: list[str]) -> dict[str, dict[str, Any]]:
        if not refs:
            return {}
        marks = ", ".join(f":r{n}" for n in range(len(refs)))
        with self.engine.connect() as conn:
            n = self._names(conn)
            sql = text(self._reconcile_sql(conn, f"t.{n['p_ref']} IN ({marks})"))
            result = conn.execute(sql, {f"r{i}": ref for i, ref in enumerate(refs)})
            names = list(result.keys())
            rows = [self._reconcile_row(names, row) for row in result]
        return {str(row["reference"]): row for row in rows}

    # ------------------------------------------------------------------ writes

    def create_attempt(self, due: Due, when: str) -> Attempt:
        """Write the attempt created with a fresh reference, committed before anything is sent,
        so a crash between here and INIT never loses the reference (the poll finds it)."""
        tag = _AFTER_TAG if due.stage == self.after else "TT"
        ref = f"{due.dossier_key}-{tag}{uuid.uuid4().hex[:12].upper()}"
        p = self.schema.payments
        values = {
            p.dossier: due.dossier_id,
            p.reference: ref,
            p.amount: due.amount,
            p.state: self._from_canonical[CREATED],
            p.created: when,
        }
        if self.on_fees:
            self._write_on_fees(due, ref, when)
            return Attempt(due.dossier_id, due.dossier_key, ref, due.amount, CREATED, when, None)
        for column in (p.audit.created, p.audit.updated):
            if column:
                values[column] = when
        with self.engine.begin() as conn:
            insert(conn, p.table, p.id, p.ids, values)
        return Attempt(due.dossier_id, due.dossier_key, ref, due.amount, CREATED, when, None)

    def _write_on_fees(self, due: Due, ref: str, when: str) -> None:
        """The attempt written on the unpaid fee rows of its stage (``payments.on_fees``)."""
        p, f = self.schema.payments, self.schema.fees
        with self.engine.begin() as conn:
            n, q = self._names(conn), quoter(conn)
            unpaid, unpaid_params = self._unpaid(n["f_paid"])
            bump = f", {q(p.audit.updated)} = :t" if p.audit.updated and p.audit.updated != p.created else ""
            moved = conn.execute(
                text(
                    f"UPDATE {n['P']} SET {n['p_ref']} = :r, {n['p_state']} = :created,"
                    f" {n['p_created']} = :t, {n['p_settled']} = NULL{bump}"
                    f" WHERE {n['f_dossier']} = :h AND {unpaid}"
                    f" AND {self._coll(conn)} = :stage"
                ),
                {"r": ref, "created": self._from_canonical[CREATED], "t": when, "h": due.dossier_id,
                 "stage": due.stage, **unpaid_params, **self._coll_params()},
            ).rowcount  # fmt: skip
            if moved < 1:
                raise ValueError(
                    f"{f.table}: dossier {due.dossier_key} has no unpaid fee of stage {due.stage!r} to bill"
                )

    def apply_paid(self, ref: str, transaction: str, bank: str, when: str | None = None) -> bool:
        """Mark the attempt paid, the dossier's fees of the attempt's stage paid (up front, or
        after processing: its reference says which) and bump the dossier, in one transaction;
        False (nothing changed) when the attempt is unknown or already paid."""
        stamp = now_local_iso()
        with self.engine.begin() as conn:
            n = self._names(conn)
            # The guarded write comes first: it takes the write lock, so of two concurrent appliers
            # (a callback and a poll) one moves the row and the other sees rowcount 0.
            moved = conn.execute(
                text(
                    f"UPDATE {n['P']} SET {n['p_state']} = :paid, {n['p_txn']} = :g, {n['p_bank']} = :b,"
                    f" {n['p_settled']} = :t WHERE {n['p_ref']} = :r AND {n['p_state']} != :paid"
                ),
                {
                    "paid": self._from_canonical[PAID],
                    "g": transaction,
                    "b": bank,
                    "t": when or stamp,
                    "r": ref,
                },
            ).rowcount
            if moved < 1:  # one row an attempt; on_fees: every fee row it billed
                return False
            dossier = (
                conn.execute(
                    text(f"SELECT {n['p_dossier']} FROM {n['P']} WHERE {n['p_ref']} = :r"), {"r": ref}
                )
                .scalars()
                .first()
            )
            unpaid, unpaid_params = self._unpaid(n["f_paid"])
            conn.execute(
                text(
                    f"UPDATE {n['F']} SET {n['f_paid']} = :yes WHERE {n['f_dossier']} = :h"
                    f" AND {unpaid} AND {self._coll(conn)} = :stage"
                ),
                {"h": dossier, "yes": self.schema.fees.paid_yes, **unpaid_params, **self._coll_params(),
                 "stage": self.stage_of(ref)},
            )  # fmt: skip
            if n["d_updated"]:
                conn.execute(
                    text(f"UPDATE {n['D']} SET {n['d_updated']} = :t WHERE {n['d_id']} = :h"),
                    {"t": stamp, "h": dossier},
                )
        return True

    def mark_failed(self, ref: str, when: str | None = None) -> bool:
        """created → failed; never touches a paid (or already failed) attempt."""
        with self.engine.begin() as conn:
            n = self._names(conn)
            moved = conn.execute(
                text(
                    f"UPDATE {n['P']} SET {n['p_state']} = :failed, {n['p_settled']} = :t"
                    f" WHERE {n['p_ref']} = :r AND {n['p_state']} = :created"
                ),
                {
                    "failed": self._from_canonical[FAILED],
                    "created": self._from_canonical[CREATED],
                    "t": when or now_local_iso(),
                    "r": ref,
                },
            ).rowcount
        return bool(moved >= 1)

    def request_payment(self, from_status: str) -> str | None:
        """Play the one-stop system asking an applicant to pay now (the demo and tests do): the
        first dossier in ``from_status`` with fees collected up front (> 0) gets those fees
        unpaid and the paying status, its audit column bumped, in one transaction. Its local
        number, or None when no dossier fits."""
        with self.engine.begin() as conn:
            n = self._names(conn)
            row = conn.execute(
                text(
                    f"SELECT h.{n['d_id']}, h.{n['d_key']} FROM {n['D']} h WHERE h.{n['d_status']} = :s"
                    f" AND EXISTS (SELECT 1 FROM {n['F']} l WHERE l.{n['f_dossier']} = h.{n['d_id']}"
                    f" AND {self._coll(conn, 'l.')} = :ahead AND l.{n['f_amount']} > 0)"
                    f" ORDER BY h.{n['d_id']}"
                ),
                {"s": from_status, **self._coll_params()},
            ).first()
            if row is None:
                return None
            conn.execute(
                text(
                    f"UPDATE {n['F']} SET {n['f_paid']} = :no WHERE {n['f_dossier']} = :h"
                    f" AND {self._coll(conn)} = :ahead"
                ),
                {"no": self.schema.fees.unpaid[0], "h": row[0], **self._coll_params()},
            )
            bump = f", {n['d_updated']} = :t" if n["d_updated"] else ""
            conn.execute(
                text(f"UPDATE {n['D']} SET {n['d_status']} = :paying{bump} WHERE {n['d_id']} = :h"),
                {"paying": self.schema.statuses.paying, "t": now_local_iso(), "h": row[0]},
            )
        return str(row[1])

    def record_receipt(self, ref: str, path: str) -> None:
        with self.engine.begin() as conn:
            n = self._names(conn)
            conn.execute(
                text(f"UPDATE {n['P']} SET {n['p_receipt']} = :p WHERE {n['p_ref']} = :r"),
                {"p": path, "r": ref},
            )


__all__ = ["CREATED", "FAILED", "PAID", "Attempt", "Due", "PaymentLedger", "now_local_iso", "stage_of"]
