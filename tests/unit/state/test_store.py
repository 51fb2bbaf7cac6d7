"""The state store on a real SQLite file: only real changes are enqueued, everything of a page
commits together, and a failure midway leaves nothing half-written."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from dvcsync.state import MappedRecord, Outcome, StateStore


def _record(
    key: str, status: str = "4", steps: int = 1, errors: list[dict[str, str]] | None = None
) -> MappedRecord:
    dossier = {"MaHoSo": key, "TrangThaiHoSo": status, "ChuHoSo": "Nguyễn Văn An"}
    return MappedRecord(
        record_key=key,
        source_id=int(key.rsplit("-", 1)[-1]),
        source_updated_at="2025-08-01T10:00:00",
        dossier=None if errors else dossier,
        steps=[
            (str(i), {"MaHoSo": key, "NoiDungXuLy": f"bước {i}", "TrangThai": "4"})
            for i in range(1, steps + 1)
        ],
        errors=errors or [],
    )


@pytest.fixture
def store(state_at_head: StateStore) -> StateStore:
    return state_at_head  # a copy of the session's migrated template (tests/unit/conftest.py)


def test_first_page_enqueues_everything_and_advances_the_cursor(store: StateStore) -> None:
    counts = store.enqueue_page(
        [_record("A-1"), _record("A-2", steps=12)],
        cursor_name="c",
        watermark="2025-08-01T10:00:00",
        last_key=2,
    )
    assert (counts.dossiers_enqueued, counts.steps_enqueued) == (2, 13)
    assert store.cursor("c") == ("2025-08-01T10:00:00", 2)
    assert store.backlog() == {"pending:dossier": 2, "pending:steps": 3}  # 12 steps → 10 + 2 per call


def test_unchanged_records_enqueue_nothing(store: StateStore) -> None:
    store.enqueue_page([_record("A-1")], cursor_name="c", watermark="w1", last_key=1)
    again = store.enqueue_page([_record("A-1")], cursor_name="c", watermark="w2", last_key=1)
    assert (again.unchanged, again.dossiers_enqueued, again.steps_enqueued) == (1, 0, 0)
    assert store.count("outbox") == 2 and store.cursor("c") == ("w2", 1)


def test_a_change_enqueues_the_new_version_and_only_new_steps(store: StateStore) -> None:
    store.enqueue_page([_record("A-1", steps=2)], cursor_name="c", watermark="w1", last_key=1)
    changed = store.enqueue_page(
        [_record("A-1", status="9", steps=3)], cursor_name="c", watermark="w2", last_key=1
    )
    assert (changed.dossiers_enqueued, changed.steps_enqueued) == (1, 1)
    due = store.due("dossier", 10)
    # the older pending version is superseded: only the newest replace is sent
    assert [e.payload["TrangThaiHoSo"] for e in due] == ["9"]


def test_quarantine_and_release(store: StateStore) -> None:
    bad = _record(
        "A-1",
        errors=[
            {
                "record": "A-1",
                "field": "NgayTiepNhan",
                "source": "ngay_tiep_nhan",
                "value": "'2025-02-30'",
                "reason": "not a possible date-time",
            }
        ],
    )
    counts = store.enqueue_page([bad, _record("A-2")], cursor_name="c", watermark="w", last_key=2)
    assert (counts.quarantined, counts.dossiers_enqueued) == (1, 1)
    assert store.count("quarantine") == 1
    fixed = store.enqueue_page([_record("A-1")], cursor_name="c", watermark="w2", last_key=1)
    assert (fixed.released, fixed.dossiers_enqueued) == (1, 1)
    assert store.count("quarantine") == 0


def test_a_failure_midway_through_a_page_writes_nothing(store: StateStore) -> None:
    store.enqueue_page([_record("A-1")], cursor_name="c", watermark="w1", last_key=1)
    calls = {"n": 0}

    def explode(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOX"):
            calls["n"] += 1
            raise RuntimeError("disk full")

    event.listen(store.engine, "before_cursor_execute", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        store.enqueue_page([_record("A-2"), _record("A-3")], cursor_name="c", watermark="w2", last_key=3)
    event.remove(store.engine, "before_cursor_execute", explode)
    assert calls["n"] == 1
    assert store.cursor("c") == ("w1", 1)  # the cursor did not move
    assert store.count("dossier_state") == 1 and store.count("outbox") == 2 and store.count("step_state") == 1
    retry = store.enqueue_page([_record("A-2"), _record("A-3")], cursor_name="c", watermark="w2", last_key=3)
    assert retry.dossiers_enqueued == 2  # redone once, completely


def test_outcomes(store: StateStore) -> None:
    store.enqueue_page([_record("A-1"), _record("A-2")], cursor_name="c", watermark="w", last_key=2)
    first, second = store.due("dossier", 10)
    assert not first.on_portal
    store.record_outcomes(
        [
            Outcome(first.id, first.record_key, "dossier", "done", payload_hash=first.payload_hash),
            Outcome(second.id, second.record_key, "dossier", "retry", error="HTTP 503", next_attempt_at=2e9),
        ]
    )
    assert store.due("dossier", 10) == []  # the retry is not due yet
    steps = store.due("steps", 10)
    assert [s.record_key for s in steps] == ["A-1"]  # history only for a dossier the portal has
    store.mark_in_flight([steps[0].id])
    assert store.due("steps", 10)[0].verify_first
    assert store.backlog() == {"done:dossier": 1, "pending:dossier": 1, "pending:steps": 2}


@pytest.mark.parametrize(
    "entries",
    [
        [{"MaHoSo": "A-1", "NoiDungXuLy": 'chuyển ,"entries":[ "tiếp" ]}'}],
        [{"MaHoSo": "A-1", "NoiDungXuLy": "một"}, {"MaHoSo": "A-1", "NoiDungXuLy": "hai ]}"}],
    ],
)
def test_history_is_cut_from_the_stored_text_exactly_as_parsing_would_give_it(
    entries: list[dict[str, Any]],
) -> None:
    import json

    from dvcsync.state import DueEntry
    from dvcsync.state.store import dumps

    keys = [f'k"{n},"entries":[' for n in range(len(entries))]  # separators inside the keys too
    entry = DueEntry(1, "steps", "A-1", dumps({"keys": keys, "entries": entries}), "h", 0, True)
    cut_keys, body = entry.history
    assert cut_keys == keys
    assert json.loads(f"[{body}]") == entries
    # text written in another key order (an older or foreign writer) is parsed instead
    other = DueEntry(2, "steps", "A-1", dumps({"entries": entries, "keys": keys}), "h", 0, True)
    assert other.history[0] == keys and json.loads(f"[{other.history[1]}]") == entries


@pytest.mark.parametrize("kind", ["dossier", "status"])
def test_a_dossier_that_returns_to_an_earlier_version_is_sent_again(store: StateStore, kind: str) -> None:
    """A → B → A: the portal must end at A. Keyed by the payload's hash alone, the return to A
    found A's old (delivered) entry and was never sent, leaving B on the portal."""

    def version(status: str, watermark: str) -> None:
        record = _record("A-1", status=status, steps=0)
        record.kind = kind
        store.enqueue_page([record], cursor_name="c", watermark=watermark, last_key=1)
        [entry] = store.due(kind, 10)
        assert entry.payload["TrangThaiHoSo"] == status
        store.record_outcomes(
            [Outcome(entry.id, entry.record_key, kind, "done", payload_hash=entry.payload_hash)]
        )

    version("4", "w1")
    version("5", "w2")
    version("4", "w3")  # back to the first version: sent again
    assert store.backlog() == {f"done:{kind}": 3}


def test_delivered_counts_the_dossiers_done_and_the_history_acknowledged(store: StateStore) -> None:
    store.enqueue_page([_record("A-1", steps=2), _record("A-2")], cursor_name=None, watermark="", last_key=0)
    assert store.delivered() == (0, 0)
    due = store.due("dossier", 10)
    store.record_outcomes([Outcome(due[0].id, due[0].record_key, "dossier", "done", due[0].payload_hash)])
    steps = store.due("steps", 10)
    assert [s.record_key for s in steps] == [due[0].record_key]
    store.record_outcomes(
        [Outcome(steps[0].id, steps[0].record_key, "steps", "done", step_keys=steps[0].history[0])]
    )
    assert store.delivered() == (1, len(steps[0].history[0]))
