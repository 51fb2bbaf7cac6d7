"""The OpenCPS v2 profile end to end, as a new user runs it: ``sample-db --profile opencps``,
``init --profile opencps``, then ``sync push`` against the mock portal over real HTTP. Every
submitted dossier that is the province's own arrives once with its whole history; drafts never
leave; dossiers received from the portal (systemId 5) are reported by DongBoTrangThaiHoSo under
the portal's code; a second push sends exactly what changed."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from typer.testing import CliRunner

from dvcsync.cli import app
from dvcsync.config import Settings
from dvcsync.demo import seed_portal_side
from dvcsync.mapping import load_mappings
from dvcsync.sync.cycles import run_push
from mock_portal.testing import RunningMock

from ..every_job import assert_portal_holds, expected, opencps_submitted, stored

DOSSIERS = 500


@pytest.fixture
def opencps(tmp_path: Path) -> tuple[Path, Path]:
    """An OpenCPS database and the folder `dvcsync init --profile opencps` wrote, by the CLI."""
    runner = CliRunner()
    db = tmp_path / "opencps.db"
    made = runner.invoke(app, ["sample-db", "--profile", "opencps", "-n", str(DOSSIERS), "--out", str(db)])
    assert made.exit_code == 0, made.output
    written = runner.invoke(app, ["init", str(tmp_path / "conf"), "--profile", "opencps"])
    assert written.exit_code == 0, written.output
    return db, tmp_path / "conf" / "mappings"


def _settings(mock: RunningMock, db: Path, mappings: Path, state: Path) -> Settings:
    return Settings.load(
        None,
        use_env=False,
        province={"source_url": f"sqlite:///{db}", "mappings": str(mappings)},
        portal={
            "adapter_url": mock.adapter_url,
            "soap_url": f"{mock.url}/soap",
            "timeout": 5.0,
            "batch_size": 100,
            "concurrency": 4,
            "rate_limit": 1000,
        },
        state={"url": f"sqlite:///{state}"},
    )


def test_opencps_profile_pushes_with_configuration_alone(
    mock: RunningMock, opencps: tuple[Path, Path], tmp_path: Path
) -> None:
    db, mappings = opencps
    settings = _settings(mock, db, mappings, tmp_path / "state.db")
    mset = load_mappings(mappings)
    own, reported = expected(f"sqlite:///{db}", mset, "opencps")
    with sqlite3.connect(db) as conn:
        drafts = conn.execute("SELECT COUNT(*) FROM opencps_dossier WHERE dossierStatus = ''").fetchone()[0]
        unmapped = conn.execute(
            "SELECT COUNT(*) FROM opencps_dossier d WHERE dossierStatus <> '' AND systemId <> 5"
            " AND NOT EXISTS (SELECT 1 FROM opencps_serviceinfomapping m WHERE m.serviceCode = d.serviceCode)"
        ).fetchone()[0]
        sub_statuses = {r[0] for r in conn.execute("SELECT DISTINCT dossierSubStatus FROM opencps_dossier")}
    assert drafts > 10 and len(reported) > 30 and len(own) == DOSSIERS - drafts - len(reported) - unmapped
    assert {"processing_1", "done_1", "releasing_0"} <= sub_statuses
    assert seed_portal_side(mock.url, f"sqlite:///{db}", mset) == len(reported)

    first = asyncio.run(run_push(settings, mset))
    assert first.dossiers_pushed == len(own)
    assert first.steps_pushed == sum(len(h) for _, h in own.values())
    assert first.statuses_reported == len(reported)
    assert first.enqueue.quarantined == unmapped  # local procedures with no national code, named
    assert first.dead == 0
    with httpx.Client(base_url=mock.url, timeout=30) as client:
        assert_portal_holds(client, own)
        for code, status in reported.items():  # under the portal's code, never as DongBoHoSoMC
            assert client.get(f"/_admin/portal-dossiers/{code}").json()["status"] == status

    quiet = asyncio.run(run_push(settings, mset))
    assert (quiet.dossiers_pushed, quiet.steps_pushed, quiet.statuses_reported) == (0, 0, 0)

    # OpenCPS moves five of its own dossiers on (a new action, status and sub-status, modifiedDate)
    # and one received from the portal is returned: only those go out
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT dossierId, dossierNo, dossierActionId FROM opencps_dossier"
            " WHERE dossierStatus = 'processing' AND systemId = 0"
            " AND serviceCode IN (SELECT serviceCode FROM opencps_serviceinfomapping)"
            " ORDER BY dossierId LIMIT 5"
        ).fetchall()
        assert len(rows) == 5
        (next_id,) = conn.execute("SELECT MAX(dossierActionId) FROM opencps_dossieraction").fetchone()
        for n, (dossier_id, _no, last_action) in enumerate(rows, 1):
            conn.execute(
                "INSERT INTO opencps_dossieraction (dossierActionId, dossierId, previousActionId, actionCode,"
                " actionUser, actionName, actionNote, stepCode, stepName, createDate, modifiedDate)"
                " VALUES (?, ?, ?, '5100', 'Đỗ Thị Mai', 'Chuyển trả kết quả', 'Đã có kết quả', '900',"
                " 'Chờ trả kết quả', '2026-11-20 10:00:00', '2026-11-20 10:00:00')",
                (next_id + n, dossier_id, last_action),
            )
            conn.execute(
                "UPDATE opencps_dossier SET dossierStatus = 'releasing', dossierSubStatus = 'releasing_0',"
                " releaseDate = '2026-11-20 10:00:00', dossierActionId = ?,"
                " modifiedDate = '2026-11-20 10:00:01'"
                " WHERE dossierId = ?",
                (next_id + n, dossier_id),
            )
        portal_row = conn.execute(
            "SELECT dossierId, referenceUid FROM opencps_dossier"
            " WHERE systemId = 5 AND dossierStatus = 'releasing'"
            " ORDER BY dossierId LIMIT 1"
        ).fetchone()
        assert portal_row is not None
        conn.execute(
            "UPDATE opencps_dossier SET dossierStatus = 'done', dossierSubStatus = 'done_1',"
            " finishDate = '2026-11-20 10:05:00', modifiedDate = '2026-11-20 10:05:00' WHERE dossierId = ?",
            (portal_row[0],),
        )
    changed = {no for _id, no, _a in rows}
    with httpx.Client(base_url=mock.url, timeout=30) as client:
        before = stored(client)
        second = asyncio.run(run_push(settings, mset))
        assert (second.dossiers_pushed, second.steps_pushed, second.statuses_reported) == (5, 5, 1)
        after = stored(client)
        for code in changed:
            assert after[code]["TrangThaiHoSo"] == "9"
            assert len(after[code]["QuaTrinhXuLy"]) == len(before[code]["QuaTrinhXuLy"]) + 1
        assert all(after[c]["writes"] == before[c]["writes"] for c in after if c not in changed)
        assert client.get(f"/_admin/portal-dossiers/{portal_row[1]}").json()["status"] == "10"
    _own, _ = expected(f"sqlite:///{db}", mset, "opencps")
    with httpx.Client(base_url=mock.url, timeout=30) as client:
        assert_portal_holds(client, _own)


def test_opencps_profile_takes_in_portal_dossiers_and_reports_their_status(
    mock: RunningMock, opencps: tuple[Path, Path], tmp_path: Path
) -> None:
    """Pull writes OpenCPS rows as its own DVCQG intake would (ids from Liferay's counter, systemId
    5, the portal code as dossierNo and referenceUid); the next push reports them, not as its own."""
    from dvcsync.sync.cycles import run_pull

    db, mappings = opencps
    settings = _settings(mock, db, mappings, tmp_path / "state.db")
    mset = load_mappings(mappings)
    with sqlite3.connect(db) as conn:
        (counter,) = conn.execute(
            "SELECT currentId FROM counter WHERE name = 'org.opencps.dossiermgt.model.Dossier'"
        ).fetchone()
    submitted = opencps_submitted(("An", "Bình", "Chi"))
    seeded = seed_portal_side(mock.url, f"sqlite:///{db}", mset)  # the sample's, submitted earlier
    httpx.post(
        f"{mock.url}/_admin/portal-dossiers",
        params={"push": "false"},
        json={"dossiers": submitted},
        timeout=30,
    ).raise_for_status()
    pulled = asyncio.run(run_pull(settings, mset))
    assert (pulled.created, pulled.already_in_province) == (3, seeded)
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT * FROM opencps_dossier WHERE dossierId > ? ORDER BY dossierId", (counter,)
        ).fetchall()
        (after,) = conn.execute(
            "SELECT currentId FROM counter WHERE name = 'org.opencps.dossiermgt.model.Dossier'"
        ).fetchone()
    assert [r["dossierId"] for r in rows] == [counter + 1, counter + 2, counter + 3] and after == counter + 3
    for row, sent in zip(rows, submitted, strict=True):
        assert row["dossierNo"] == row["referenceUid"] == sent["MaHoSo"]
        assert (row["systemId"], row["dossierStatus"], row["serviceCode"], row["online_"]) == (
            5,
            "new",
            "HT-KS-01",
            1,
        )
        assert row["createDate"] and row["modifiedDate"]

    pushed = asyncio.run(run_push(settings, mset))  # the three are new on both sides: nothing to say
    assert (pushed.statuses_reported, pushed.dead) == (seeded, 0)
    # OpenCPS receives the first one, stamping its wall clock (after the pull's stamps, as in real life)
    stamp = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE opencps_dossier SET dossierStatus = 'receiving', dossierSubStatus = 'receiving_1',"
            " receiveDate = ?, modifiedDate = ? WHERE dossierNo = ?",
            (stamp, stamp, submitted[0]["MaHoSo"]),
        )
    moved = asyncio.run(run_push(settings, mset))
    assert (moved.dossiers_pushed, moved.statuses_reported, moved.dead) == (0, 1, 0)
    with httpx.Client(base_url=mock.url, timeout=30) as client:
        assert not {sent["MaHoSo"] for sent in submitted} & set(stored(client))  # never as its own
        assert client.get(f"/_admin/portal-dossiers/{submitted[0]['MaHoSo']}").json()["status"] == "2"
        # the citizen withdraws it on the portal: the pull writes status and action into OpenCPS
        assert client.post(f"/_admin/dossiers/{submitted[0]['MaHoSo']}/withdraw").status_code == 200
    withdrawn = asyncio.run(run_pull(settings, mset))
    assert withdrawn.withdrawn == 1
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute(
            "SELECT * FROM opencps_dossier WHERE dossierNo = ?", (submitted[0]["MaHoSo"],)
        ).fetchone()
        actions = conn.execute(
            "SELECT * FROM opencps_dossieraction WHERE dossierId = ? ORDER BY dossierActionId",
            (row["dossierId"],),
        ).fetchall()
    # OpenCPS's sub-status is left as it was: keyed with its status, it no longer decides
    assert (row["dossierStatus"], row["dossierSubStatus"]) == ("cancelled", "receiving_1")
    assert [(a["stepCode"], a["actionName"]) for a in actions] == [("cancelled", "Rút hồ sơ")]
    assert mset.get("status_report").map(dict(row)).value.to_wire()["TrangThai"] == "7"
    after = asyncio.run(run_push(settings, mset))
    assert after.dead == 0


def test_demo_runs_end_to_end_on_the_opencps_profile(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--profile", "opencps", "-n", "300", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "OpenCPS v2 database" in result.output
    assert re.search(r"payments completed and applied once \(QUERY\)\s*│\s*1", result.output), result.output
    with sqlite3.connect(tmp_path / "onestop.db") as conn:  # the 20 portal dossiers of the demo, taken in
        (taken,) = conn.execute(
            "SELECT COUNT(*) FROM opencps_dossier WHERE systemId = 5 AND dossierNo LIKE 'G22.99-%-9000%'"
        ).fetchone()
    assert taken == 20
    unknown = CliRunner().invoke(app, ["demo", "--profile", "nope", "--out", str(tmp_path / "x")])
    assert unknown.exit_code == 2 and "unknown --profile 'nope'" in unknown.output
