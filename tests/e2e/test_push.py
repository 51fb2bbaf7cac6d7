"""Province → portal over real HTTP: what the mock stores equals what the mappings make of the
province's data, a quiet second cycle sends nothing, and a change sends exactly that change."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvcsync.mapping import load_mappings
from dvcsync.province.source import SqlSource, make_engine
from dvcsync.sync.cycles import run_push
from mock_portal.testing import RunningMock

from .conftest import REPO, portal_submitted, seed_portal, settings_for


def _expected(onestop: Path | str) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """What the mappings make of every mappable dossier: (DongBoHoSoMC item, history entries).
    ``onestop``: a SQLite file, or any SQLAlchemy URL."""
    mset = load_mappings(REPO / "mappings")
    spec = mset.specs["dossier"]
    assert spec.source is not None
    engine = make_engine(onestop if isinstance(onestop, str) else f"sqlite:///{onestop}")
    out = {}
    for page in SqlSource(engine, spec.source).iter_pages(1000):
        for record in page:
            if record.get("ma_ho_so_qg"):
                continue  # submitted on the portal: its status goes back with DongBoTrangThaiHoSo
            dossier = mset.get("dossier").map(record)
            if not dossier.ok:
                continue
            steps = [
                mset.get("step").map(s, parent=record, record_key=dossier.record) for s in record["steps"]
            ]
            out[dossier.record] = (dossier.value.to_wire(), [s.value.to_wire() for s in steps])
    engine.dispose()
    return out


def _stored(mock: RunningMock) -> dict[str, dict[str, Any]]:
    with httpx.Client(base_url=mock.url, timeout=30) as client:
        listing = client.get("/_admin/dossiers", params={"size": 1000, "page": 1}).json()
        codes = [item["MaHoSo"] for item in listing["items"]]
        page = 2
        while len(codes) < listing["total"]:
            codes += [
                i["MaHoSo"]
                for i in client.get("/_admin/dossiers", params={"size": 1000, "page": page}).json()["items"]
            ]
            page += 1
        return {code: client.get(f"/_admin/dossiers/{code}").json() for code in codes}


ADMIN_KEYS = {
    "QuaTrinhXuLy",
    "writes",
    "writes_by_service",
    "warnings",
    "created_at",
    "updated_at",
    "admin_edits",
}


def _assert_portal_equals(
    mock: RunningMock, expected: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]], *, soap: bool = False
) -> None:
    """``soap``: SOAP cannot carry an empty list (no element), so those are compared as absent."""
    stored = _stored(mock)
    assert set(stored) == set(expected)
    for code, (dossier, history) in expected.items():
        body = stored[code]
        assert {k: v for k, v in body.items() if k not in ADMIN_KEYS} == dossier, code
        assert [
            {k: e.get(k, "") for k in h} for e, h in zip(body["QuaTrinhXuLy"], history, strict=False)
        ] == history
        assert len(body["QuaTrinhXuLy"]) == len(history), f"{code}: history stored twice or lost"


@pytest.mark.parametrize("transport", ["rest", "soap"])
def test_push_2000_dossiers_then_nothing_then_exactly_the_changes(
    mock: RunningMock, onestop: Path, tmp_path: Path, transport: str
) -> None:
    # over SOAP the JSON endpoints point nowhere: only the login may use JSON
    elsewhere = (
        {"integration_endpoint": "/nowhere", "share_endpoint": "/nowhere"} if transport == "soap" else {}
    )
    settings = settings_for(
        mock,
        onestop,
        tmp_path / "state.db",
        batch_size=100,
        concurrency=4,
        rate_limit=1000,
        transport=transport,
        **elsewhere,
    )
    mset = load_mappings(settings.province.mappings)
    expected = _expected(onestop)
    portal_side = seed_portal(mock, onestop)
    assert len(expected) > 1500 and portal_side == portal_submitted(onestop) > 200

    first = asyncio.run(run_push(settings, mset))
    assert first.dossiers_pushed == len(expected)
    assert first.statuses_reported == portal_side
    assert first.steps_pushed == sum(len(h) for _, h in expected.values())
    assert first.enqueue.quarantined == 2000 - len(expected) - portal_side
    assert first.dead == 0
    _assert_portal_equals(mock, expected, soap=transport == "soap")

    quiet = asyncio.run(run_push(settings, mset))
    assert (quiet.dossiers_pushed, quiet.steps_pushed, quiet.statuses_reported, quiet.calls) == (0, 0, 0, 0)

    # ten dossiers move on: a new step and a status change each
    with sqlite3.connect(onestop) as conn:
        rows = conn.execute(
            "SELECT id, so_ho_so FROM ho_so WHERE trang_thai = 'processing' AND ma_ho_so_qg IS NULL"
            " ORDER BY id LIMIT 10"
        ).fetchall()
        assert len(rows) == 10
        for dossier_id, _code in rows:
            (last,) = conn.execute(
                "SELECT MAX(thu_tu) FROM qua_trinh_xu_ly WHERE ho_so_id = ?", (dossier_id,)
            ).fetchone()
            conn.execute(
                "INSERT INTO qua_trinh_xu_ly (ho_so_id, thu_tu, can_bo, chuc_danh, phong_ban, noi_dung,"
                " trang_thai, thoi_diem) VALUES (?, ?, 'Đỗ Thị Mai', 'Chuyên viên', 'Phòng Hộ tịch',"
                " 'Đã xử lý xong', 'releasing', '2026-11-20T10:00:00')",
                (dossier_id, last + 1),
            )
            conn.execute(
                "UPDATE ho_so SET trang_thai = 'releasing', ngay_ket_thuc = '2026-11-20T10:00:00',"
                " updated_at = '2026-11-20T10:00:01' WHERE id = ?",
                (dossier_id,),
            )
    changed = {code for _, code in rows}
    before = _stored(mock)
    third = asyncio.run(run_push(settings, mset))
    assert (third.dossiers_pushed, third.steps_pushed) == (10, 10)
    after = _stored(mock)
    for code in changed:
        assert after[code]["TrangThaiHoSo"] == "9"
        assert len(after[code]["QuaTrinhXuLy"]) == len(before[code]["QuaTrinhXuLy"]) + 1
    assert all(after[c]["writes"] == before[c]["writes"] for c in after if c not in changed)
    _assert_portal_equals(mock, _expected(onestop), soap=transport == "soap")


def test_bad_rows_are_quarantined_named_and_listed_by_status(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from dvcsync.cli import app

    with sqlite3.connect(onestop) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM ho_so WHERE ma_thu_tuc = 'HT-KS-01' AND ngay_tiep_nhan IS NOT NULL"
                " AND ma_ho_so_qg IS NULL ORDER BY id LIMIT 5"
            )
        ]
        assert len(ids) == 5
        conn.execute("UPDATE ho_so SET ma_thu_tuc = 'KHONG-CO' WHERE id = ?", (ids[0],))
        conn.execute("UPDATE ho_so SET ngay_tiep_nhan = '2025-02-30T09:00:00' WHERE id = ?", (ids[1],))
        conn.execute("UPDATE ho_so SET trang_thai = 'archived' WHERE id = ?", (ids[2],))
        conn.execute("UPDATE ho_so SET trich_yeu = ? WHERE id = ?", ("Đăng ký " * 200, ids[3]))
        conn.execute("UPDATE ho_so SET chu_ho_so = CAST(X'4E677579C3A16EFF' AS TEXT) WHERE id = ?", (ids[4],))
        bad = {
            r[0]: r[1]
            for r in conn.execute(f"SELECT id, so_ho_so FROM ho_so WHERE id IN ({','.join('?' * 5)})", ids)
        }
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        f'[province]\nsource_url = "sqlite:///{onestop}"\nmappings = "{REPO / "mappings"}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\nrate_limit = 1000\nbatch_size = 100\n'
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n',
        encoding="utf-8",
    )
    seed_portal(mock, onestop)
    runner = CliRunner()
    started = runner.invoke(app, ["--config", str(config), "db", "upgrade"])  # as an operator does
    assert started.exit_code == 0, started.output
    pushed = runner.invoke(app, ["--config", str(config), "sync", "push", "--json"])
    assert pushed.exit_code == 0, pushed.output
    status_out = runner.invoke(app, ["--config", str(config), "status", "--json"])
    import json

    report = json.loads(status_out.stdout)
    reasons = {q["record_key"]: " ".join(q["reasons"]) for q in report["quarantined"]}
    expectations = {
        ids[0]: ("MaTTHC", "KHONG-CO"),
        ids[1]: ("NgayTiepNhan", "2025-02-30"),
        ids[2]: ("TrangThaiHoSo", "archived"),
        ids[3]: ("TrichYeuHoSo", "too long"),
        ids[4]: ("ChuHoSo", "not valid UTF-8"),
    }
    for dossier_id, (field, value) in expectations.items():
        text = reasons[bad[dossier_id]]
        assert field in text and value in text, text
    stored = _stored(mock)
    assert not set(bad.values()) & set(stored)
    assert len(stored) == 2000 - report["quarantined_count"] - portal_submitted(onestop)


def test_larger_history_batches_make_fewer_calls_and_the_same_portal_state(
    mock: RunningMock, tmp_path: Path
) -> None:
    from dvcsync.province.sample import generate

    onestop = tmp_path / "small.db"
    generate(onestop, 200, 9)
    expected = _expected(onestop)
    seed_portal(mock, onestop)
    settings = settings_for(
        mock, onestop, tmp_path / "state.db", batch_size=100, rate_limit=1000, history_batch_size=50
    )
    summary = asyncio.run(run_push(settings, load_mappings(settings.province.mappings)))
    steps = sum(len(h) for _, h in expected.values())
    assert summary.steps_pushed == steps
    # ~50 history entries a call instead of 10 (status reports go one a call)
    # (and one read-back a dossier met for the first time: the portal may hold it already)
    reads = summary.first_contact.read + summary.first_contact.read_failed
    assert reads == summary.enqueue.dossiers_enqueued
    assert summary.calls - summary.statuses_reported - reads <= 2 + steps // 40
    _assert_portal_equals(mock, expected)


def test_push_over_soap_leaves_the_same_portal_state_as_rest(tmp_path: Path) -> None:
    from dvcsync.province.sample import generate
    from mock_portal.testing import run_mock_process

    onestop = tmp_path / "soap.db"
    generate(onestop, 200, 31)
    states = {}
    for transport in ("rest", "soap"):
        with run_mock_process() as portal:
            seed_portal(portal, onestop)
            # over SOAP the JSON endpoints point nowhere: only the login may use JSON
            elsewhere = (
                {"integration_endpoint": "/nowhere", "share_endpoint": "/nowhere"}
                if transport == "soap"
                else {}
            )
            settings = settings_for(
                portal,
                onestop,
                tmp_path / f"{transport}-state.db",
                batch_size=50,
                rate_limit=1000,
                transport=transport,
                **elsewhere,
            )
            summary = asyncio.run(run_push(settings, load_mappings(settings.province.mappings)))
            assert summary.dead == 0 and summary.dossiers_pushed + summary.statuses_reported > 190
            stored = _stored(portal)
            states[transport] = {
                code: {k: v for k, v in body.items() if k not in {"created_at", "updated_at"}}
                for code, body in stored.items()
            }
    # exactly: an empty list travels over SOAP as its element with xsi:nil (soap-facade, WSDL)
    assert states["soap"] == states["rest"]
    assert any([] in body.values() for body in states["soap"].values()), "no empty list was tested"


def test_a_cycle_that_fails_is_recorded_as_failed(mock: RunningMock, tmp_path: Path) -> None:
    from dvcsync.portal import AuthError
    from dvcsync.province.sample import generate
    from dvcsync.state import StateStore

    onestop = tmp_path / "few.db"
    generate(onestop, 20, 3)
    settings = settings_for(mock, onestop, tmp_path / "state.db", password="sai-mat-khau")
    with pytest.raises(AuthError):
        asyncio.run(run_push(settings, load_mappings(settings.province.mappings)))
    [run] = StateStore(settings.state.url).runs()
    assert (run["job"], run["status"]) == ("push", "failed") and "AuthError" in run["error"]
