"""Push under a hostile portal: errors, throttling, resets and writes whose reply is lost.

The cycles must converge to exactly the state a fault-free push leaves, with no history entry
stored twice (the portal appends blindly) and nothing lost.
"""

from __future__ import annotations

import asyncio
import random
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvcsync.config import Settings
from dvcsync.mapping import load_mappings
from dvcsync.portal import Backoff, PortalClient, make_http_client
from dvcsync.province.sample import generate
from dvcsync.province.source import make_engine
from dvcsync.state import StateStore
from dvcsync.sync.push import PushJob, PushOptions, PushSummary
from mock_portal.faults import FaultSpec
from mock_portal.testing import RunningMock, run_mock_process

from ..e2e.conftest import seed_portal

REPO = Path(__file__).resolve().parents[2]
FAULTS = {
    "seed": 7,
    "rules": [
        {
            "service": "*",
            "status_rates": {"500": 0.10, "502": 0.05, "503": 0.05},
            "reset_rate": 0.05,
            "lost_reply_rate": 0.05,
            "throttle_rate": 0.02,
            "retry_after_s": 0,
        },
    ],
}


@pytest.fixture(scope="module")
def sample_400(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chaos") / "onestop.db"
    generate(path, 400, 11)
    return path


def _settings(mock: RunningMock, onestop: Path, state: Path) -> Settings:
    return Settings.load(
        None,
        province={"source_url": f"sqlite:///{onestop}", "mappings": str(REPO / "mappings")},
        portal={
            "adapter_url": mock.adapter_url,
            "timeout": 3.0,
            "batch_size": 10,
            "concurrency": 4,
            "rate_limit": 2000,
            "max_attempts": 30,
        },
        state={"url": f"sqlite:///{state}"},
    )


async def _push_until_settled(settings: Settings, max_cycles: int = 12) -> list[PushSummary]:
    mappings = load_mappings(settings.province.mappings)
    store = StateStore(settings.state.url)
    store.upgrade()
    source = make_engine(settings.province.source_url)
    client = PortalClient(
        settings.portal,
        make_http_client(settings.portal),
        backoff=Backoff(base=0.01, cap=0.2, rng=random.Random(3)),
    )
    options = PushOptions(retry_base_s=0.02, retry_cap_s=0.3, wait_for_retries_s=2.0)
    summaries = []
    try:
        for _ in range(max_cycles):
            summaries.append(
                await PushJob(settings, mappings, store, client, source, options=options).run_cycle()
            )
            backlog = store.backlog()
            if not any(state.startswith("pending") for state in backlog):
                break
        assert not any(state.startswith(("pending", "dead")) for state in store.backlog()), store.backlog()
    finally:
        await client.aclose()
        source.dispose()
        store.close()
    return summaries


def _portal_state(mock: RunningMock) -> dict[str, Any]:
    with httpx.Client(base_url=mock.url, timeout=30) as client:
        listing = client.get("/_admin/dossiers", params={"size": 1000}).json()
        out = {}
        for item in listing["items"]:
            body = client.get(f"/_admin/dossiers/{item['MaHoSo']}").json()
            history = [
                {k: v for k, v in e.items() if not k.startswith("_")} for e in body.pop("QuaTrinhXuLy")
            ]
            for key in ("writes", "writes_by_service", "warnings", "created_at", "updated_at", "admin_edits"):
                body.pop(key, None)
            out[item["MaHoSo"]] = (body, history)
        return out


def test_faults_converge_to_the_fault_free_state_with_no_history_twice(
    sample_400: Path, tmp_path: Path
) -> None:
    clean_db, faulty_db = tmp_path / "clean.db", tmp_path / "faulty.db"
    shutil.copy(sample_400, clean_db)
    shutil.copy(sample_400, faulty_db)
    with run_mock_process() as clean:
        seed_portal(clean, clean_db)
        asyncio.run(_push_until_settled(_settings(clean, clean_db, tmp_path / "clean-state.db")))
        expected = _portal_state(clean)
    with run_mock_process(faults=FaultSpec.model_validate(FAULTS)) as faulty:
        seed_portal(faulty, faulty_db)  # admin calls are not faulted
        summaries = asyncio.run(
            _push_until_settled(_settings(faulty, faulty_db, tmp_path / "faulty-state.db"))
        )
        with httpx.Client(base_url=faulty.url) as admin:
            admin.put("/_admin/faults", json={"seed": 1, "rules": []})
            stats = admin.get("/_admin/stats").json()
        actual = _portal_state(faulty)
    assert len(expected) > 300  # 400 less the portal-submitted (status reports) and the quarantined
    assert actual.keys() == expected.keys()
    for code, (body, history) in expected.items():
        assert actual[code][0] == body, code
        assert actual[code][1] == history, f"{code}: history differs (duplicated, lost or reordered)"
    # the faults really happened, and lost replies were settled by reading back
    assert sum(s.ambiguous_resolved for s in summaries) > 0, summaries  # lost answers settled by read-back
    injected: dict[str, int] = {}
    for outcomes in stats["services"].values():
        for outcome, count in outcomes.items():
            if outcome.startswith("fault:"):
                injected[outcome] = injected.get(outcome, 0) + count
    for kind in ("fault:500", "fault:502", "fault:503", "fault:reset", "fault:lost_reply", "fault:throttle"):
        assert injected.get(kind, 0) > 0, injected
    assert (
        stats["services"]["DongBoHoSoMC"].get("fault:500", 0)
        + stats["services"]["DongBoHoSoMC"].get("fault:lost_reply", 0)
        > 0
    ), "dossier writes were never faulted"
