"""``decide_page``, the decision of ``enqueue_page`` without a database: what changed is enqueued
(a new dossier, a changed one, new history entries), what is unchanged is counted, what does not
map goes into quarantine and what maps again leaves it."""

from __future__ import annotations

from typing import Any

from dvcsync.state import MappedRecord, OutboxKind, OutboxState, decide_page, payload_hash
from dvcsync.state.page import Known, history_rows, is_first_contact
from dvcsync.state.records import STEPS_PER_CALL

NOW = 1_700_000_000.0


def record(key: str = "HS1", status: str = "1", **extra: Any) -> MappedRecord:
    dossier = {"MaHoSo": key, "TrangThaiHoSo": status}
    return MappedRecord(key, 7, "2025-08-01T10:00:00", dossier, **extra)


def hash_of(rec: MappedRecord) -> str:
    return payload_hash(rec.dossier)


def test_a_new_dossier_is_enqueued_read_back_first_with_its_record() -> None:
    rec = record(steps=[("s1", {"n": 1})])
    decision = decide_page([rec], {}, {}, set(), NOW)
    assert (decision.counts.records, decision.counts.dossiers_enqueued, decision.counts.steps_enqueued) == (
        1,
        1,
        1,
    )
    dossier, steps = decision.outbox_rows
    assert dossier["kind"] == OutboxKind.DOSSIER and dossier["state"] == OutboxState.PENDING
    assert dossier["idem_key"] == f"dossier:HS1:{hash_of(rec)}" and dossier["verify_first"] is True
    assert steps["kind"] == OutboxKind.STEPS and steps["verify_first"] is True
    assert [s["record_key"] for s in decision.new_states] == ["HS1"] and decision.new_states[0][
        "status"
    ] == "1"
    assert decision.changed_states == [] and decision.superseded == []
    assert decision.new_steps == [
        {"record_key": "HS1", "step_key": "s1", "entry_hash": payload_hash({"n": 1}), "acked": False}
    ]


def test_an_unchanged_dossier_is_counted_and_nothing_is_written() -> None:
    rec = record(steps=[("s1", {"n": 1})])
    known = {"HS1": Known(hash_of(rec), hash_of(rec), True)}
    decision = decide_page([rec], known, {("HS1", "s1"): payload_hash({"n": 1})}, set(), NOW)
    assert decision.counts.unchanged == 1 and decision.outbox_rows == [] and decision.changed_states == []


def test_a_changed_dossier_replaces_the_pending_one_keyed_by_what_it_replaces() -> None:
    rec = record(status="2")
    known = {"HS1": Known("old", "old", True)}
    decision = decide_page([rec], known, {}, set(), NOW)
    (row,) = decision.outbox_rows
    assert row["idem_key"] == f"dossier:HS1:{hash_of(rec)}<old@{NOW!r}" and row["verify_first"] is False
    assert decision.superseded == ["HS1"] and decision.new_states == []
    assert decision.changed_states[0]["payload_hash"] == hash_of(rec)


def test_a_dossier_enqueued_but_never_acknowledged_is_still_a_first_contact() -> None:
    assert is_first_contact(None) and is_first_contact(Known("h"))
    assert not is_first_contact(Known("h", "h")) and not is_first_contact(Known("h", None, True))
    rec = record(status="2")
    (row,) = decide_page([rec], {"HS1": Known("old")}, {}, set(), NOW).outbox_rows
    assert row["verify_first"] is True


def test_history_only_new_entries_go_and_an_edited_one_is_counted_not_sent() -> None:
    rec = record(steps=[("s1", {"n": 1}), ("s2", {"n": 2}), ("s3", {"n": 3})])
    known = {"HS1": Known(hash_of(rec), hash_of(rec), True)}
    seen = {("HS1", "s1"): payload_hash({"n": 1}), ("HS1", "s2"): payload_hash({"n": "edited"})}
    decision = decide_page([rec], known, seen, set(), NOW)
    assert decision.counts.steps_changed == 1 and decision.counts.steps_enqueued == 1
    (row,) = decision.outbox_rows
    assert row["kind"] == OutboxKind.STEPS and row["payload"] == '{"keys":["s3"],"entries":[{"n":3}]}'
    assert decision.counts.dossiers_enqueued == 0 and decision.superseded == []


def test_history_goes_in_chunks_in_order() -> None:
    steps = [(f"s{i:02d}", {"n": i}) for i in range(STEPS_PER_CALL * 2 + 1)]
    rows = history_rows("HS1", steps, NOW, verify_first=False)
    assert [len(r["payload"].split('"n"')) - 1 for r in rows] == [STEPS_PER_CALL, STEPS_PER_CALL, 1]
    assert rows[0]["payload"].startswith('{"keys":["s00",') and rows[-1]["payload"].startswith(
        '{"keys":["s20"]'
    )


def test_a_record_that_does_not_map_is_quarantined_and_released_once_it_maps() -> None:
    failing = record(errors=[{"field": "MaTTHC", "error": "unknown"}])
    held = decide_page([failing], {}, {}, set(), NOW)
    assert held.counts.quarantined == 1 and held.quarantine == [(failing, False)] and held.outbox_rows == []
    again = decide_page([failing], {}, {}, {"HS1"}, NOW)
    assert again.quarantine == [(failing, True)]
    mapped = decide_page([record()], {}, {}, {"HS1"}, NOW)
    assert mapped.counts.released == 1 and mapped.quarantine == [("HS1", None)]
    assert mapped.counts.dossiers_enqueued == 1


def test_a_skipped_record_is_counted_and_leaves_the_quarantine_without_being_sent() -> None:
    skipped = record(skipped="no national equivalent")
    decision = decide_page([skipped], {}, {}, {"HS1"}, NOW)
    assert decision.counts.skipped == 1 and decision.quarantine == [("HS1", None)]
    assert decision.outbox_rows == [] and decision.new_states == []
    assert decide_page([skipped], {}, {}, set(), NOW).quarantine == []


def test_a_portal_submitted_dossier_is_enqueued_as_a_status_report() -> None:
    rec = record(kind=OutboxKind.STATUS)
    (row,) = decide_page([rec], {}, {}, set(), NOW).outbox_rows
    assert row["kind"] == OutboxKind.STATUS and row["idem_key"].startswith("status:HS1:")


def test_a_page_is_decided_in_order() -> None:
    records = [record("B"), record("A", errors=[{"e": "x"}]), record("C", skipped="x")]
    decision = decide_page(records, {}, {}, {"C"}, NOW)
    assert [r["record_key"] for r in decision.outbox_rows] == ["B"]
    assert [q[0] if isinstance(q[0], str) else q[0].record_key for q in decision.quarantine] == ["A", "C"]
    assert decision.counts.records == 3
