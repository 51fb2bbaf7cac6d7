"""PushJob against the mock portal in process: what changed in the province reaches the portal once,
its history entry by entry, and a push with nothing changed sends nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from dvcsync.province.source import make_engine
from dvcsync.sync.portal_side import portal_side_dossiers
from dvcsync.sync.push import PushJob, PushSummary

from .conftest import Rig, admin

PROVINCE_TZ = ZoneInfo("Asia/Ho_Chi_Minh")  # the sample's updated_at is the province's wall clock


async def _seed_portal_side(rig: Rig, http: httpx.AsyncClient) -> int:
    """The sample's portal-submitted dossiers exist on the portal (their status reports find them)."""
    bodies = portal_side_dossiers(rig.settings.province.source_url, rig.mappings)
    await admin(http, "POST", "/portal-dossiers", params={"push": "false"}, json={"dossiers": bodies})
    return len(bodies)


async def _push(rig: Rig, http: httpx.AsyncClient) -> PushSummary:
    source = make_engine(rig.settings.province.source_url)
    try:
        return await PushJob(rig.settings, rig.mappings, rig.store, rig.portal(http), source).run_cycle()
    finally:
        source.dispose()


async def _stored(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    page = await admin(http, "GET", "/dossiers", params={"size": 1000})
    return {item["MaHoSo"]: item for item in page["items"]}


async def _writes(http: httpx.AsyncClient, code: str) -> dict[str, int]:
    """The client writes the mock counted for one dossier, by service (history: one per entry)."""
    view = await admin(http, "GET", f"/dossiers/{code}")
    return dict(view["writes_by_service"])


async def _calls(http: httpx.AsyncClient) -> Counter[str]:
    stats = await admin(http, "GET", "/stats")
    return Counter({service: sum(outcomes.values()) for service, outcomes in stats["services"].items()})


def _steps(rig: Rig) -> dict[str, int]:
    """History entries per province-submitted dossier, counted in the province database."""
    return dict(
        rig.province(
            "SELECT h.so_ho_so, COUNT(q.id) FROM ho_so h LEFT JOIN qua_trinh_xu_ly q ON q.ho_so_id = h.id"
            " WHERE h.ma_ho_so_qg IS NULL GROUP BY h.so_ho_so"
        )
    )


def test_a_push_delivers_each_dossier_and_its_history_once_and_a_second_push_sends_nothing(rig: Rig) -> None:
    async def scenario() -> None:
        async with rig.http() as http:
            portal_side = await _seed_portal_side(rig, http)
            first = await _push(rig, http)
            stored = await _stored(http)
            writes = {code: await _writes(http, code) for code in stored}
            after_first = await _calls(http)
            second = await _push(rig, http)
            assert await _calls(http) == after_first  # not one call more
            assert second.calls == 0
            assert (second.dossiers_pushed, second.steps_pushed, second.statuses_reported) == (0, 0, 0)

        steps = _steps(rig)
        assert first.dead == 0
        # every province-submitted dossier but the sample's quarantined ones, each written once
        assert len(stored) == first.dossiers_pushed == len(steps) - first.enqueue.quarantined > 0
        assert set(stored) <= set(steps)
        assert {code: written["DongBoHoSoMC"] for code, written in writes.items()} == dict.fromkeys(stored, 1)
        # with its whole history, each entry stored once
        assert {code: item["history"] for code, item in stored.items()} == {
            code: steps[code] for code in stored
        }
        assert first.steps_pushed == sum(steps[code] for code in stored)
        assert first.statuses_reported == portal_side > 0
        # the first contact read every dossier back before its first write
        assert first.first_contact.read == first.dossiers_pushed + portal_side

    asyncio.run(scenario())


def test_a_new_history_entry_is_the_only_thing_the_next_push_sends(rig: Rig) -> None:
    async def scenario() -> None:
        async with rig.http() as http:
            await _seed_portal_side(rig, http)
            await _push(rig, http)
            before = await _stored(http)
            code = sorted(before)[0]
            [(dossier_id, last)] = rig.province(
                "SELECT h.id, MAX(q.thu_tu) FROM ho_so h JOIN qua_trinh_xu_ly q"
                " ON q.ho_so_id = h.id WHERE h.so_ho_so = ?",
                code,
            )
            rig.province_execute(
                "INSERT INTO qua_trinh_xu_ly (ho_so_id, thu_tu, can_bo, noi_dung, trang_thai, thoi_diem)"
                " SELECT ho_so_id, ?, can_bo, 'Bổ sung ý kiến', trang_thai, thoi_diem"
                " FROM qua_trinh_xu_ly WHERE ho_so_id = ? AND thu_tu = ?",
                last + 1,
                dossier_id,
                last,
            )
            # changed a second ago: inside the next cycle's window whatever today is
            changed = (datetime.now(PROVINCE_TZ) - timedelta(seconds=1)).replace(tzinfo=None, microsecond=0)
            rig.province_execute(
                "UPDATE ho_so SET updated_at = ? WHERE id = ?", changed.isoformat(), dossier_id
            )
            calls = await _calls(http)
            again = await _push(rig, http)
            after = await _stored(http)
            sent = await _calls(http) - calls

        assert (again.steps_pushed, again.dead) == (1, 0)
        assert after[code]["history"] == before[code]["history"] + 1
        assert {c: i["history"] for c, i in after.items() if c != code} == {
            c: i["history"] for c, i in before.items() if c != code
        }
        assert sent["CapNhatTienDoHoSoMC"] == 1 and sent["DongBoHoSoMC"] <= 1

    asyncio.run(scenario())
