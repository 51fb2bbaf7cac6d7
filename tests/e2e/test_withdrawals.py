"""A citizen withdraws on the portal: the portal owns withdrawal, so it reaches the province,
unless the province has already moved on, in which case it is a conflict for the reconciler."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx

from dvcsync.mapping import load_mappings
from dvcsync.province.sample import generate
from dvcsync.state import StateStore
from dvcsync.sync.cycles import run_pull, run_push
from mock_portal.testing import run_mock_process

from .conftest import seed_portal, settings_for


def test_withdrawal_applied_once_and_conflict_recorded(tmp_path: Path) -> None:
    onestop = tmp_path / "onestop.db"
    generate(onestop, 400, 8)
    with run_mock_process() as mock:
        settings = settings_for(mock, onestop, tmp_path / "state.db", rate_limit=2000)
        mappings = load_mappings(settings.province.mappings)
        seed_portal(mock, onestop)
        assert asyncio.run(run_push(settings, mappings)).dead == 0
        with sqlite3.connect(tmp_path / "state.db") as conn:  # dossiers the portal holds, still in progress
            rows = conn.execute(
                "SELECT record_key FROM dossier_state WHERE on_portal = 1 AND status IN ('2', '4', '5', '6')"
                " ORDER BY record_key LIMIT 2"
            ).fetchall()
        assert len(rows) == 2
        applied_code, conflict_code = (r[0] for r in rows)
        for code in (applied_code, conflict_code):
            assert httpx.post(f"{mock.url}/_admin/dossiers/{code}/withdraw").status_code == 200
        with sqlite3.connect(onestop) as conn:  # meanwhile the province finishes the second one
            conn.execute(
                "UPDATE ho_so SET trang_thai = 'releasing', updated_at = '2026-11-22T10:00:00'"
                " WHERE so_ho_so = ?",
                (conflict_code,),
            )
        history_before = len(httpx.get(f"{mock.url}/_admin/dossiers/{applied_code}").json()["QuaTrinhXuLy"])

        first = asyncio.run(run_pull(settings, mappings))
        assert (first.withdrawn, first.conflicts) == (1, 1)
        with sqlite3.connect(onestop) as conn:
            status = dict(
                conn.execute(
                    "SELECT so_ho_so, trang_thai FROM ho_so WHERE so_ho_so IN (?, ?)",
                    (applied_code, conflict_code),
                ).fetchall()
            )
            (last_step,) = conn.execute(
                "SELECT noi_dung FROM qua_trinh_xu_ly q JOIN ho_so h ON h.id = q.ho_so_id"
                " WHERE h.so_ho_so = ? ORDER BY thu_tu DESC LIMIT 1",
                (applied_code,),
            ).fetchone()
        assert status == {applied_code: "cancelled", conflict_code: "releasing"}  # the owner's value wins
        assert "rút hồ sơ" in last_step
        [conflict] = StateStore(settings.state.url).conflicts()
        assert (conflict["record_key"], conflict["province_value"], conflict["portal_value"]) == (
            conflict_code,
            "releasing",
            "7",
        )

        again = asyncio.run(run_pull(settings, mappings))
        assert (again.withdrawn, again.conflicts) == (0, 0)  # taken in once; the conflict kept once
        assert len(StateStore(settings.state.url).conflicts()) == 1

        push = asyncio.run(run_push(settings, mappings))
        stored = httpx.get(f"{mock.url}/_admin/dossiers/{applied_code}").json()
        assert stored["TrangThaiHoSo"] == "7"
        # the portal wrote its own history entry for the withdrawal; the province's is not sent again
        assert len(stored["QuaTrinhXuLy"]) == history_before
        assert push.dead == 1  # the conflicting dossier: the portal refuses 7 → 9, visible as a dead letter
