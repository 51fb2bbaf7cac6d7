"""A citizen withdraws on the portal a dossier they submitted there: ``TraCuuHoSo`` does not return
such dossiers, so the pull reads the portal's own listing in status 7 (``DanhSachHoSo`` with
``trangthai``) and applies each withdrawal once, or records a conflict when the province has
already moved on, as for pushed dossiers."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx

from dvcsync.demo import new_portal_dossiers
from dvcsync.mapping import load_mappings
from dvcsync.province.sample import generate
from dvcsync.reconcile.period import local_now
from dvcsync.state import StateStore
from dvcsync.sync.cycles import run_pull, run_push
from mock_portal.testing import run_mock_process

from .conftest import seed_portal, settings_for


def test_portal_submitted_withdrawal_applied_once_and_conflict_recorded(tmp_path: Path) -> None:
    onestop = tmp_path / "onestop.db"
    generate(onestop, 300, 11)
    with run_mock_process() as mock:
        settings = settings_for(mock, onestop, tmp_path / "state.db", rate_limit=2000)
        mappings = load_mappings(settings.province.mappings)
        seed_portal(mock, onestop)
        dossiers = new_portal_dossiers(mappings, 3)
        applied_code, conflict_code, untouched = (d["MaHoSo"] for d in dossiers)
        seeded = httpx.post(
            f"{mock.url}/_admin/portal-dossiers", params={"push": "false"}, json={"dossiers": dossiers}
        )
        assert seeded.status_code == 201, seeded.text
        taken = asyncio.run(run_pull(settings, mappings))
        assert taken.created == 3 and (taken.withdrawn, taken.conflicts) == (0, 0)

        for code in (applied_code, conflict_code):
            reply = httpx.post(f"{mock.url}/_admin/dossiers/{code}/withdraw")
            assert reply.status_code == 200, reply.text
        with sqlite3.connect(onestop) as conn:  # meanwhile the province finishes the second one
            conn.execute(
                "UPDATE ho_so SET trang_thai = 'releasing', updated_at = ? WHERE ma_ho_so_qg = ?",
                (local_now().isoformat(), conflict_code),
            )

        first = asyncio.run(run_pull(settings, mappings))
        assert (first.withdrawn, first.conflicts) == (1, 1)
        with sqlite3.connect(onestop) as conn:
            status = dict(
                conn.execute(
                    "SELECT ma_ho_so_qg, trang_thai FROM ho_so WHERE ma_ho_so_qg IN (?, ?, ?)",
                    (applied_code, conflict_code, untouched),
                ).fetchall()
            )
            steps = conn.execute(
                "SELECT q.noi_dung, q.trang_thai FROM qua_trinh_xu_ly q JOIN ho_so h ON h.id = q.ho_so_id"
                " WHERE h.ma_ho_so_qg = ? ORDER BY q.thu_tu",
                (applied_code,),
            ).fetchall()
        assert status == {applied_code: "cancelled", conflict_code: "releasing", untouched: "new"}
        assert len(steps) == 1 and "rút hồ sơ" in steps[0][0] and steps[0][1] == "cancelled"
        [conflict] = StateStore(settings.state.url).conflicts()
        assert (conflict["record_key"], conflict["province_value"], conflict["portal_value"]) == (
            conflict_code,
            "releasing",
            "7",
        )

        again = asyncio.run(run_pull(settings, mappings))
        assert (again.withdrawn, again.conflicts) == (0, 0)  # applied once; the conflict kept once
        assert len(StateStore(settings.state.url).conflicts()) == 1
        with sqlite3.connect(onestop) as conn:
            (n_steps,) = conn.execute(
                "SELECT COUNT(*) FROM qua_trinh_xu_ly q JOIN ho_so h ON h.id = q.ho_so_id"
                " WHERE h.ma_ho_so_qg = ?",
                (applied_code,),
            ).fetchone()
        assert n_steps == 1

        # the province's status report of the withdrawn dossier agrees with the portal (7 → 7);
        # the finished one is refused by the portal (7 → 9): a dead letter, as for pushed dossiers
        asyncio.run(run_push(settings, mappings))
        portal = httpx.get(f"{mock.url}/_admin/portal-dossiers/{applied_code}").json()
        assert portal["status"] == "7"
        dead = {d["record_key"] for d in StateStore(settings.state.url).dead()}
        assert applied_code not in dead and conflict_code in dead
