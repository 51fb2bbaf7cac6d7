"""A portal that already holds the province's dossiers (a previous integration, a lost or new
state): nothing is sent twice because the state does not know it. Real mock process, real
SQLite files; the mock's own store is the judge (history entries per dossier, writes per
dossier, calls per service)."""

from __future__ import annotations

import asyncio
import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvcsync.mapping import load_mappings
from dvcsync.state import StateStore
from dvcsync.sync.cycles import run_adopt, run_push
from dvcsync.sync.readback import history_fingerprint
from mock_portal.testing import RunningMock

from .conftest import seed_portal, settings_for
from .test_push import _expected

pytestmark = pytest.mark.slow


def _stats(mock: RunningMock) -> dict[str, int]:
    services = httpx.get(f"{mock.url}/_admin/stats", timeout=30).json()["services"]
    return {name: sum(outcomes.values()) for name, outcomes in services.items()}


WRITES = ("DongBoHoSoMC", "CapNhatTienDoHoSoMC", "DongBoTrangThaiHoSo")


def _writes(stats: dict[str, int]) -> dict[str, int]:
    return {service: stats.get(service, 0) for service in WRITES}


def _portal(mock: RunningMock, codes: list[str]) -> dict[str, dict[str, Any]]:
    with httpx.Client(base_url=mock.url, timeout=30) as client:
        return {code: client.get(f"/_admin/dossiers/{code}").json() for code in codes}


def _push(settings: Any) -> Any:
    return asyncio.run(run_push(settings, load_mappings(settings.province.mappings)))


def _assert_history_exact(mock: RunningMock, expected: dict[str, tuple[dict[str, Any], list[Any]]]) -> None:
    """Every dossier's history on the portal is the province's, each entry once, in order."""
    stored = _portal(mock, list(expected))
    for code, (_, steps) in expected.items():
        held = [history_fingerprint(e) for e in stored[code]["QuaTrinhXuLy"]]
        wanted = [history_fingerprint(e) for e in steps]
        assert Counter(held) == Counter(wanted), code


def test_a_new_state_sends_nothing_the_portal_holds(mock: RunningMock, onestop: Path, tmp_path: Path) -> None:
    expected = _expected(onestop)
    seed_portal(mock, onestop)
    first = _push(settings_for(mock, onestop, tmp_path / "a.db", rate_limit=1000, batch_size=100))
    assert first.dead == 0
    steps = sum(len(h) for _, h in expected.values())
    assert first.steps_pushed == steps
    writes_before = {code: d["writes"] for code, d in _portal(mock, list(expected)).items()}
    before = _stats(mock)

    # the state is lost: a brand-new one in front of the same portal
    second = _push(settings_for(mock, onestop, tmp_path / "b.db", rate_limit=1000, batch_size=100))
    after = _stats(mock)
    assert second.dead == 0
    assert second.steps_pushed == 0 and second.dossiers_pushed == 0
    assert second.first_contact.identical == len(expected)
    assert second.first_contact.history_present == steps
    assert after.get("CapNhatTienDoHoSoMC", 0) == before.get("CapNhatTienDoHoSoMC", 0)
    assert after.get("DongBoHoSoMC", 0) == before.get("DongBoHoSoMC", 0)  # no dossier rewritten
    # one read-back a dossier met for the first time, status reports of portal dossiers included
    reads = after.get("TraCuuHoSo", 0) - before.get("TraCuuHoSo", 0)
    assert reads == second.enqueue.dossiers_enqueued
    _assert_history_exact(mock, expected)
    assert {code: d["writes"] for code, d in _portal(mock, list(expected)).items()} == writes_before

    # and the state is seeded: a third cycle on it reads nothing and sends nothing
    third = _push(settings_for(mock, onestop, tmp_path / "b.db", rate_limit=1000, batch_size=100))
    assert (third.calls, third.dossiers_pushed, third.steps_pushed) == (0, 0, 0)


def _damage(
    mock: RunningMock, expected: dict[str, tuple[dict[str, Any], list[Any]]], seed: int
) -> dict[str, Any]:
    """What a previous integration leaves: the last 1-3 entries of 100 dossiers missing, 50
    statuses one legal step behind, and 5 dossiers with an entry the province does not have."""
    rng = random.Random(seed)
    with_history = sorted(code for code, (_, steps) in expected.items() if len(steps) >= 4)
    dropped: dict[str, int] = {}
    with httpx.Client(base_url=mock.url, timeout=30) as client:
        for code in rng.sample(with_history, 100):
            n = rng.randint(1, 3)
            for _ in range(n):
                total = len(client.get(f"/_admin/dossiers/{code}").json()["QuaTrinhXuLy"])
                assert client.delete(f"/_admin/dossiers/{code}/history/{total}").status_code == 200
            dropped[code] = n
        behind = {"10": "9", "9": "4", "4": "2", "5": "2", "6": "2", "8": "4"}
        candidates = sorted(c for c, (d, _) in expected.items() if d["TrangThaiHoSo"] in behind)
        set_back = {}
        for code in rng.sample(candidates, 50):
            status = expected[code][0]["TrangThaiHoSo"]
            reply = client.patch(f"/_admin/dossiers/{code}", json={"TrangThaiHoSo": behind[status]})
            assert reply.status_code == 200
            set_back[code] = status
        extra = {}
        for code in rng.sample([c for c in with_history if c not in dropped], 5):
            assert client.post(f"/_admin/dossiers/{code}/history/1/duplicate").status_code == 200
            entry = client.get(f"/_admin/dossiers/{code}").json()["QuaTrinhXuLy"][0]
            extra[code] = entry
    return {"dropped": dropped, "set_back": set_back, "extra": extra}


@pytest.mark.parametrize("how", ["push", "adopt"])
def test_a_partial_history_is_completed_once_and_statuses_restored(
    mock: RunningMock, onestop: Path, tmp_path: Path, how: str
) -> None:
    expected = _expected(onestop)
    seed_portal(mock, onestop)
    assert _push(settings_for(mock, onestop, tmp_path / "a.db", rate_limit=1000, batch_size=100)).dead == 0
    damage = _damage(mock, expected, seed=7 if how == "push" else 8)
    writes_before = {code: d["writes"] for code, d in _portal(mock, list(expected)).items()}
    before = _stats(mock)

    settings = settings_for(mock, onestop, tmp_path / "fresh.db", rate_limit=1000, batch_size=100)
    if how == "adopt":
        adopted = asyncio.run(run_adopt(settings, load_mappings(settings.province.mappings)))
        during = _stats(mock)
        assert _writes(during) == _writes(before)  # adopt only reads
        found = adopted.found
        assert found.history_missing == sum(damage["dropped"].values())
        assert found.differing == len(damage["set_back"])
        assert found.differing_fields == Counter({"TrangThaiHoSo": len(damage["set_back"])})
        assert found.identical == len(expected) - len(damage["set_back"])
        assert found.portal_only == len(damage["extra"])
        assert adopted.unsettled == 0
    summary = _push(settings)
    after = _stats(mock)
    assert summary.dead == 0
    assert summary.steps_pushed == sum(damage["dropped"].values())  # the dropped ones, once
    assert summary.dossiers_pushed == len(damage["set_back"])  # only those held differently
    # Batched, never a call a dossier: the 50 restored dossiers are spread over the source's
    # pages, and the delivery takes each round what the producer has committed by then, so how
    # many rounds they fall in depends on the machine's pace; at most one part-filled batch a page.
    pages = -(-len(expected) // settings.push.page_size)
    assert 1 <= after.get("DongBoHoSoMC", 0) - before.get("DongBoHoSoMC", 0) <= pages
    stored = _portal(mock, list(expected))
    for code, status in damage["set_back"].items():
        assert stored[code]["TrangThaiHoSo"] == status, code
    rewritten = {code for code, d in stored.items() if d["writes"] != writes_before[code]}
    assert rewritten == set(damage["set_back"]) | set(damage["dropped"])  # the replaced and the completed
    for code, (_, steps) in expected.items():
        held = Counter(history_fingerprint(e) for e in stored[code]["QuaTrinhXuLy"])
        wanted = Counter(history_fingerprint(e) for e in steps)
        if code in damage["extra"]:
            wanted[history_fingerprint(damage["extra"][code])] += 1  # kept, never deleted
        assert held == wanted, code
    # entries only the portal has are conflicts for the reconciler
    store = StateStore(settings.state.url)
    try:
        conflicts = {c["record_key"] for c in store.conflicts() if c["field"] == "QuaTrinhXuLy"}
    finally:
        store.close()
    assert conflicts == set(damage["extra"])


def test_adopt_then_push_writes_only_the_differences(
    mock: RunningMock, tmp_path: Path, sample_2000: Path
) -> None:
    onestop = tmp_path / "onestop.db"
    shutil.copy(sample_2000, onestop)
    expected = _expected(onestop)
    seed_portal(mock, onestop)
    assert _push(settings_for(mock, onestop, tmp_path / "a.db", rate_limit=1000, batch_size=100)).dead == 0
    before = _stats(mock)
    settings = settings_for(mock, onestop, tmp_path / "adopted.db", rate_limit=1000, batch_size=100)
    adopted = asyncio.run(run_adopt(settings, load_mappings(settings.province.mappings)))
    during = _stats(mock)
    assert _writes(during) == _writes(before)  # adopt never writes
    assert during["TraCuuHoSo"] - before.get("TraCuuHoSo", 0) == adopted.calls
    assert adopted.found.identical == len(expected)
    assert adopted.unsettled == 0
    summary = _push(settings)
    assert (summary.calls, summary.dossiers_pushed, summary.steps_pushed) == (0, 0, 0)
    assert _writes(_stats(mock)) == _writes(during)
