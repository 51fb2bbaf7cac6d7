"""Retention end to end: after a real push, `dvcsync db prune` leaves no citizen's ID number, phone
or e-mail in the state database, and the sync goes on as if nothing happened (a quiet cycle sends
nothing, a change sends exactly that change, `status` still reads)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from dvcsync.cli import app
from dvcsync.mapping import load_mappings
from dvcsync.sync.cycles import run_push
from mock_portal.testing import RunningMock

from .conftest import seed_portal, settings_for


def _personal_values(onestop: Path) -> set[str]:
    with sqlite3.connect(onestop) as conn:
        rows = conn.execute("SELECT so_giay_to, dien_thoai, email FROM ho_so").fetchall()
    return {v for row in rows for v in row if v and len(v) >= 6}


def _state_text(state: Path) -> str:
    with sqlite3.connect(state) as conn:
        outbox = conn.execute("SELECT payload, COALESCE(last_error, '') FROM outbox").fetchall()
        inbox = conn.execute("SELECT payload, COALESCE(error, '') FROM inbox").fetchall()
    return "\n".join(a + "\n" + b for a, b in [*outbox, *inbox])


def test_prune_removes_every_id_number_and_the_sync_goes_on(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    settings = settings_for(mock, onestop, state, batch_size=100, concurrency=4, rate_limit=1000)
    mset = load_mappings(settings.province.mappings)
    seed_portal(mock, onestop)
    first = asyncio.run(run_push(settings, mset))
    assert first.dossiers_pushed > 1500 and first.dead == 0

    personal = _personal_values(onestop)
    before = _state_text(state)
    assert sum(1 for v in personal if v in before) > 1000  # delivered payloads hold them today

    config = tmp_path / "dvcsync.toml"
    config.write_text(
        f'[province]\nsource_url = "sqlite:///{onestop}"\nmappings = "{settings.province.mappings}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\n[state]\nurl = "sqlite:///{state}"\n',
        encoding="utf-8",
    )
    with sqlite3.connect(state) as conn:  # two days pass
        conn.execute("UPDATE outbox SET updated_at = updated_at - 2 * 86400")
        conn.execute("UPDATE inbox SET updated_at = updated_at - 2 * 86400")
    runner = CliRunner()
    pruned = runner.invoke(app, ["--config", str(config), "db", "prune", "--keep-days", "1", "--json"])
    assert pruned.exit_code == 0, pruned.output
    counts = json.loads(pruned.stdout)
    assert sum(v for v in counts.values() if isinstance(v, int)) >= first.dossiers_pushed

    after = _state_text(state)
    leaked = [v for v in personal if v in after]
    assert leaked == [], f"{len(leaked)} personal values left after prune"
    with sqlite3.connect(state) as conn:
        codes = {r[0] for r in conn.execute("SELECT record_key FROM outbox WHERE kind = 'dossier'")}
        stubs = [json.loads(r[0]) for r in conn.execute("SELECT payload FROM outbox WHERE state = 'done'")]
    assert all(s.get("pruned") is True and s.get("hash") for s in stubs)
    assert {s["MaHoSo"] for s in stubs if "MaHoSo" in s} >= codes  # every code is still there

    quiet = asyncio.run(run_push(settings, mset))
    assert (quiet.dossiers_pushed, quiet.steps_pushed, quiet.calls) == (0, 0, 0)

    with sqlite3.connect(onestop) as conn:
        (dossier_id,) = conn.execute(
            "SELECT id FROM ho_so WHERE trang_thai = 'processing' AND ma_ho_so_qg IS NULL ORDER BY id LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE ho_so SET trang_thai = 'releasing', ngay_ket_thuc = '2026-11-20T10:00:00',"
            " updated_at = '2026-11-20T10:00:01' WHERE id = ?",
            (dossier_id,),
        )
    changed = asyncio.run(run_push(settings, mset))
    assert (changed.dossiers_pushed, changed.dead) == (1, 0)

    status = runner.invoke(app, ["--config", str(config), "status", "--json"])
    assert status.exit_code in (0, 1), status.output
    json.loads(status.stdout)
