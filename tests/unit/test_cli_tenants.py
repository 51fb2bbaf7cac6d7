"""``--tenant`` on every command: refusals (exit 2, the codes named), the chosen tenant's state
reached, ``status`` per tenant, ``config show|check`` per tenant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from dvcsync.cli import app

runner = CliRunner()

# Commands that never read the configuration (they write one, or use their own): no --tenant.
NO_TENANT = {"init", "sample-db", "mappings schema", "demo"}


pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def two(tmp_path: Path) -> Path:
    (tmp_path / "b-portal.secret").write_text("mat-khau-cua-b\n", encoding="utf-8")
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        '[state]\nurl = "sqlite:///state/dvcsync-state.db"\n'
        "[portal]\ntimeout = 9\n"
        '[tenants.a.province]\nsource_url = "sqlite:///a.db"\n'
        '[tenants.a.portal]\ndstcode = "H01"\n'
        '[tenants.b.portal]\ndstcode = "H02"\npassword_file = "b-portal.secret"\n',
        encoding="utf-8",
    )
    return config


def _commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every command under ``group`` by its full name (Typer's click, whichever it vendors)."""
    out = []
    for name, command in getattr(group, "commands", {}).items():
        full = f"{prefix}{name}"
        out.append((full, command))
        out.extend(_commands(command, full + " "))
    return out


def test_every_command_that_reads_the_configuration_takes_tenant() -> None:
    root = typer.main.get_command(app)
    assert "--tenant" in {o for p in root.params for o in p.opts}  # dvcsync --tenant CODE <command>
    commands = _commands(root)
    assert len(commands) > 25
    for name, command in commands:
        if getattr(command, "commands", None) and name != "reconcile":
            continue  # a group's subcommands take it
        options = {o for p in command.params for o in p.opts}
        assert ("--tenant" in options) == (name not in NO_TENANT), name
    for argv in (["--help"], ["sync", "push", "--help"], ["status", "--help"], ["config", "show", "--help"]):
        assert "--tenant" in runner.invoke(app, argv).stdout, argv


def test_tenant_without_tenants_configured_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "plain.toml"
    config.write_text("[portal]\ntimeout = 3\n", encoding="utf-8")
    for argv in (["status", "--tenant", "a"], ["--tenant", "a", "dead-letters", "list"]):
        result = runner.invoke(app, ["--config", str(config), *argv])
        assert result.exit_code == 2, result.output
        expected = f"--tenant a: no tenants are configured (no [tenants.<code>] tables in {config})"
        assert expected in result.output
    monkeypatch.setenv("DVCSYNC_TENANT", "a")
    result = runner.invoke(app, ["--config", str(config), "db", "upgrade"])
    assert result.exit_code == 2 and "DVCSYNC_TENANT=a: no tenants are configured" in result.output
    assert not (tmp_path / "dvcsync-state.db").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["sync", "push"],
        ["sync", "pull"],
        ["dead-letters", "list"],
        ["db", "prune"],
        ["push", "dossier", "X", "--dry-run"],
        ["mappings", "check"],
        ["reconcile"],
        ["catalogue", "match"],
    ],
)
def test_with_tenants_a_command_for_one_tenant_needs_tenant(two: Path, argv: list[str]) -> None:
    result = runner.invoke(app, ["--config", str(two), *argv])
    assert result.exit_code == 2, result.output
    assert "this configuration serves 2 tenants (a, b): say which with --tenant CODE" in result.output
    assert not (two.parent / "state").exists()  # nothing was touched


def test_an_unknown_tenant_names_the_known_ones(two: Path) -> None:
    for argv in (
        ["status", "--tenant", "c"],
        ["--tenant", "c", "sync", "push"],
        ["config", "show", "--tenant", "c"],
    ):
        result = runner.invoke(app, ["--config", str(two), *argv])
        assert result.exit_code == 2, result.output
        assert "--tenant c: no tenant 'c': the configured tenants are a, b" in result.output


def test_tenant_reaches_that_tenant_s_state_only(two: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = two.parent / "state"
    result = runner.invoke(app, ["--config", str(two), "db", "upgrade", "--tenant", "a", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["url"] == f"sqlite:///{state / 'dvcsync-state-a.db'}"
    assert sorted(p.name for p in state.glob("*.db")) == ["dvcsync-state-a.db"]
    # before the command, and from the environment
    assert runner.invoke(app, ["--config", str(two), "--tenant", "b", "db", "upgrade"]).exit_code == 0
    assert sorted(p.name for p in state.glob("*.db")) == ["dvcsync-state-a.db", "dvcsync-state-b.db"]
    monkeypatch.setenv("DVCSYNC_TENANT", "a")
    listed = runner.invoke(app, ["--config", str(two), "dead-letters", "list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []
    # the command's own --tenant wins over the environment
    shown = runner.invoke(app, ["--config", str(two), "config", "show", "--json", "--tenant", "b"])
    assert json.loads(shown.stdout)["tenant"] == {"value": "b", "from": "--tenant"}


def test_status_covers_every_tenant_or_the_one_named(two: Path) -> None:
    result = runner.invoke(app, ["--config", str(two), "status", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"tenants": {"a": {"state": None}, "b": {"state": None}}}
    assert not (two.parent / "state").exists()  # status creates no state
    assert runner.invoke(app, ["--config", str(two), "db", "upgrade", "--tenant", "b"]).exit_code == 0
    data = json.loads(runner.invoke(app, ["--config", str(two), "status", "--json"]).stdout)["tenants"]
    assert list(data) == ["a", "b"] and data["a"] == {"state": None}
    assert data["b"]["dossiers"] == 0 and data["b"]["dead_count"] == 0 and "backlog" in data["b"]
    only = json.loads(runner.invoke(app, ["--config", str(two), "status", "--tenant", "b", "--json"]).stdout)
    assert list(only["tenants"]) == ["b"]
    human = runner.invoke(app, ["--config", str(two), "status"], terminal_width=200)
    assert human.exit_code == 0
    assert "tenant a: no state yet" in human.stdout and "tenant b: dvcsync status" in human.stdout
    assert "dead letters" in human.stdout


def test_status_without_tenants_keeps_its_shape(tmp_path: Path) -> None:
    config = tmp_path / "plain.toml"
    config.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n', encoding="utf-8")
    assert runner.invoke(app, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    data = json.loads(runner.invoke(app, ["--config", str(config), "status", "--json"]).stdout)
    assert "tenants" not in data and data["dossiers"] == 0 and "backlog" in data


def test_a_tenant_whose_state_cannot_be_read_does_not_hide_the_others(two: Path) -> None:
    assert runner.invoke(app, ["--config", str(two), "db", "upgrade", "--tenant", "a"]).exit_code == 0
    broken = two.parent / "state" / "dvcsync-state-b.db"
    broken.write_bytes(b"this is not a SQLite database, it only has the name of one" * 20)
    result = runner.invoke(app, ["--config", str(two), "status", "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)["tenants"]
    assert data["a"]["dossiers"] == 0 and "DatabaseError" in data["b"]["error"]


def test_config_show_a_tenant_s_merged_settings_secrets_hidden(two: Path) -> None:
    result = runner.invoke(app, ["--config", str(two), "config", "show", "--json", "--tenant", "b"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["tenant"] == {"value": "b", "from": "--tenant"}
    assert shown["portal.dstcode"] == {"value": "H02", "from": f"file {two} [tenants.b]"}
    assert shown["portal.timeout"] == {"value": 9.0, "from": f"file {two}"}  # shared
    assert shown["portal.password"]["value"] == "********" and "mat-khau-cua-b" not in result.stdout
    assert shown["state.url"] == {
        "value": f"sqlite:///{two.parent / 'state' / 'dvcsync-state-b.db'}",
        "from": "derived from state.url for tenant b",
    }
    assert "tenants" not in shown
    table = runner.invoke(app, ["--config", str(two), "config", "show", "--tenant", "a"], terminal_width=200)
    assert "dvcsync configuration (tenant a)" in table.stdout and "[tenants.a]" in table.stdout
    shared = json.loads(runner.invoke(app, ["--config", str(two), "config", "show", "--json"]).stdout)
    assert shared["tenants"]["value"] == ["a", "b"] and shared["portal.dstcode"]["value"] == "H40"


def test_config_check_checks_every_tenant(two: Path) -> None:
    result = runner.invoke(app, ["--config", str(two), "config", "check", "--json"])
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert any(p.startswith("tenant a: [province] source_url:") and "a.db" in p for p in problems)
    assert any(p.startswith("tenant b: [province] source_url:") for p in problems)
    argv = ["--config", str(two), "config", "check", "--json", "--tenant", "b"]
    only = json.loads(runner.invoke(app, argv).stdout)
    assert only["problems"] and all(p.startswith("tenant b: ") for p in only["problems"])


def test_errors_in_a_tenant_table_are_shown_whole(tmp_path: Path) -> None:
    config = tmp_path / "dvcsync.toml"
    config.write_text("[tenants.a.portal]\ntimeout = 0\n", encoding="utf-8")
    result = runner.invoke(app, ["--config", str(config), "status"])
    assert result.exit_code == 2
    assert f"{config}: [tenants.a.portal] timeout: Input should be greater than 0" in result.output


def test_run_refuses_a_tenant_with_the_mock_s_published_secrets_off_loopback(two: Path) -> None:
    text = two.read_text(encoding="utf-8").replace(
        "[tenants.a.portal]\n", '[tenants.a.portal]\nadapter_url = "https://dvcqg.example.gov.vn/dvcqg"\n'
    )
    two.write_text(text, encoding="utf-8")
    for argv in (["run"], ["run", "--tenant", "a"]):
        result = runner.invoke(app, ["--config", str(two), *argv])
        assert result.exit_code == 2, result.output
        assert "refusing to run with the mock's published secrets (tenant a)" in result.output
    # b is on loopback with its own password: it is not what is refused
    assert "(tenant b)" not in runner.invoke(app, ["--config", str(two), "run"]).output


def test_run_names_the_known_tenants_for_an_unknown_one(two: Path) -> None:
    result = runner.invoke(app, ["--config", str(two), "run", "--tenant", "zz"])
    assert result.exit_code == 2 and "the configured tenants are a, b" in result.output


def test_config_check_refuses_a_tenant_moving_the_one_inbound_server(two: Path) -> None:
    two.write_text(two.read_text(encoding="utf-8") + "[tenants.b.server]\nport = 9999\n", encoding="utf-8")
    result = runner.invoke(app, ["--config", str(two), "config", "check", "--json"])
    problems = json.loads(result.stdout)["problems"]
    assert result.exit_code == 1
    expected = "[tenants.b.server] port: one inbound server serves every tenant"
    assert any(p.startswith(expected) for p in problems)


def test_db_upgrade_without_tenant_brings_every_tenants_state_to_head(two: Path) -> None:
    """What compose and the systemd unit run before `dvcsync run` (which serves every tenant):
    each tenant's state is made, or left as it is when already at head."""
    result = runner.invoke(app, ["--config", str(two), "db", "upgrade", "--json"])
    assert result.exit_code == 0, result.output
    tenants = json.loads(result.stdout)["tenants"]
    assert sorted(tenants) == ["a", "b"]
    assert all(t["from"] is None and t["upgraded"] for t in tenants.values())
    again = json.loads(runner.invoke(app, ["--config", str(two), "db", "upgrade", "--json"]).stdout)
    assert all(not t["upgraded"] for t in again["tenants"].values())
