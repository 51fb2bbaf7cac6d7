"""`dvcsync config show|check` and `--version`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dvcsync.cli import app

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("clean_env")


def test_show_says_where_each_value_came_from_and_masks_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "portal.secret").write_text("mat-khau-that-su\n", encoding="utf-8")
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        '[portal]\npassword_file = "portal.secret"\nconcurrency = 2\n'
        '[state]\nurl = "postgresql://dvcsync:pw-in-url@db/state"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("DVCSYNC_PORTAL__TIMEOUT", "7")
    result = runner.invoke(app, ["--config", str(config), "config", "show", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["portal.timeout"] == {"value": 7.0, "from": "environment DVCSYNC_PORTAL__TIMEOUT"}
    assert shown["portal.concurrency"] == {"value": 2, "from": f"file {config}"}
    assert shown["portal.batch_size"]["from"] == "default"
    assert shown["portal.password"]["value"] == "********"
    assert "mat-khau-that-su" not in result.stdout and "pw-in-url" not in result.stdout
    table = runner.invoke(app, ["--config", str(config), "config", "show", "--changed"])
    assert "portal.timeout" in table.stdout and "portal.batch_size" not in table.stdout


def test_check_finds_what_a_first_run_would_trip_on(tmp_path: Path) -> None:
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        '[province]\nsource_url = "sqlite:///missing.db"\n'
        '[portal]\nadapter_url = "https://dvcqg.example.gov.vn/dvcqg"\nca_bundle = "nope.pem"\n'
        '[server]\nhost = "0.0.0.0"\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["--config", str(config), "config", "check", "--json"])
    assert result.exit_code == 1
    problems = "\n".join(json.loads(result.stdout)["problems"])
    for expected in ("password_file", "secret_file", "[server] allow", "ca_bundle", "missing.db"):
        assert expected in problems, expected
    assert not (tmp_path / "missing.db").exists()  # checking created nothing


def test_check_passes_a_sound_configuration_and_refuses_an_invalid_one(tmp_path: Path) -> None:
    from dvcsync.province.sample import generate

    generate(tmp_path / "onestop.db", 5, 1)
    config = tmp_path / "dvcsync.toml"
    config.write_text('[province]\nsource_url = "sqlite:///onestop.db"\n', encoding="utf-8")
    ok = runner.invoke(app, ["--config", str(config), "config", "check"])
    assert ok.exit_code == 0 and "configuration OK" in ok.stdout, ok.output
    config.write_text("[portal]\nconcurrency = 0\n", encoding="utf-8")
    bad = runner.invoke(app, ["--config", str(config), "config", "check"])
    assert bad.exit_code == 2 and "portal.concurrency" in bad.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("dvcsync ")


def test_help_keeps_section_names_in_brackets() -> None:
    result = runner.invoke(app, ["run", "--help"])
    assert result.exit_code == 0 and "[schedule]" in result.stdout and "[server]" in result.stdout
    result = runner.invoke(app, ["--help"])
    assert "Exit codes" in result.stdout and "4 the" in result.stdout.replace("\n", " ").replace("  ", " ")


def test_read_only_commands_create_nothing(tmp_path: Path) -> None:
    for args in (
        ["status"],
        ["status", "--json"],
        ["dead-letters", "list"],
        ["dead-letters", "list", "--json"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
    assert json.loads(runner.invoke(app, ["status", "--json"]).stdout) == {"state": None}
    assert json.loads(runner.invoke(app, ["dead-letters", "list", "--json"]).stdout) == []
    assert "no state yet" in runner.invoke(app, ["status"]).stdout
    assert list(tmp_path.iterdir()) == []  # no database, no lock file


def test_state_writing_commands_wait_for_the_lock_then_exit_3(tmp_path: Path) -> None:
    from dvcsync.sync.state_lock import acquire

    config = tmp_path / "dvcsync.toml"
    config.write_text("[state]\nlock_wait_s = 0\n", encoding="utf-8")
    # the state exists (commands other than db upgrade refuse to create one)
    assert runner.invoke(app, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    held = acquire(f"sqlite:///{tmp_path / 'dvcsync-state.db'}", what="dvcsync run")
    try:
        # (db upgrade at the current revision takes no lock at all: rolling restarts)
        assert runner.invoke(app, ["--config", str(config), "db", "upgrade"]).exit_code == 0
        for args in (
            ["db", "prune"],
            ["dead-letters", "retry"],
            ["dead-letters", "discard", "1"],
        ):
            result = runner.invoke(app, ["--config", str(config), *args])
            assert result.exit_code == 3 and "held by" in result.output, (args, result.output)
    finally:
        assert held is not None
        held.close()
    assert runner.invoke(app, ["--config", str(config), "db", "upgrade"]).exit_code == 0
