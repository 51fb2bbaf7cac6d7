"""A state is created only by db upgrade, init, adopt and demo, and belongs to one province and
one portal (issue 18 item 3): a mistyped path or another province's state is refused, exit 2,
naming both, and nothing is created or sent on the way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dvcsync.cli import app
from dvcsync.province.sample import generate
from dvcsync.state import StateStore

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("clean_env")

REPO = Path(__file__).resolve().parents[2]
# nothing listens there: a command that got as far as the portal would exit 4, not 2
DEAD_PORTAL = "http://127.0.0.1:9/dvcqg"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    generate(tmp_path / "onestop.db", 5, 1)
    path = tmp_path / "dvcsync.toml"
    path.write_text(
        f'[province]\nsource_url = "sqlite:///{tmp_path / "onestop.db"}"\nmappings = "{REPO / "mappings"}"\n'
        f'[portal]\nadapter_url = "{DEAD_PORTAL}"\nmadonvi = "000.00.01.H40"\ndstcode = "DST-A"\n'
        "timeout = 1\n"
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["sync", "push"],
        ["sync", "pull"],
        ["sync", "payments"],
        ["db", "prune"],
        ["dead-letters", "retry"],
        ["reconcile"],
        ["run"],
    ],
    ids=" ".join,
)
def test_a_mistyped_state_path_is_refused_and_nothing_is_created(
    command: list[str], config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "state.db"
    monkeypatch.setenv("DVCSYNC_STATE__URL", f"sqlite:///{missing}")
    result = runner.invoke(app, ["--config", str(config), *command])
    assert result.exit_code == 2, result.output
    assert str(missing) in result.stderr and "db upgrade" in result.stderr and "adopt" in result.stderr
    assert not (tmp_path / "no").exists()  # no folder made on the way


def test_db_upgrade_records_the_identity_and_another_province_is_refused(
    config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert runner.invoke(app, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        identity = store.identity()
    finally:
        store.close()
    assert identity["madonvi"] == "000.00.01.H40" and identity["dstcode"] == "DST-A"
    assert identity["portal"] == DEAD_PORTAL and identity["source"].endswith("onestop.db")
    assert identity["tenant"] == ""

    # same configuration: it goes on (and stops at the dead portal: exit 4, not 2)
    assert runner.invoke(app, ["--config", str(config), "sync", "push"]).exit_code == 4

    # another province's agency code, another destination, another portal: exit 2 naming both
    for variable, value, shown in (
        ("DVCSYNC_PORTAL__MADONVI", "000.00.02.H41", "000.00.02.H41"),
        ("DVCSYNC_PORTAL__DSTCODE", "DST-B", "DST-B"),
        ("DVCSYNC_PORTAL__ADAPTER_URL", "http://127.0.0.1:9/other", "http://127.0.0.1:9/other"),
    ):
        with monkeypatch.context() as env:
            env.setenv(variable, value)
            for command in (["sync", "push"], ["status"], ["db", "prune"]):
                result = runner.invoke(app, ["--config", str(config), *command])
                assert result.exit_code == 2, (variable, command, result.output)
                assert shown in result.stderr and "belongs to another province or portal" in result.stderr

    # a deliberate move: rebind records the new identity, then the commands accept it
    monkeypatch.setenv("DVCSYNC_PORTAL__DSTCODE", "DST-B")
    rebound = runner.invoke(app, ["--config", str(config), "db", "rebind", "--json"])
    assert rebound.exit_code == 0, rebound.output
    data = json.loads(rebound.stdout)
    assert data["before"]["dstcode"] == "DST-A" and data["after"]["dstcode"] == "DST-B"
    assert runner.invoke(app, ["--config", str(config), "status", "--json"]).exit_code == 0


def test_adopt_creates_the_state_it_reads_back_into(config: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(config), "adopt"])
    assert result.exit_code == 4, result.output  # the portal is down: said plainly
    assert (tmp_path / "state.db").is_file()
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        assert store.identity()["madonvi"] == "000.00.01.H40"
        assert store.count_first_contacts() > 0  # scanned and waiting for its read-back
    finally:
        store.close()


def test_adopt_refuses_bad_dates(config: Path) -> None:
    for args in (["--since", "2026-13-01"], ["--since", "2026-12-07", "--until", "2026-12-01"]):
        result = runner.invoke(app, ["--config", str(config), "adopt", *args])
        assert result.exit_code == 2, result.output
