"""The reconciliation's parts without a portal: periods, the working file, the merge's order
check, implied categories, the previous report's comparison, the retention."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path

import pytest

from dvcsync.reconcile import CATEGORIES, KEYS, Item, Period, parse_day, repairable
from dvcsync.reconcile.province_state import _merged
from dvcsync.reconcile.run import _drop_implied, latest_report, prune_reports
from dvcsync.reconcile.workbook import WorkBook


def test_dates_in_either_form_and_clear_refusals() -> None:
    assert parse_day("2026-11-01", "--since") == parse_day("01/11/2026", "--since") == date(2026, 11, 1)
    with pytest.raises(ValueError, match=r"--since '31/02/2026'"):
        parse_day("31/02/2026", "--since")
    with pytest.raises(ValueError, match="before --since"):
        Period(date(2026, 11, 2), date(2026, 11, 1))


def test_a_period_holds_its_days_inclusive_whatever_the_time_format() -> None:
    period = Period(date(2026, 11, 1), date(2026, 11, 30))
    assert period.contains("2026-11-01T00:00:00") and period.contains("2026-11-30 23:59:59")
    assert period.contains("2026-11-30") and not period.contains("2026-12-01T00:00:00")
    assert not period.contains(None) and not period.contains("")
    assert len(period.days()) == 30


def test_every_category_has_labels_and_the_repairable_ones_a_command() -> None:
    assert len(KEYS) == 17
    for key, cat in CATEGORIES.items():
        assert cat.label_vi and cat.label_en and cat.action_vi and cat.action_en
        assert cat.repair_command == (f"dvcsync reconcile repair {key}" if cat.repairable else None)
    assert set(repairable()) == {
        "missing_on_portal",
        "status_differs",
        "dates_differ",
        "fees_differ",
        "history_missing",
        "stale",
        "dead_letter",
        "paid_on_platform_only",
    }


def test_the_merge_pairs_by_code_and_refuses_streams_out_of_order() -> None:
    province = iter([{"k": "A"}, {"k": "C"}, {"k": "D"}])
    state = iter([{"k": "B"}, {"k": "C"}, {"k": "E"}])
    pairs = [(k, p is not None, s is not None) for k, p, s in _merged(province, state)]
    assert pairs == [
        ("A", True, False),
        ("B", False, True),
        ("C", True, True),
        ("D", True, False),
        ("E", False, True),
    ]
    with pytest.raises(RuntimeError, match="province rows are not in code order"):
        list(_merged(iter([{"k": "B"}, {"k": "A"}]), iter([])))


def test_one_item_per_category_and_dossier_evidence_merged(tmp_path: Path) -> None:
    book = WorkBook(tmp_path / "work.sqlite", "s1")
    book.add(Item("paid_twice", "H1", {"payments": ["R1"]}, None, None, "2026-11-02T10:00:00"))
    book.add(Item("paid_twice", "H1", {"payments": ["R2"]}, None, None, "2026-11-01T10:00:00"))
    book.add(Item("stale", "H1", {"status": "processing"}, None, None, None))
    items = list(book.items())
    assert [(i.category, i.ma_ho_so) for i in items] == [("stale", "H1"), ("paid_twice", "H1")]
    assert items[1].province == {"payments": ["R1", "R2"]} and items[1].since == "2026-11-01T10:00:00"
    book.close(finished=True)
    assert not (tmp_path / "work.sqlite").exists()


def test_a_more_specific_finding_hides_the_implied_ones(tmp_path: Path) -> None:
    book = WorkBook(tmp_path / "work.sqlite", "s1")
    for category, key in [
        ("withdrawal_conflict", "W"),
        ("status_differs", "W"),
        ("stale", "W"),
        ("missing_on_portal", "M"),
        ("history_missing", "M"),
        ("dead_letter", "D"),
        ("stale", "D"),
        ("fees_differ", "D"),
        ("quarantined", "Q"),
        ("dates_differ", "Q"),
        ("stale", "S"),  # nothing more specific: stays
    ]:
        book.add(Item(category, key))
    assert _drop_implied(book) == 6
    left = sorted((i.category, i.ma_ho_so) for i in book.items())
    assert left == sorted(
        [
            ("withdrawal_conflict", "W"),
            ("missing_on_portal", "M"),
            ("dead_letter", "D"),
            ("quarantined", "Q"),
            ("stale", "S"),
        ]
    )
    book.close(finished=True)


def test_new_and_resolved_against_the_previous_report(tmp_path: Path) -> None:
    book = WorkBook(tmp_path / "work.sqlite", "s1")
    book.load_previous([Item("stale", "A", since="2026-10-01T00:00:00"), Item("stale", "B")])
    book.add(Item("stale", "A", since="2026-11-20T00:00:00"))
    book.add(Item("dead_letter", "C"))
    assert book.new_since_last() == [{"category": "dead_letter", "ma_ho_so": "C"}]
    assert book.resolved_since_last() == [{"category": "stale", "ma_ho_so": "B"}]
    still = next(i for i in book.items() if i.ma_ho_so == "A")
    assert still.since == "2026-10-01T00:00:00"  # open since the earlier report said so
    book.close(finished=True)


def test_an_interrupted_run_is_resumed_only_with_the_same_signature(tmp_path: Path) -> None:
    path = tmp_path / "work.sqlite"
    book = WorkBook(path, "period-1")
    book.add_candidates([("A", True, {}), ("B", True, {})])
    book.record_reads([("A", {"MaHoSo": "A"})])
    book.close(finished=False)
    again = WorkBook(path, "period-1")
    assert again.resumed and [k for k, _, _ in again.unread(10)] == ["B"]
    again.close(finished=False)
    other = WorkBook(path, "period-2")
    assert not other.resumed and other.read_count() == 0 and other.candidate_count() == 0
    other.close(finished=True)


def test_reports_are_found_newest_first_and_old_ones_pruned(tmp_path: Path) -> None:
    for name in ("2026-11-28_070000", "2026-11-29_070000", "2026-11-30_070000", "2026-11-30_070000-2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "reconcile.json").write_text("{}", encoding="utf-8")
    (tmp_path / "notes").mkdir()  # not a dated report: never touched
    assert latest_report(tmp_path) == tmp_path / "2026-11-30_070000-2" / "reconcile.json"
    removed = prune_reports(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["2026-11-28_070000", "2026-11-29_070000"]
    assert sorted(os.listdir(tmp_path)) == ["2026-11-30_070000", "2026-11-30_070000-2", "notes"]


def test_age_ignores_a_time_zone_on_one_side() -> None:
    item = Item("stale", "A", since="2026-11-28T00:00:00+07:00")
    assert item.age_days(datetime(2026, 11, 30)) == 2.0


def test_the_merge_reads_the_state_without_holding_its_write_lock(tmp_path: Path) -> None:
    """The state is read in one long transaction (a million records: a minute); a writer beside
    it (the running service) must not wait for it."""
    import sqlite3

    from dvcsync.reconcile.province_state import state_rows
    from dvcsync.state import MappedRecord, StateStore

    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = StateStore(url)
    store.prepare()
    records = [
        MappedRecord(f"H{n:03d}", n, "2026-11-01T00:00:00", {"MaHoSo": f"H{n:03d}"}) for n in range(50)
    ]
    store.enqueue_page(records, cursor_name="push:dossier", watermark="2026-11-01T00:00:00", last_key=50)
    rows = state_rows(store)
    assert next(rows)["k"] == "H000"  # the read transaction is open now
    writer = sqlite3.connect(tmp_path / "state.db", timeout=0.5, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # "database is locked" if the reader held the write lock
    writer.execute("UPDATE cursor SET watermark = '2026-11-02T00:00:00'")
    writer.execute("COMMIT")
    writer.close()
    assert len(list(rows)) == 49
    store.close()


def test_unread_candidates_page_by_code_so_a_failed_read_is_not_asked_again_in_a_run(
    tmp_path: Path,
) -> None:
    book = WorkBook(tmp_path / "work.sqlite", "s1")
    book.add_candidates([(f"K{n}", True, {}) for n in range(5)])
    first = book.unread(2)
    assert [k for k, _, _ in first] == ["K0", "K1"]
    book.record_reads([("K1", {"MaHoSo": "K1"})])  # K0's read failed
    assert [k for k, _, _ in book.unread(2, after="K1")] == ["K2", "K3"]
    assert [k for k, _, _ in book.unread(10)] == ["K0", "K2", "K3", "K4"]  # the next run: K0 again
    book.close(finished=True)
