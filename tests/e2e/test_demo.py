"""`make demo` runs `dvcsync demo`: it must keep working on a fresh folder."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dvcsync.cli import app


def test_demo_pushes_the_sample_to_the_mock_and_leaves_a_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Started anywhere: it uses the shipped mappings, not ./mappings, and no DVCSYNC_ variable.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "dossier.yaml").write_text("not: [a mapping\n", encoding="utf-8")
    monkeypatch.setenv("DVCSYNC_STATE__URL", f"sqlite:///{tmp_path / 'production-state.db'}")
    monkeypatch.setenv("DVCSYNC_CONFIG", str(tmp_path / "production.toml"))
    out = tmp_path / "demo-out"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--dossiers", "150", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "pushed (DongBoHoSoMC)" in result.output
    for name in ("onestop.db", "state.db", "mock-portal.db", "dvcsync.toml"):
        assert (out / name).exists(), name
    with sqlite3.connect(out / "state.db") as conn:
        (done,) = conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE state = 'done' AND kind IN ('dossier', 'status')"
        ).fetchone()
        (quarantined,) = conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()
    assert done + quarantined == 150
    assert not (tmp_path / "production-state.db").exists()
    monkeypatch.delenv("DVCSYNC_STATE__URL")
    monkeypatch.delenv("DVCSYNC_CONFIG")
    status = CliRunner().invoke(app, ["--config", str(out / "dvcsync.toml"), "status"])
    assert status.exit_code == 0 and "last runs" in status.output
