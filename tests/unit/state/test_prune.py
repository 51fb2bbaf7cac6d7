"""Pruning: settled payloads older than the retention keep codes, hashes and times only, no
personal data; what may still be sent is never touched; an interrupted prune is finished by the
next one."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from dvcsync.state import Inbox, MappedRecord, Outcome, StateStore, payload_hash
from dvcsync.state.store import DueEntry

DAY = 86400.0
T0 = 1_750_000_000.0  # when everything was enqueued and delivered
LATER = T0 + 31 * DAY  # a prune past the 30-day retention
PERSONAL = ("079204001234", "0912345678", "an.nguyen@example.vn", "Nguyễn Văn An", "Lê Thị Bình")


def _dossier(key: str, status: str = "4") -> dict[str, Any]:
    return {
        "MaHoSo": key,
        "MaTTHC": "1.001234",
        "TrangThaiHoSo": status,
        "NgayTiepNhan": "20250801100000",
        "ChuHoSo": "Nguyễn Văn An",
        "SoGiayToChuHoSo": "079204001234",
        "SoDienThoai": "0912345678",
        "Email": "an.nguyen@example.vn",
        "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "079204001234"}],
        "TrichYeuHoSo": "Cấp giấy phép cho Nguyễn Văn An, 0912345678",
    }


def _record(key: str, steps: int = 2) -> MappedRecord:
    return MappedRecord(
        record_key=key,
        source_id=int(key.rsplit("-", 1)[-1]),
        source_updated_at="2025-08-01T10:00:00",
        dossier=_dossier(key),
        steps=[
            (
                str(i),
                {
                    "MaHoSo": key,
                    "NguoiXuLy": "Lê Thị Bình",
                    "NoiDungXuLy": f"gọi 0912345678 lần {i}",
                    "TrangThai": "4",
                    "ThoiDiemXuLy": "20250801100000",
                },
            )
            for i in range(1, steps + 1)
        ],
    )


@pytest.fixture
def store(state_at_head: StateStore) -> StateStore:
    return state_at_head  # a copy of the session's migrated template (tests/unit/conftest.py)


def _deliver_all(store: StateStore, now: float) -> None:
    """Every pending entry answered ``done``, dossiers first (history waits for its dossier)."""
    for kind in ("dossier", "steps", "steps"):
        due = store.due(kind, 1000, now=now)
        store.record_outcomes(
            [
                Outcome(
                    e.id,
                    e.record_key,
                    kind,
                    "done",
                    payload_hash=e.payload_hash,
                    step_keys=e.history[0] if kind == "steps" else (),
                )
                for e in due
            ],
            now=now,
        )


def _text_cells(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"SELECT * FROM {table}").fetchall()
    return [cell for row in rows for cell in row if isinstance(cell, str)]


def _outbox(store: StateStore) -> dict[int, dict[str, Any]]:
    from sqlalchemy import select

    from dvcsync.state.store import OUTBOX_T

    with store.engine.connect() as conn:
        return {row.id: dict(row._mapping) for row in conn.execute(select(OUTBOX_T))}


@pytest.fixture
def settled(store: StateStore) -> StateStore:
    """Three dossiers: A-1 and A-2 delivered at T0 (and their history), A-3 dead, A-4 pending;
    inbox events in every state."""
    store.enqueue_page(
        [_record("A-1"), _record("A-2"), _record("A-3"), _record("A-4")],
        cursor_name="c",
        watermark="w",
        last_key=4,
        now=T0,
    )
    due = {e.record_key: e for e in store.due("dossier", 10, now=T0)}
    store.record_outcomes(
        [
            Outcome(due["A-1"].id, "A-1", "dossier", "done", payload_hash=due["A-1"].payload_hash),
            Outcome(due["A-2"].id, "A-2", "dossier", "done", payload_hash=due["A-2"].payload_hash),
            Outcome(due["A-3"].id, "A-3", "dossier", "dead", error="error_code -1: sai mã"),
            Outcome(due["A-4"].id, "A-4", "dossier", "retry", error="HTTP 503", next_attempt_at=T0 + 60),
        ],
        now=T0,
    )
    _deliver_all(store, T0)
    inbox = Inbox(store)
    for n, state in enumerate(("acknowledged", "applied", "rejected", "received", "conflict")):
        item = inbox.receive("portal_dossier", f"G-{n}", _dossier(f"G-{n}"))
        inbox.mark(item.id, state, local_key=f"L-{n}")
    _age_inbox(store, T0)
    return store


def _age_inbox(store: StateStore, when: float) -> None:
    from sqlalchemy import update

    from dvcsync.state.store import INBOX_T

    with store.begin() as conn:
        conn.execute(update(INBOX_T).values(updated_at=when, received_at=when))


def test_prune_strips_personal_data_from_settled_rows_only(settled: StateStore, tmp_path: Path) -> None:
    before = _outbox(settled)
    counts = settled.prune(30, now=LATER)
    assert counts == {"outbox_done": 4, "outbox_superseded": 0, "inbox": 3}

    after = _outbox(settled)
    for entry_id, row in after.items():
        old = before[entry_id]
        assert (row["state"], row["payload_hash"], row["updated_at"], row["created_at"]) == (
            old["state"],
            old["payload_hash"],
            old["updated_at"],
            old["created_at"],
        )
        if row["state"] != "done":  # dead and pending: exactly as they were
            assert row["payload"] == old["payload"]
            continue
        stub = json.loads(row["payload"])
        assert stub["pruned"] is True
        assert stub["MaHoSo"] == row["record_key"]
        assert stub["hash"] == row["payload_hash"] == payload_hash(json.loads(old["payload"]))
        if row["kind"] == "dossier":
            assert (stub["MaTTHC"], stub["TrangThaiHoSo"], stub["NgayTiepNhan"]) == (
                "1.001234",
                "4",
                "20250801100000",
            )
        else:
            assert stub["keys"] == json.loads(old["payload"])["keys"] and stub["entry_count"] == 2

    # nothing personal is left in any settled row; the dead and pending ones still hold theirs
    db = tmp_path / "state.db"
    settled_cells = [
        cell
        for row in after.values()
        if row["state"] == "done"
        for cell in row.values()
        if isinstance(cell, str)
    ]
    assert not [v for v in PERSONAL if any(v in cell for cell in settled_cells)]
    kept = {row["record_key"] for row in after.values() if "079204001234" in row["payload"]}
    assert kept == {"A-3", "A-4"}

    inbox = {
        row[0]: row for row in sqlite3.connect(db).execute("SELECT natural_key, state, payload FROM inbox")
    }
    for key, (_, state, payload) in inbox.items():
        body = json.loads(payload)
        if state in ("received", "conflict"):
            assert body == _dossier(key)
        else:
            assert body["pruned"] is True and body["natural_key"] == key and body["MaHoSo"] == key
            assert body["hash"] == payload_hash(_dossier(key))
            assert not [v for v in PERSONAL if v in payload]


def test_everything_settled_is_clean_after_pruning(store: StateStore, tmp_path: Path) -> None:
    """With no dead or pending entry, not one text cell of outbox or inbox holds personal data."""
    store.enqueue_page(
        [_record("A-1", steps=12), _record("A-2")], cursor_name="c", watermark="w", last_key=2, now=T0
    )
    _deliver_all(store, T0)
    inbox = Inbox(store)
    item = inbox.receive(
        "payment_result", "TT-1", {"MaThamChieu": "TT-1", "SoTien": 50000, "ThongTinGiaoDich": "0912345678"}
    )
    inbox.mark(item.id, "applied", local_key="A-1")
    _age_inbox(store, T0)
    assert store.backlog() == {"done:dossier": 2, "done:steps": 3}
    store.prune(30, now=LATER)
    cells = _text_cells(tmp_path / "state.db", "outbox") + _text_cells(tmp_path / "state.db", "inbox")
    assert cells and not [v for v in PERSONAL if any(v in cell for cell in cells)]
    with sqlite3.connect(tmp_path / "state.db") as conn:
        payment = json.loads(conn.execute("SELECT payload FROM inbox").fetchone()[0])
    assert (payment["MaThamChieu"], payment["SoTien"]) == ("TT-1", 50000)


def test_recent_rows_are_kept_and_pruning_twice_changes_nothing(settled: StateStore) -> None:
    assert settled.prune(30, now=T0 + 29 * DAY) == {"outbox_done": 0, "outbox_superseded": 0, "inbox": 0}
    settled.prune(30, now=LATER)
    once = _outbox(settled)
    assert settled.prune(30, now=LATER + DAY) == {"outbox_done": 0, "outbox_superseded": 0, "inbox": 0}
    assert _outbox(settled) == once


def test_superseded_versions_are_pruned_too(store: StateStore) -> None:
    store.enqueue_page([_record("A-1")], cursor_name="c", watermark="w1", last_key=1, now=T0)
    changed = _record("A-1")
    assert changed.dossier is not None
    changed.dossier["TrangThaiHoSo"] = "9"
    store.enqueue_page([changed], cursor_name="c", watermark="w2", last_key=1, now=T0)
    assert store.backlog()["superseded:dossier"] == 1
    counts = store.prune(30, now=LATER)
    assert counts["outbox_superseded"] == 1
    assert [e.payload["TrangThaiHoSo"] for e in store.due("dossier", 10, now=LATER)] == ["9"]


def test_readers_cope_with_stubs(settled: StateStore) -> None:
    settled.prune(30, now=LATER)
    assert [e["state"] for e in settled.entries_of("A-1")] == ["done", "done"]
    assert [d["record_key"] for d in settled.dead()] == ["A-3"]
    assert settled.backlog()["done:steps"] == 2
    # an event received again after pruning is found by its natural key, stub and all
    again = Inbox(settled).receive("portal_dossier", "G-0", _dossier("G-0"))
    assert again.state == "acknowledged" and again.payload["pruned"] is True
    # a stub read as a history entry: its keys, no entries
    stub = next(r for r in _outbox(settled).values() if r["kind"] == "steps" and r["state"] == "done")
    entry = DueEntry(stub["id"], "steps", stub["record_key"], stub["payload"], stub["payload_hash"], 1, True)
    assert entry.history == (["1", "2"], "")
    # the same payload enqueued again is still recognised by its idempotency key: not re-sent
    again_counts = settled.enqueue_page(
        [_record("A-1")], cursor_name="c", watermark="w", last_key=4, now=LATER
    )
    assert again_counts.unchanged == 1


def test_an_interrupted_prune_is_finished_by_the_next(
    settled: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = StateStore._prune_outbox_batch
    calls = {"n": 0}

    def dies_after_the_first_batch(self: StateStore, *args: Any) -> tuple[int, int]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as a kill between two transactions
        return real(self, *args)

    monkeypatch.setattr(StateStore, "_prune_outbox_batch", dies_after_the_first_batch)
    with pytest.raises(KeyboardInterrupt):
        settled.prune(30, now=LATER, batch=1)
    stubs = [r for r in _outbox(settled).values() if r["payload"].startswith('{"pruned":true')]
    assert len(stubs) == 1  # the first batch committed whole, nothing of the second
    monkeypatch.setattr(StateStore, "_prune_outbox_batch", real)

    counts = settled.prune(30, now=LATER, batch=1)
    assert counts == {"outbox_done": 3, "outbox_superseded": 0, "inbox": 3}
    rows = _outbox(settled).values()
    done = [r for r in rows if r["state"] == "done"]
    assert all(json.loads(r["payload"])["hash"] == r["payload_hash"] for r in done)
    assert not [r for r in done if "079204001234" in r["payload"]]
    assert settled.prune(30, now=LATER) == {"outbox_done": 0, "outbox_superseded": 0, "inbox": 0}
