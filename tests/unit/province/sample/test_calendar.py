"""Office calendar: ISO text, office hours and working-day deadlines."""

from __future__ import annotations

from datetime import datetime

from dvcsync.province.sample.calendar import DAY, add_workdays, in_office, iso, to_seconds


def _ts(text: str) -> int:
    return to_seconds(datetime.fromisoformat(text))


def test_iso_is_local_seconds_precision_without_offset() -> None:
    for text in ("2024-01-01T00:00:00", "2025-03-04T09:15:07", "2026-11-15T23:59:59"):
        assert iso(_ts(text)) == text


def test_in_office_moves_evenings_weekends_and_holidays_to_the_next_opening() -> None:
    assert iso(in_office(_ts("2025-03-04T09:15:00"))) == "2025-03-04T09:15:00"
    assert iso(in_office(_ts("2025-03-04T18:00:00"))) == "2025-03-05T07:30:00"
    assert iso(in_office(_ts("2025-03-05T05:00:00"), jitter=600)) == "2025-03-05T07:40:00"
    assert iso(in_office(_ts("2025-03-08T10:00:00"))) == "2025-03-10T07:30:00"  # Saturday
    assert iso(in_office(_ts("2025-04-30T10:00:00"))) == "2025-05-02T07:30:00"  # 30/4 and 1/5


def test_deadlines_count_working_days() -> None:
    assert iso(add_workdays(_ts("2025-03-06T10:00:00"), 3)) == "2025-03-11T10:00:00"  # Thu + 3 → Tue
    assert iso(add_workdays(_ts("2025-01-24T10:00:00"), 1)) == "2025-02-03T10:00:00"  # over Tết 2025
    start = _ts("2024-06-03T08:00:00")
    assert add_workdays(start, 5) - start == 7 * DAY  # Mon + 5 → Mon
