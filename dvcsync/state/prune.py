"""Pruning: personal data stripped from settled rows past ``keep_days``, refused bodies deleted."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    delete,
    select,
    update,
)

from ._base import StoreBase
from .kinds import INBOX_SETTLED, OUTBOX_SETTLED, InboxKind, InboxState
from .records import dumps, payload_hash
from .tables import INBOX_T, OUTBOX_T, REFUSAL_T

# Rows a pruning transaction rewrites: short enough never to hold the write lock for long.
PRUNE_BATCH = 1000

# Keys a pruned stub may keep: codes, statuses, dates and amounts, none of them about a person.
# An allow-list, so a field added to a contract later is dropped until someone says it is safe.
STUB_KEYS = (
    "MaHoSo",
    "MaHoSoDonVi",
    "SoBienNhan",
    "MaTTHC",
    "MaLinhVuc",
    "LoaiDoiTuong",
    "TrangThaiHoSo",
    "TrangThai",
    "NgayNopHoSo",
    "NgayTiepNhan",
    "NgayHenTra",
    "NgayTra",
    "NgayKetThucXuLy",
    "NgayTuChoi",
    "NgayXuLy",
    "KenhThucHien",
    "HinhThuc",
    "DonViXuLy",
    "MaThamChieu",
    "MaGiaoDich",
    "MaDoiTac",
    "MaNganHang",
    "MaLoi",
    "SoTien",
    "MaTienTe",
    "ThoiGianGD",
)
_PRUNED_PREFIX = '{"pruned":true'


def pruned_stub(raw: str, key: str, digest: str | None = None, *, key_name: str = "MaHoSo") -> dict[str, Any]:
    """What a settled payload keeps once pruned: a ``pruned`` marker (first, so a stub is
    recognised by its text), the record's key, the hash of the full payload (the stored one, or
    computed here before stripping), the allow-listed scalar codes (never a name, ID number,
    phone, e-mail or free text) and, of a history batch, its
    step keys and how many entries it held."""
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        payload = None
    if digest is None:
        digest = payload_hash(payload) if payload is not None else hashlib.sha256(raw.encode()).hexdigest()
    stub: dict[str, Any] = {"pruned": True, key_name: key, "hash": digest}
    if isinstance(payload, dict):
        stub.update(
            (k, payload[k]) for k in STUB_KEYS if isinstance(payload.get(k), str | int | float | bool)
        )
        keys = payload.get("keys")
        if isinstance(keys, list) and all(isinstance(k, str | int) for k in keys):
            stub["keys"] = keys
            entries = payload.get("entries")
            stub["entry_count"] = len(entries) if isinstance(entries, list) else 0
    return stub


_OUTBOX_PRUNE = (
    update(OUTBOX_T).where(OUTBOX_T.c.id == bindparam("p_id")).values(payload=bindparam("p_payload"))
)
_INBOX_PRUNE = update(INBOX_T).where(INBOX_T.c.id == bindparam("p_id")).values(payload=bindparam("p_payload"))


class PruneOps(StoreBase):
    """``db prune``: settled rows stripped, refused bodies deleted, a batch a transaction."""

    def prune(self, keep_days: float, now: float | None = None, batch: int = PRUNE_BATCH) -> dict[str, int]:
        """Strip personal data from settled rows older than ``keep_days``: delivered (``done``)
        and superseded outbox entries, and inbox events applied, acknowledged or rejected. Each
        keeps a stub of codes, status, dates and the hash of what it held (``pruned_stub``), so
        reconciliation can still compare; its times stay as they were. Pending, in-flight and
        dead entries are never touched: they may still be sent. Refused inbound bodies not seen
        for ``keep_days`` are deleted (``_prune_refusals``).

        Works ``batch`` rows a transaction, so a large outbox never holds the write lock for
        long; an interrupted prune leaves whole batches done, and the next one takes the rest
        (a stub is never selected again). Returns the rows pruned by what they were."""
        now = time.time() if now is None else now
        cutoff = now - keep_days * 86400.0
        counts = {"outbox_done": 0, "outbox_superseded": 0, "inbox": 0}
        for state in OUTBOX_SETTLED:
            last = 0
            while True:
                done, last = self._prune_outbox_batch(state, cutoff, last, batch)
                counts[f"outbox_{state}"] += done
                if last == 0:
                    break
        refusals = self._prune_refusals(cutoff, batch)  # before the inbox: deleted, not stubbed
        last = 0
        while True:
            done, last = self._prune_inbox_batch(cutoff, last, batch)
            counts["inbox"] += done
            if last == 0:
                break
        counts.update(refusals)
        return counts

    def _prune_refusals(self, cutoff: float, batch: int) -> dict[str, int]:
        """Refused inbound bodies not seen since ``cutoff`` go: the aggregates
        (``inbound_refusal``) and the one-row-per-refusal digests earlier versions kept in the inbox
        (``<MaThamChieu>#refused-<sha256>``). Counted only when there were some."""
        counts: dict[str, int] = {}
        legacy = and_(
            INBOX_T.c.kind == InboxKind.PAYMENT_RESULT,
            INBOX_T.c.state == InboxState.REJECTED,
            INBOX_T.c.natural_key.contains("#refused-"),
            INBOX_T.c.updated_at < cutoff,
        )
        for name, table, where in (
            ("inbound_refusals", REFUSAL_T, REFUSAL_T.c.last_seen < cutoff),
            ("inbox_refused", INBOX_T, legacy),
        ):
            removed = 0
            while True:
                with self.engine.begin() as conn:
                    ids = conn.execute(select(table.c.id).where(where).limit(batch)).scalars().all()
                    if ids:
                        conn.execute(delete(table).where(table.c.id.in_(ids)))
                if not ids:
                    break
                removed += len(ids)
            if removed:
                counts[name] = removed
        return counts

    def _prune_outbox_batch(self, state: str, cutoff: float, after: int, batch: int) -> tuple[int, int]:
        """One transaction: up to ``batch`` entries after id ``after``. Returns ``(pruned, last id)``,
        last id 0 when nothing was left."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(OUTBOX_T.c.id, OUTBOX_T.c.record_key, OUTBOX_T.c.payload, OUTBOX_T.c.payload_hash)
                .where(
                    and_(
                        OUTBOX_T.c.state == state,
                        OUTBOX_T.c.updated_at < cutoff,
                        OUTBOX_T.c.id > after,
                        ~OUTBOX_T.c.payload.startswith(_PRUNED_PREFIX),
                    )
                )
                .order_by(OUTBOX_T.c.id)
                .limit(batch)
            ).all()
            if not rows:
                return 0, 0
            conn.execute(
                _OUTBOX_PRUNE,
                [
                    {
                        "p_id": row.id,
                        "p_payload": dumps(pruned_stub(row.payload, row.record_key, row.payload_hash)),
                    }
                    for row in rows
                ],
            )
        return len(rows), int(rows[-1].id)

    def _prune_inbox_batch(self, cutoff: float, after: int, batch: int) -> tuple[int, int]:
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(INBOX_T.c.id, INBOX_T.c.natural_key, INBOX_T.c.payload)
                .where(
                    and_(
                        INBOX_T.c.state.in_(INBOX_SETTLED),
                        INBOX_T.c.updated_at < cutoff,
                        INBOX_T.c.id > after,
                        ~INBOX_T.c.payload.startswith(_PRUNED_PREFIX),
                    )
                )
                .order_by(INBOX_T.c.id)
                .limit(batch)
            ).all()
            if not rows:
                return 0, 0
            conn.execute(
                _INBOX_PRUNE,
                [
                    {
                        "p_id": row.id,
                        "p_payload": dumps(pruned_stub(row.payload, row.natural_key, key_name="natural_key")),
                    }
                    for row in rows
                ],
            )
        return len(rows), int(rows[-1].id)
