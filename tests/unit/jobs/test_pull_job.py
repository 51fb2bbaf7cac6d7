"""PullJob against the mock portal in process: dossiers submitted on the portal are created in the
province once, acknowledged once the province has them, and not listed again."""

from __future__ import annotations

import asyncio

import httpx

from dvcsync.province.source import make_engine
from dvcsync.sync.pull import PullJob, PullSummary
from mock_portal.app import create_app
from mock_portal.config import MockConfig

from ...builders import portal_dossier
from .conftest import Rig, admin


async def _pull(rig: Rig, http: httpx.AsyncClient) -> PullSummary:
    sink = make_engine(rig.settings.province.effective_sink_url)
    try:
        return await PullJob(rig.settings, rig.mappings, rig.store, rig.portal(http), sink).run_cycle()
    finally:
        sink.dispose()


def _taken_in(rig: Rig) -> list[tuple[str, int]]:
    """(portal code, fee rows) of each province dossier carrying a seeded portal code."""
    return rig.province(
        "SELECT h.ma_ho_so_qg, (SELECT COUNT(*) FROM le_phi l WHERE l.ho_so_id = h.id) FROM ho_so h"
        " WHERE h.ma_ho_so_qg LIKE 'G22.99.99-%' ORDER BY h.ma_ho_so_qg"
    )


def test_a_pull_takes_each_portal_dossier_in_once_and_acknowledges_it(rig: Rig) -> None:
    dossiers = [portal_dossier(n) for n in range(12)]
    codes = sorted(d["MaHoSo"] for d in dossiers)

    async def scenario() -> tuple[PullSummary, PullSummary, dict[str, bool]]:
        async with rig.http() as http:
            await admin(
                http, "POST", "/portal-dossiers", params={"push": "false"}, json={"dossiers": dossiers}
            )
            first = await _pull(rig, http)
            second = await _pull(rig, http)
            listed = await admin(http, "GET", "/portal-dossiers")
        acknowledged = {d["MaHoSo"]: bool(d["acknowledged"]) for d in listed if d["MaHoSo"] in codes}
        return first, second, acknowledged

    first, second, acknowledged = asyncio.run(scenario())
    assert (first.listed, first.created, first.acknowledged) == (12, 12, 12)
    assert (first.rejected, first.failed, first.ack_failed) == (0, 0, 0)
    assert _taken_in(rig) == [(code, 1) for code in codes]  # each once, with its fee
    assert acknowledged == dict.fromkeys(codes, True)
    assert (second.listed, second.created, second.already_in_province) == (0, 0, 0)


def test_a_dossier_listed_again_after_a_lost_acknowledgement_is_not_created_twice(rig: Rig) -> None:
    """The province committed but the portal never heard (a second portal app lists the same
    dossiers unacknowledged): the next pull finds them in the province and only acknowledges."""
    dossiers = [portal_dossier(n) for n in range(100, 104)]
    codes = sorted(d["MaHoSo"] for d in dossiers)
    forgetful = create_app(MockConfig())

    async def scenario() -> tuple[PullSummary, PullSummary]:
        async with rig.http() as http, rig.http(forgetful) as http_again:
            for client in (http, http_again):
                await admin(
                    client, "POST", "/portal-dossiers", params={"push": "false"}, json={"dossiers": dossiers}
                )
            return await _pull(rig, http), await _pull(rig, http_again)

    try:
        first, again = asyncio.run(scenario())
    finally:
        forgetful.state.store.close()
    assert first.created == 4
    assert (again.listed, again.created, again.already_in_province, again.acknowledged) == (4, 0, 4, 4)
    assert _taken_in(rig) == [(code, 1) for code in codes]
