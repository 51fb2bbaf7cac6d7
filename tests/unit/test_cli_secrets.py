"""The commands that reach the portal or the payment platform refuse the mock's published
password and payment secret when anything they would reach is not on this machine; `db prune`
strips personal data from settled rows."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dvcsync.cli import app
from dvcsync.state import Inbox, MappedRecord, Outcome, StateStore

runner = CliRunner()
REMOTE = "https://dvcqg.example.gov.vn/dvcqg"
LIVE_COMMANDS = [
    ["run"],
    ["sync", "push"],
    ["sync", "pull"],
    ["sync", "payments"],
    ["sync", "all", "--json"],
    ["push", "dossier", "000.00.01.H40-251120-000001"],
]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DVCSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("command", LIVE_COMMANDS, ids=" ".join)
def test_the_published_password_with_a_remote_portal_is_refused(
    command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DVCSYNC_PORTAL__ADAPTER_URL", REMOTE)
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    assert "refusing" in result.stderr and "portal.password" in result.stderr
    assert "password_file" in result.stderr
    assert REMOTE in result.stderr
    assert result.stdout == ""  # refused before doing anything
    assert not list(tmp_path.iterdir())  # not even a state file


def test_the_published_payment_secret_with_a_public_listener_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DVCSYNC_SERVER__HOST", "0.0.0.0")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2, result.output
    assert "payment.secret" in result.stderr and "secret_file" in result.stderr
    assert "portal.password" not in result.stderr


@pytest.mark.parametrize("command", LIVE_COMMANDS, ids=" ".join)
def test_a_password_file_passes_the_check(
    command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "portal.password"
    secret.write_text("a real password\n", encoding="utf-8")
    monkeypatch.setenv("DVCSYNC_PORTAL__ADAPTER_URL", REMOTE)
    monkeypatch.setenv("DVCSYNC_PORTAL__PASSWORD_FILE", str(secret))
    monkeypatch.setenv("DVCSYNC_PROVINCE__MAPPINGS", str(tmp_path / "no-mappings"))
    result = runner.invoke(app, command)
    # it goes on, and stops later on something else (here: no mappings), never on the secrets
    assert "refusing" not in result.stderr and "portal.password" not in result.stderr
    assert "invalid mapping specs" in result.stderr


def test_loopback_and_dry_runs_are_not_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DVCSYNC_PROVINCE__MAPPINGS", str(tmp_path / "no-mappings"))
    local = runner.invoke(app, ["sync", "push"])  # the defaults: the mock on 127.0.0.1
    assert "refusing" not in local.stderr and "invalid mapping specs" in local.stderr
    monkeypatch.setenv("DVCSYNC_PORTAL__ADAPTER_URL", REMOTE)
    dry = runner.invoke(app, ["push", "dossier", "X", "--dry-run"])  # sends nothing
    assert "refusing" not in dry.stderr and "invalid mapping specs" in dry.stderr


# ---------------------------------------------------------------- db prune

PERSONAL = ("079204001234", "0912345678", "an.nguyen@example.vn", "Nguyễn Văn An")


def _delivered_state(db: Path, when: float) -> None:
    """Two dossiers with history, delivered at ``when``, one dead letter, one settled inbox event."""
    store = StateStore(f"sqlite:///{db}")
    store.upgrade()
    records = [
        MappedRecord(
            key,
            n,
            "2025-08-01T10:00:00",
            {
                "MaHoSo": key,
                "TrangThaiHoSo": "4",
                "ChuHoSo": "Nguyễn Văn An",
                "SoGiayToChuHoSo": "079204001234",
                "SoDienThoai": "0912345678",
                "Email": "an.nguyen@example.vn",
            },
            steps=[("1", {"MaHoSo": key, "NoiDungXuLy": "gọi 0912345678", "TrangThai": "4"})],
        )
        for n, key in enumerate(["A-1", "A-2", "A-3"], start=1)
    ]
    store.enqueue_page(records, cursor_name="c", watermark="w", last_key=3, now=when)
    due = store.due("dossier", 10, now=when)
    store.record_outcomes(
        [
            Outcome(
                e.id, e.record_key, "dossier", "dead" if e.record_key == "A-3" else "done", e.payload_hash
            )
            for e in due
        ],
        now=when,
    )
    steps = store.due("steps", 10, now=when)
    store.record_outcomes(
        [Outcome(e.id, e.record_key, "steps", "done", step_keys=e.history[0]) for e in steps], now=when
    )
    inbox = Inbox(store)
    item = inbox.receive("portal_dossier", "G-1", {"MaHoSo": "G-1", "Email": "an.nguyen@example.vn"})
    inbox.mark(item.id, "acknowledged")
    with store.begin() as conn:
        conn.exec_driver_sql(f"UPDATE inbox SET updated_at = {when}")
    store.close()


def test_db_prune(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    _delivered_state(db, time.time() - 40 * 86400)  # well past the default 30 days
    monkeypatch.setenv("DVCSYNC_STATE__URL", f"sqlite:///{db}")

    kept = runner.invoke(app, ["db", "prune", "--keep-days", "60", "--json"])
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout) == {"keep_days": 60, "outbox_done": 0, "outbox_superseded": 0, "inbox": 0}

    result = runner.invoke(app, ["db", "prune", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "keep_days": 30,
        "outbox_done": 4,
        "outbox_superseded": 0,
        "inbox": 1,
    }
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT record_key, state, payload FROM outbox").fetchall()
        inbox = conn.execute("SELECT payload FROM inbox").fetchone()[0]
        runs = conn.execute("SELECT job, status, counts FROM run ORDER BY id").fetchall()
    assert not [v for v in PERSONAL if v in inbox]
    for key, state, payload in rows:
        leaked = [v for v in PERSONAL if v in payload]
        assert leaked if state != "done" else not leaked, (key, state)  # dead, pending: kept
    assert [(job, status) for job, status, _ in runs] == [("prune", "ok"), ("prune", "ok")]
    assert json.loads(runs[-1][2])["outbox_done"] == 4

    table = runner.invoke(app, ["db", "prune"])
    assert table.exit_code == 0 and "delivered outbox payloads" in table.stdout


def test_db_prune_refuses_a_retention_of_nothing(tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "prune", "--keep-days", "0"])
    assert result.exit_code == 2 and "--keep-days" in result.stderr
