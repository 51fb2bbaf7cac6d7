"""Portal → province: dossiers submitted on the portal are created in the province exactly once
and acknowledged only after the province has committed them."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvcsync.mapping import load_mappings
from dvcsync.sync.cycles import run_pull
from mock_portal.faults import FaultSpec
from mock_portal.testing import run_mock_process

from ..builders import portal_dossier
from .conftest import settings_for


def _seed(url: str, dossiers: list[dict[str, Any]]) -> None:
    reply = httpx.post(f"{url}/_admin/portal-dossiers", json={"dossiers": dossiers}, timeout=60)
    assert reply.status_code == 201, reply.text


def _acknowledged(url: str) -> dict[str, bool]:
    return {d["MaHoSo"]: bool(d["acknowledged"]) for d in httpx.get(f"{url}/_admin/portal-dossiers").json()}


def _province(db: Path) -> list[tuple[str, int, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT h.so_ho_so, (SELECT COUNT(*) FROM le_phi WHERE ho_so_id = h.id),"
            " (SELECT COUNT(*) FROM tai_lieu WHERE ho_so_id = h.id) FROM ho_so h"
            " WHERE so_ho_so LIKE 'G22.99.99-%'"
        ).fetchall()


@pytest.mark.parametrize("transport", ["rest", "soap"])
def test_500_portal_dossiers_under_faults_arrive_exactly_once(
    onestop: Path, tmp_path: Path, transport: str
) -> None:
    dossiers = [portal_dossier(n, attachment=True) for n in range(500)]
    faults = FaultSpec.model_validate(
        {
            "seed": 3,
            "rules": [
                {
                    "service": "*",
                    "status_rates": {"500": 0.1, "503": 0.05},
                    "reset_rate": 0.05,
                    "lost_reply_rate": 0.05,
                    "retry_after_s": 0,
                }
            ],
        }
    )
    with run_mock_process(faults=faults) as mock:
        _seed(mock.url, dossiers)
        settings = settings_for(
            mock, onestop, tmp_path / "state.db", rate_limit=2000, max_attempts=20, transport=transport
        )
        mappings = load_mappings(settings.province.mappings)
        summaries = []
        for _ in range(6):
            summaries.append(asyncio.run(run_pull(settings, mappings)))
            if summaries[-1].listed == 0:
                break
        acknowledged = _acknowledged(mock.url)
    rows = _province(onestop)
    assert sorted(code for code, _, _ in rows) == sorted(d["MaHoSo"] for d in dossiers)  # each exactly once
    assert all(fees == 1 and documents == 1 for _, fees, documents in rows)
    assert all(acknowledged.values()) and len(acknowledged) == 500
    assert sum(s.created for s in summaries) == 500
    assert summaries[-1].listed == 0


def test_a_dossier_the_province_refuses_is_not_acknowledged_and_comes_again(
    onestop: Path, tmp_path: Path
) -> None:
    dossiers = [portal_dossier(n, attachment=True) for n in range(1000, 1010)]
    refused = dossiers[3]["MaHoSo"]
    with sqlite3.connect(onestop) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON ho_so WHEN NEW.so_ho_so = ? "
            "BEGIN SELECT RAISE(ABORT, 'hồ sơ bị khóa'); END".replace("?", f"'{refused}'")
        )
    with run_mock_process() as mock:
        _seed(mock.url, dossiers)
        settings = settings_for(mock, onestop, tmp_path / "state.db", rate_limit=2000)
        mappings = load_mappings(settings.province.mappings)
        first = asyncio.run(run_pull(settings, mappings))
        assert (first.created, first.failed, first.acknowledged) == (9, 1, 9)
        assert _acknowledged(mock.url)[refused] is False
        assert refused not in {code for code, _, _ in _province(onestop)}
        with sqlite3.connect(onestop) as conn:
            conn.execute("DROP TRIGGER refuse")
        second = asyncio.run(run_pull(settings, mappings))
        assert (second.listed, second.created, second.acknowledged) == (1, 1, 1)
        assert all(_acknowledged(mock.url).values())
    assert len(_province(onestop)) == 10


def test_a_dossier_that_cannot_be_mapped_is_rejected_with_its_reason_and_the_others_go_on(
    onestop: Path, tmp_path: Path
) -> None:
    from dvcsync.state import Inbox, StateStore

    dossiers = [portal_dossier(n, attachment=True) for n in range(2000, 2003)]
    dossiers[1]["MaTTHC"] = "2.999999"  # a national procedure the province does not offer
    with run_mock_process() as mock:
        _seed(mock.url, dossiers)
        settings = settings_for(mock, onestop, tmp_path / "state.db", rate_limit=2000)
        summary = asyncio.run(run_pull(settings, load_mappings(settings.province.mappings)))
        acknowledged = _acknowledged(mock.url)
    assert (summary.created, summary.rejected, summary.acknowledged) == (2, 1, 2)
    assert acknowledged[dossiers[1]["MaHoSo"]] is False
    [rejected] = Inbox(StateStore(settings.state.url)).rejected()
    assert rejected["natural_key"] == dossiers[1]["MaHoSo"]
    assert "ma_thu_tuc (from MaTTHC) = '2.999999'" in rejected["error"]


def test_pull_over_soap_takes_in_and_acknowledges_the_same(onestop: Path, tmp_path: Path) -> None:
    dossiers = [portal_dossier(n, attachment=True) for n in range(3000, 3020)]
    with run_mock_process() as mock:
        _seed(mock.url, dossiers)
        # every service over SOAP: the JSON endpoints point nowhere (only the login uses JSON)
        settings = settings_for(
            mock,
            onestop,
            tmp_path / "state.db",
            rate_limit=2000,
            transport="soap",
            integration_endpoint="/nowhere",
            share_endpoint="/nowhere",
        )
        summary = asyncio.run(run_pull(settings, load_mappings(settings.province.mappings)))
        acknowledged = _acknowledged(mock.url)
    assert (summary.listed, summary.created, summary.acknowledged) == (20, 20, 20)
    assert all(acknowledged[d["MaHoSo"]] for d in dossiers)
    rows = {code: (fees, docs) for code, fees, docs in _province(onestop)}
    assert all(rows[d["MaHoSo"]] == (1, 1) for d in dossiers)
