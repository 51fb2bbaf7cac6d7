"""Reconcile compares the province's ``updated_at`` with the push cursor as instants (issue #18
item 4): a space-form time after a ``T``-form or canonical cursor is "changed after the last push
read", not stale; one before it is not."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from dvcsync.config import Settings
from dvcsync.mapping import MappingSet
from dvcsync.reconcile.period import Period
from dvcsync.reconcile.province_state import ProvinceStateCheck
from dvcsync.reconcile.workbook import WorkBook
from dvcsync.state import StateStore

REPO = Path(__file__).resolve().parents[3]
AFTER = "changed after the last push read"


@pytest.fixture
def check(tmp_path: Path, default_mapping_set: MappingSet) -> ProvinceStateCheck:
    settings = Settings.load(None, province={"mappings": str(REPO / "mappings")})
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    return ProvinceStateCheck(
        settings,
        default_mapping_set,
        store,
        create_engine("sqlite://"),
        Period(date(2026, 12, 1), date(2026, 12, 7)),
        WorkBook(tmp_path / "work.sqlite", "s"),
        now=datetime(2026, 12, 7, 22, 0),
        read_back=False,
    )


def _state(seen: str) -> dict[str, Any]:
    return {"pending": 0, "source_updated_at": seen, "payload_hash": "h", "acked_hash": "h"}


@pytest.mark.parametrize(
    "cursor", ["2026-12-07T21:22:04", "2026-12-07T21:22:04+07:00", "2026-12-07 21:22:04"]
)
def test_a_space_form_time_after_the_cursor_is_after_it(check: ProvinceStateCheck, cursor: str) -> None:
    seen_before = _state("2026-12-07T21:00:00")
    assert check._stale({"updated_at": "2026-12-07 21:27:04"}, seen_before, cursor) == (
        "2026-12-07 21:27:04",
        AFTER,
    )
    assert check._stale({"updated_at": "2026-12-07 21:20:00"}, seen_before, cursor) == (None, "")


def test_what_the_push_already_saw_is_seen_in_any_form(check: ProvinceStateCheck) -> None:
    seen = _state("2026-12-07 21:27:04")  # what the push recorded from the row
    row = {"updated_at": "2026-12-07T21:27:04"}
    assert check._stale(row, seen, "2026-12-07T21:00:00+07:00") == (None, "")
