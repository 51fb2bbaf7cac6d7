"""The citizen check against the mock's population service (``TraCuuThongTinCongDan`` over SOAP):
a match is pushed, a mismatch quarantined with the field named and the value masked, a service
that is down never stops the push, verdicts are reused within their time-to-live, and the check
is off by default.

The sample's owners are generated people, unknown to the population fixture
(``mock_portal/fixtures/citizens.json``): each test keeps a handful of dossiers of its private copy
of the sample and gives their owners the fixture's people (or near misses of them).

The mock's ``/_admin/stats`` counts the population service's answers (``TraCuuThongTinCongDan``)
and the SOAP requests a fault touches: the check's own ``lookups`` figure is tied to them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvcsync.mapping import load_mappings
from dvcsync.mapping.errors import mask
from dvcsync.state import StateStore
from dvcsync.sync.citizen_check import CACHE
from dvcsync.sync.cycles import run_push
from dvcsync.sync.push import PushSummary, local_iso
from mock_portal.testing import RunningMock, free_port

from .conftest import settings_for

# Fixture people (mock_portal/fixtures/citizens.json): ID, full name.
AN = ("040085367903", "Nguyễn Văn An")
BICH = ("040190192064", "Trần Thị Bích")
CUONG = ("038078128605", "Lê Quang Cường")
UNKNOWN_ID = "040099000001"  # 12 digits, nobody in the fixture


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """The verdict cache is the process's: no test sees another's verdicts."""
    CACHE.clear()
    yield
    CACHE.clear()


def _keep(onestop: Path, owners: list[tuple[str, str]], businesses: int = 1) -> list[str]:
    """Keep one citizen dossier per owner (given that owner) and ``businesses`` business ones;
    delete every other dossier. Kept dossiers are of procedures with a verified national code, so
    nothing but the check can quarantine them. Returns the kept dossiers' keys, citizens first."""
    with sqlite3.connect(onestop) as conn:
        good = (
            "SELECT h.id, h.so_ho_so FROM ho_so h JOIN thu_tuc t ON t.ma_thu_tuc = h.ma_thu_tuc"
            " WHERE h.nguon = 'mot_cua' AND t.ma_tthc_qg IS NOT NULL AND t.chua_xac_minh = 0"
            " AND h.loai_chu_ho_so = ? ORDER BY h.id LIMIT ?"
        )
        citizens = conn.execute(good, ("cong_dan", len(owners))).fetchall()
        firms = conn.execute(good, ("doanh_nghiep", businesses)).fetchall()
        assert len(citizens) == len(owners) and len(firms) == businesses
        for (dossier_id, _), (number, name) in zip(citizens, owners, strict=True):
            conn.execute(
                "UPDATE ho_so SET so_giay_to = ?, chu_ho_so = ? WHERE id = ?", (number, name, dossier_id)
            )
        kept = [i for i, _ in citizens + firms]
        conn.execute(f"DELETE FROM ho_so WHERE id NOT IN ({','.join('?' * len(kept))})", kept)
        return [key for _, key in citizens + firms]


def _settings(
    mock: RunningMock,
    onestop: Path,
    state: Path,
    *,
    enabled: bool = True,
    concurrency: int = 4,
    **portal: Any,
) -> Any:
    settings = settings_for(mock, onestop, state, **portal)
    if enabled:
        check = {"enabled": True, "timeout_s": 2.0, "concurrency": concurrency}
        settings = settings.model_copy(
            update={"citizen_check": settings.citizen_check.model_copy(update=check)}
        )
    return settings


def _push(settings: Any) -> PushSummary:
    return asyncio.run(run_push(settings, load_mappings(settings.province.mappings)))


def _quarantine(state: Path) -> dict[str, list[dict[str, str]]]:
    store = StateStore(f"sqlite:///{state}")
    try:
        return {row["record_key"]: json.loads(row["errors"]) for row in store.quarantined()}
    finally:
        store.close()


def _stored_codes(mock: RunningMock) -> set[str]:
    listing = httpx.get(f"{mock.url}/_admin/dossiers", params={"size": 1000, "page": 1}, timeout=30).json()
    return {item["MaHoSo"] for item in listing["items"]}


def _soap_stats(mock: RunningMock) -> dict[str, int]:
    return dict(httpx.get(f"{mock.url}/_admin/stats", timeout=30).json()["services"].get("soap", {}))


def _touch(onestop: Path, key: str) -> None:
    """The dossier's summary edited now (its payload changes; its owner does not)."""
    with sqlite3.connect(onestop) as conn:
        conn.execute(
            "UPDATE ho_so SET trich_yeu = trich_yeu || '.', updated_at = ? WHERE so_ho_so = ?",
            (local_iso(time.time() - 1), key),
        )


def _fail_soap(mock: RunningMock) -> None:
    """Every SOAP request answered 500 (counted by the mock under ``soap``); REST untouched."""
    spec = {"seed": 1, "rules": [{"service": "soap", "status_rates": {"500": 1.0}}]}
    httpx.put(f"{mock.url}/_admin/faults", json=spec, timeout=30).raise_for_status()


def test_a_match_is_pushed_a_mismatch_quarantined_with_the_field_named_and_masked(
    mock: RunningMock, onestop: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_name = "Trần Thị Bich"  # a missing diacritic is another name
    keys = _keep(
        onestop,
        [AN, ("040190192064", "  trần   THỊ bích "), (BICH[0], wrong_name), (UNKNOWN_ID, "Lê Quang Cường")],
    )
    matched, case_and_spaces, misnamed, unknown, business = keys
    state = tmp_path / "state.db"
    with caplog.at_level(logging.DEBUG):
        summary = _push(_settings(mock, onestop, state))

    assert summary.citizen.lookups == 4 and summary.citizen.checked == 4  # not the business owner
    assert summary.citizen.mismatched == 2 and summary.citizen.skipped == 0
    assert summary.enqueue.quarantined == 2 and summary.dead == 0
    assert _stored_codes(mock) == {matched, case_and_spaces, business}

    quarantined = _quarantine(state)
    assert set(quarantined) == {misnamed, unknown}
    (name_error,) = quarantined[misnamed]
    assert (name_error["field"], name_error["source"]) == ("ChuHoSo", "chu_ho_so")
    assert name_error["value"] == repr(mask(wrong_name)) and "Bich" not in name_error["value"]
    assert "citizen check" in name_error["reason"]
    (id_error,) = quarantined[unknown]
    assert (id_error["field"], id_error["source"]) == ("SoGiayToChuHoSo", "so_giay_to")
    assert id_error["value"] == repr(mask(UNKNOWN_ID)) and UNKNOWN_ID not in id_error["value"]

    text = caplog.text
    assert misnamed in text and unknown in text  # the dossiers are named ...
    for clear in (UNKNOWN_ID, BICH[0], AN[0], wrong_name, AN[1]):  # ... their owners never
        assert clear not in text


def test_a_population_service_that_is_down_never_stops_the_push(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    keys = _keep(onestop, [AN, BICH, CUONG, (UNKNOWN_ID, "Không Ai Cả")])
    _fail_soap(mock)
    summary = _push(_settings(mock, onestop, tmp_path / "state.db", concurrency=1))
    assert summary.citizen.skipped == 4 and summary.citizen.checked == 0
    assert summary.enqueue.quarantined == 0 and summary.dead == 0
    assert _stored_codes(mock) == set(keys)  # pushed unchecked, the unknown ID too
    # the first lookup found it down (after one retry); the others were not even asked
    assert summary.citizen.lookups == 1 and _soap_stats(mock) == {"fault:500": 2}


def test_a_dead_population_service_port_never_stops_the_push(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    keys = _keep(onestop, [AN, BICH, CUONG])
    dead = f"http://127.0.0.1:{free_port()}/soap"
    summary = _push(_settings(mock, onestop, tmp_path / "state.db", soap_url=dead))
    assert summary.citizen.skipped == 3 and summary.citizen.checked == 0
    assert summary.dossiers_pushed == len(keys) and summary.dead == 0
    assert _stored_codes(mock) == set(keys)


def test_a_verdict_is_reused_within_its_time_to_live_and_unchanged_dossiers_are_not_asked(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    keys = _keep(onestop, [AN, BICH], businesses=0)
    settings = _settings(mock, onestop, tmp_path / "state.db")
    first = _push(settings)
    assert (first.citizen.lookups, first.citizen.checked, first.dossiers_pushed) == (2, 2, 2)

    quiet = _push(settings)  # nothing changed: nothing checked
    assert (quiet.citizen.lookups, quiet.citizen.checked, quiet.citizen.cached) == (0, 0, 0)

    _touch(onestop, keys[0])  # one dossier changes, its owner does not
    changed = _push(settings)
    assert changed.dossiers_pushed == 1
    assert (changed.citizen.lookups, changed.citizen.cached, changed.citizen.checked) == (0, 1, 1)

    # past the time-to-live the owner is asked again
    CACHE.clear()
    _touch(onestop, keys[0])
    again = _push(settings)
    assert (again.citizen.lookups, again.citizen.cached) == (1, 0)
    # the mock saw exactly the lookups the check says it made (2 + 0 + 0 + 1)
    answered = httpx.get(f"{mock.url}/_admin/stats", timeout=30).json()["services"]
    assert answered.get("TraCuuThongTinCongDan") == {"ok": 3}


def test_the_check_is_off_by_default(mock: RunningMock, onestop: Path, tmp_path: Path) -> None:
    keys = _keep(onestop, [AN, (UNKNOWN_ID, "Không Ai Cả")])
    _fail_soap(mock)  # any SOAP request would now be counted by the mock
    settings = _settings(mock, onestop, tmp_path / "state.db", enabled=False)
    assert settings.citizen_check.enabled is False
    summary = _push(settings)
    assert summary.citizen.as_dict() == dict.fromkeys(summary.citizen.as_dict(), 0)
    assert _stored_codes(mock) == set(keys) and summary.enqueue.quarantined == 0
    assert _soap_stats(mock) == {}  # not one SOAP request


def test_the_forked_enqueue_producer_checks_and_its_counts_reach_the_summary(
    mock: RunningMock, onestop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvcsync.sync import _producer

    forks: list[int] = []
    original = _producer.EnqueueProducer.__init__

    def spy(self: _producer.EnqueueProducer, job: Any, until: str) -> None:
        original(self, job, until)
        forks.append(1)

    monkeypatch.setattr(_producer.EnqueueProducer, "__init__", spy)
    keys = _keep(onestop, [AN, BICH, (CUONG[0], "Lê Quang Cương"), (UNKNOWN_ID, "Không Ai Cả")])
    settings = _settings(mock, onestop, tmp_path / "state.db")
    settings = settings.model_copy(
        update={"push": settings.push.model_copy(update={"page_size": 2, "parallel_enqueue": True})}
    )
    summary = _push(settings)  # page 1 here, pages 2 and 3 in the producer
    assert summary.enqueue.records == 5 and forks == [1]
    assert (summary.citizen.lookups, summary.citizen.checked, summary.citizen.mismatched) == (4, 4, 2)
    assert set(_quarantine(tmp_path / "state.db")) == {keys[2], keys[3]}
    assert _stored_codes(mock) == {keys[0], keys[1], keys[4]}
