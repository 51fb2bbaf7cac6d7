"""The demo's portal-submitted dossiers are dated by the clock they are given, never on a fixed day:
a fixed date fell out of "the last 7 days" a week after it was written (issue #24)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dvcsync.demo import new_portal_dossiers
from dvcsync.mapping import MappingSet


@pytest.fixture
def mappings(default_mapping_set: MappingSet) -> MappingSet:
    return default_mapping_set


def _submitted(dossier: dict[str, str]) -> datetime:
    return datetime.strptime(dossier["NgayNopHoSo"], "%Y%m%d%H%M%S")


def test_submitted_in_the_minutes_before_now_each_code_naming_its_day(mappings: MappingSet) -> None:
    now = datetime(2031, 7, 14, 10, 30, 45, 123456)
    dossiers = new_portal_dossiers(mappings, 20, now=now)
    times = [_submitted(d) for d in dossiers]
    assert times == sorted(times) and len(set(times)) == 20
    assert now - timedelta(hours=2) < times[0] and times[-1] < now
    assert all(d["MaHoSo"].startswith("G22.99-310714-") for d in dossiers)
    assert len({d["MaHoSo"] for d in dossiers}) == 20


def test_the_same_now_gives_the_same_dossiers(mappings: MappingSet) -> None:
    now = datetime(2030, 2, 3, 9, 0, 0)
    assert new_portal_dossiers(mappings, 3, now=now) == new_portal_dossiers(mappings, 3, now=now)


def test_just_after_midnight_the_first_ones_belong_to_the_day_before(mappings: MappingSet) -> None:
    dossiers = new_portal_dossiers(mappings, 3, now=datetime(2029, 1, 1, 0, 7))
    assert [d["MaHoSo"][7:13] for d in dossiers] == ["281231", "281231", "290101"]
    assert [d["NgayNopHoSo"] for d in dossiers] == ["20281231235200", "20281231235700", "20290101000200"]


def test_without_now_the_province_wall_clock(mappings: MappingSet) -> None:
    from dvcsync.reconcile.period import local_now

    before = local_now()
    [dossier] = new_portal_dossiers(mappings, 1)
    assert before - timedelta(minutes=6) <= _submitted(dossier) <= local_now()
