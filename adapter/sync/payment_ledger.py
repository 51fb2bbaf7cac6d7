"""The province side of payments: attempts (``thanh_toan``), fees (``le_phi``) and the dossier's
``updated_at``, each change in one province transaction.

Shared by the payment job (INIT, QUERY, GET_BILL) and the inbound callback endpoint, so a paid
result is applied by one function whichever way it arrives, and at most once: the attempt row moves
to ``paid`` only if it is not already, and the fees and dossier only change when it did.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from adapter.contract import VN_TZ, parse_local_iso, parse_wire_datetime

PAYING_STATUS = "paying"
PAID_AHEAD = "thu_truoc"
PAID_AFTER = "thu_sau"  # collected after processing: billed once nothing is owed up front
STAGES = (PAID_AHEAD, PAID_AFTER)
_STAGE_TAG = {PAID_AHEAD: "TT", PAID_AFTER: "TS"}  # in the reference: which fees an attempt is for


def stage_of(ref: str) -> str:
    """The collection stage an attempt's reference was made for (``…-TS…``: after processing);
    references made before stages existed were all up front."""
    return PAID_AFTER if ref.rsplit("-", 1)[-1].startswith(_STAGE_TAG[PAID_AFTER]) else PAID_AHEAD


def now_local_iso() -> str:
    """Province time as the sample schema stores it: ISO 8601, local, seconds."""
    return datetime.now(VN_TZ).replace(tzinfo=None, microsecond=0).isoformat()


@dataclass(frozen=True)
class Due:
    """A dossier that asks for payment: the amount of its unpaid fees of one stage, up front
    (``thu_truoc``) first, then those collected after processing (``thu_sau``)."""

    ho_so_id: int
    so_ho_so: str
    amount: int
    stage: str = PAID_AHEAD


@dataclass(frozen=True)
class Attempt:
    ho_so_id: int
    so_ho_so: str
    ma_tham_chieu: str
    so_tien: int
    trang_thai: str
    thoi_gian_tao: str
    bien_lai: str | None

    def age_s(self, now: datetime | None = None) -> float:
        now = now or datetime.now(VN_TZ)
        return (now - parse_local_iso(self.thoi_gian_tao)).total_seconds()


_ATTEMPT_SQL = (
    "SELECT t.ho_so_id, h.so_ho_so, t.ma_tham_chieu, t.so_tien, t.trang_thai, t.thoi_gian_tao, t.bien_lai"
    " FROM thanh_toan t JOIN ho_so h ON h.id = t.ho_so_id"
)


def _attempt(row: Any) -> Attempt:
    return Attempt(
        int(row.ho_so_id),
        str(row.so_ho_so),
        str(row.ma_tham_chieu),
        int(row.so_tien),
        str(row.trang_thai),
        str(row.thoi_gian_tao),
        row.bien_lai,
    )


class PaymentLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ reads

    def due(self, retry_after_s: float = 0) -> list[Due]:
        """Dossiers in ``paying`` with unpaid fees (sum > 0), no attempt still ``created`` and no
        attempt failed less than ``retry_after_s`` ago (a refusing platform is not asked again
        every cycle). One stage at a time: what is owed up front, then what is owed after
        processing; one open attempt per dossier is what keeps anything from being billed twice."""
        cutoff = (datetime.now(VN_TZ) - timedelta(seconds=retry_after_s)).replace(tzinfo=None, microsecond=0)
        sql = text(
            "SELECT h.id, h.so_ho_so,"
            " SUM(CASE WHEN l.hinh_thuc_thu = :ahead THEN l.so_tien ELSE 0 END) AS ahead,"
            " SUM(CASE WHEN l.hinh_thuc_thu = :after THEN l.so_tien ELSE 0 END) AS after"
            " FROM ho_so h JOIN le_phi l ON l.ho_so_id = h.id AND l.da_thanh_toan = 0"
            " AND l.hinh_thuc_thu IN (:ahead, :after)"
            " WHERE h.trang_thai = :paying AND NOT EXISTS ("
            "   SELECT 1 FROM thanh_toan t WHERE t.ho_so_id = h.id AND (t.trang_thai = 'created'"
            "   OR (t.trang_thai = 'failed' AND COALESCE(t.thoi_gian_ket_qua, t.thoi_gian_tao) > :cutoff)))"
            " GROUP BY h.id, h.so_ho_so HAVING SUM(l.so_tien) > 0 ORDER BY h.id"
        )
        params = {
            "ahead": PAID_AHEAD,
            "after": PAID_AFTER,
            "paying": PAYING_STATUS,
            "cutoff": cutoff.isoformat(),
        }
        with self.engine.connect() as conn:
            rows = conn.execute(sql, params)
            return [
                Due(int(r.id), str(r.so_ho_so), int(r.ahead), PAID_AHEAD)
                if int(r.ahead) > 0
                else Due(int(r.id), str(r.so_ho_so), int(r.after), PAID_AFTER)
                for r in rows
                if int(r.ahead) > 0 or int(r.after) > 0
            ]

    def amount_due(self, so_ho_so: str) -> int | None:
        """What the dossier owes now (up front first); None when the dossier is unknown."""
        owed = self.owed(so_ho_so)
        return None if owed is None else owed[1]

    def owed(self, so_ho_so: str) -> tuple[str, int] | None:
        """The stage the dossier owes now and its amount (``(thu_truoc, 0)`` when nothing is owed);
        None when the dossier is unknown."""
        with self.engine.connect() as conn:
            row = conn.execute(text("SELECT id FROM ho_so WHERE so_ho_so = :c"), {"c": so_ho_so}).first()
            if row is None:
                return None
            sums: dict[str, int] = dict(
                conn.execute(
                    text(
                        "SELECT hinh_thuc_thu, COALESCE(SUM(so_tien), 0) FROM le_phi"
                        " WHERE ho_so_id = :h AND da_thanh_toan = 0 AND hinh_thuc_thu IN (:ahead, :after)"
                        " GROUP BY hinh_thuc_thu"
                    ),
                    {"h": row.id, "ahead": PAID_AHEAD, "after": PAID_AFTER},
                ).all()
            )
        ahead, after = int(sums.get(PAID_AHEAD, 0)), int(sums.get(PAID_AFTER, 0))
        return (PAID_AHEAD, ahead) if ahead > 0 or after <= 0 else (PAID_AFTER, after)

    def attempt(self, ref: str) -> Attempt | None:
        with self.engine.connect() as conn:
            row = conn.execute(text(f"{_ATTEMPT_SQL} WHERE t.ma_tham_chieu = :r"), {"r": ref}).first()
            return _attempt(row) if row is not None else None

    def attempts(self, state: str) -> list[Attempt]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(f"{_ATTEMPT_SQL} WHERE t.trang_thai = :s ORDER BY t.id"), {"s": state})
            return [_attempt(r) for r in rows]

    def without_receipt(self) -> list[Attempt]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    f"{_ATTEMPT_SQL} WHERE t.trang_thai = 'paid' AND (t.bien_lai IS NULL OR t.bien_lai = '')"
                    " ORDER BY t.id"
                )
            )
            return [_attempt(r) for r in rows]

    # ------------------------------------------------------------------ reconciliation reads

    _RECONCILE_SQL = (
        "SELECT t.ma_tham_chieu, CASE WHEN h.ma_ho_so_qg IS NOT NULL AND h.ma_ho_so_qg <> ''"
        " THEN h.ma_ho_so_qg ELSE h.so_ho_so END AS ma_ho_so, t.so_tien, t.trang_thai,"
        " t.thoi_gian_tao, t.thoi_gian_ket_qua, t.ma_giao_dich, h.ma_don_vi AS agency"
        " FROM thanh_toan t JOIN ho_so h ON h.id = t.ho_so_id"
    )

    def attempts_settled_between(self, since: str, until: str) -> Iterator[dict[str, Any]]:
        """Attempts whose result (or, still open, creation) falls on the days ``since``..``until``
        (ISO dates, inclusive), by reference, streamed."""
        sql = text(
            f"{self._RECONCILE_SQL} WHERE substr(COALESCE(t.thoi_gian_ket_qua, t.thoi_gian_tao), 1, 10)"
            " BETWEEN :since AND :until ORDER BY t.ma_tham_chieu"
        )
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=2000).execute(
                sql, {"since": since, "until": until}
            )
            names = list(result.keys())
            for row in result:
                yield dict(zip(names, row, strict=True))

    def attempts_by_ref(self, refs: list[str]) -> dict[str, dict[str, Any]]:
        if not refs:
            return {}
        marks = ", ".join(f":r{n}" for n in range(len(refs)))
        sql = text(f"{self._RECONCILE_SQL} WHERE t.ma_tham_chieu IN ({marks})")
        with self.engine.connect() as conn:
            result = conn.execute(sql, {f"r{n}": ref for n, ref in enumerate(refs)})
            names = list(result.keys())
            rows = [dict(zip(names, row, strict=True)) for row in result]
        return {str(row["ma_tham_chieu"]): row for row in rows}

    # ------------------------------------------------------------------ writes

    def create_attempt(self, due: Due, when: str) -> Attempt:
        """Write the attempt ``created`` with a fresh reference, committed before anything is sent,
        so a crash between here and INIT never loses the reference (the poll finds it)."""
        ref = f"{due.so_ho_so}-{_STAGE_TAG[due.stage]}{uuid.uuid4().hex[:12].upper()}"
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO thanh_toan (ho_so_id, ma_tham_chieu, so_tien, trang_thai, thoi_gian_tao)"
                    " VALUES (:h, :r, :s, 'created', :t)"
                ),
                {"h": due.ho_so_id, "r": ref, "s": due.amount, "t": when},
            )
        return Attempt(due.ho_so_id, due.so_ho_so, ref, due.amount, "created", when, None)

    def apply_paid(self, ref: str, transaction: str, bank: str, when: str | None = None) -> bool:
        """Mark the attempt paid, the dossier's fees of the attempt's stage paid (up front, or
        after processing: its reference says which) and bump the dossier, in one transaction;
        False (nothing changed) when the attempt is unknown or already paid."""
        stamp = now_local_iso()
        with self.engine.begin() as conn:
            # The guarded write comes first: it takes the write lock, so of two concurrent appliers
            # (a callback and a poll) one moves the row and the other sees rowcount 0.
            moved = conn.execute(
                text(
                    "UPDATE thanh_toan SET trang_thai = 'paid', ma_giao_dich = :g, ngan_hang = :b,"
                    " thoi_gian_ket_qua = :t WHERE ma_tham_chieu = :r AND trang_thai != 'paid'"
                ),
                {"g": transaction, "b": bank, "t": when or stamp, "r": ref},
            ).rowcount
            if moved != 1:
                return False
            row = conn.execute(
                text("SELECT ho_so_id FROM thanh_toan WHERE ma_tham_chieu = :r"), {"r": ref}
            ).one()
            conn.execute(
                text(
                    "UPDATE le_phi SET da_thanh_toan = 1"
                    " WHERE ho_so_id = :h AND da_thanh_toan = 0 AND hinh_thuc_thu = :ahead"
                ),
                {"h": row.ho_so_id, "ahead": stage_of(ref)},
            )
            conn.execute(
                text("UPDATE ho_so SET updated_at = :t WHERE id = :h"), {"t": stamp, "h": row.ho_so_id}
            )
        return True

    def mark_failed(self, ref: str, when: str | None = None) -> bool:
        """``created`` → ``failed``; never touches a paid (or already failed) attempt."""
        with self.engine.begin() as conn:
            moved = conn.execute(
                text(
                    "UPDATE thanh_toan SET trang_thai = 'failed', thoi_gian_ket_qua = :t"
                    " WHERE ma_tham_chieu = :r AND trang_thai = 'created'"
                ),
                {"t": when or now_local_iso(), "r": ref},
            ).rowcount
        return bool(moved == 1)

    def record_receipt(self, ref: str, path: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text("UPDATE thanh_toan SET bien_lai = :p WHERE ma_tham_chieu = :r"), {"p": path, "r": ref}
            )


def wire_to_local_iso(value: str) -> str | None:
    """``yyyyMMddHHmmss`` → the province's ISO local form; None when empty or malformed."""
    try:
        parsed = parse_wire_datetime(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=None).isoformat() if parsed is not None else None
