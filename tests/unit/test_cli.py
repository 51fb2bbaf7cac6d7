"""The `dvcsync` command as a user meets it: help, exit codes, clear errors, masked output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dvcsync.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DVCSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "onestop.db"
    result = runner.invoke(
        app, ["sample-db", "--out", str(path), "--dossiers", "300", "--seed", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    return path


def _config(tmp_path: Path, db: Path, mappings: Path | None = None) -> Path:
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        f'[province]\nsource_url = "sqlite:///{db}"\nmappings = "{mappings or REPO / "mappings"}"\n',
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["sample-db"],
        ["mappings"],
        ["mappings", "check"],
        ["mappings", "schema"],
        ["push", "dossier"],
        ["demo"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_sample_db_refuses_to_overwrite(tmp_path: Path, sample_db: Path) -> None:
    result = runner.invoke(app, ["sample-db", "--out", str(sample_db), "--dossiers", "5"])
    assert result.exit_code == 2
    assert "--overwrite" in result.output


def test_mappings_check_over_the_sample(tmp_path: Path, sample_db: Path) -> None:
    config = _config(tmp_path, sample_db)
    result = runner.invoke(app, ["--config", str(config), "mappings", "check", "--json"])
    report = json.loads(result.stdout)
    # portal-submitted dossiers go through status_report (applies_to), as the push sends them
    assert report["records"]["dossier"] + report["records"].get("status_report", 0) == 300
    assert report["records"]["step"] > 300
    # the sample deliberately holds a few dossiers on procedures with no national code
    failed = report["failed"].get("dossier", 0)
    assert result.exit_code == (1 if failed else 0)
    for failure in report["failures"]:
        for example in failure["examples"]:
            assert example["record"] and example["field"] and example["reason"]


def test_mappings_check_reports_a_bad_spec_with_file_and_line(tmp_path: Path, sample_db: Path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    fee = mappings / "fee.yaml"
    fee.write_text(
        fee.read_text(encoding="utf-8").replace("format: amount", "formt: amount"), encoding="utf-8"
    )
    config = _config(tmp_path, sample_db, mappings)
    result = runner.invoke(app, ["--config", str(config), "mappings", "check"])
    assert result.exit_code == 2
    assert "fee.yaml:" in result.output and "fields.Gia.formt: unknown key 'formt'" in result.output


def test_configuration_errors_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[portal]\nconcurency = 3\n", encoding="utf-8")
    result = runner.invoke(app, ["--config", str(config), "mappings", "check"])
    assert result.exit_code == 2
    assert "portal.concurency: unknown key" in result.output


def test_mappings_schema_is_a_json_schema(tmp_path: Path) -> None:
    result = runner.invoke(app, ["mappings", "schema"])
    schema = json.loads(result.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"name", "output", "fields"} <= set(schema["properties"])
    codes = json.loads(runner.invoke(app, ["mappings", "schema", "--kind", "codes"]).stdout)
    assert "entries" in codes["properties"]
    out = tmp_path / "s.json"
    assert runner.invoke(app, ["mappings", "schema", "-o", str(out)]).exit_code == 0
    assert json.loads(out.read_text(encoding="utf-8")) == schema


def test_push_dossier_dry_run_prints_the_envelope_with_personal_data_masked(
    tmp_path: Path, sample_db: Path
) -> None:
    import sqlite3

    config = _config(tmp_path, sample_db)
    with sqlite3.connect(sample_db) as conn:
        checked = json.loads(
            runner.invoke(app, ["--config", str(config), "mappings", "check", "--json"]).stdout
        )
        bad = {e["record"] for f in checked["failures"] for e in f["examples"]}
        rows = conn.execute("SELECT so_ho_so, dien_thoai FROM ho_so WHERE dien_thoai IS NOT NULL").fetchall()
    so_ho_so, phone = next(r for r in rows if r[0] not in bad)
    result = runner.invoke(app, ["--config", str(config), "push", "dossier", so_ho_so, "--dry-run"])
    assert result.exit_code == 0, result.output
    envelopes = json.loads(result.stdout)
    [item] = envelopes["DongBoHoSoMC"]["data"]
    assert item["MaHoSo"] == so_ho_so
    assert (
        phone not in result.stdout and item["SoDienThoai"] == phone[:2] + "*" * (len(phone) - 4) + phone[-2:]
    )
    assert all(entry["MaHoSo"] == so_ho_so for entry in envelopes["CapNhatTienDoHoSoMC"]["data"])
    clear = runner.invoke(
        app, ["--config", str(config), "push", "dossier", so_ho_so, "--dry-run", "--show-personal"]
    )
    assert phone in clear.stdout


def test_push_unknown_dossier(tmp_path: Path, sample_db: Path) -> None:
    config = _config(tmp_path, sample_db)
    result = runner.invoke(app, ["--config", str(config), "push", "dossier", "KHONG-CO", "--dry-run"])
    assert result.exit_code == 1
    assert "no dossier 'KHONG-CO'" in result.output


def test_a_missing_source_database_is_a_clear_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nothere.db"
    config = _config(tmp_path, missing)
    result = runner.invoke(app, ["--config", str(config), "mappings", "check"])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "Traceback" not in result.output
    assert not missing.exists()
