"""`dvcsync init`: an editable copy of the shipped mappings and a commented configuration that
loads as written, and loads with every commented key switched on."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dvcsync._resources import default_mappings
from dvcsync.cli import app
from dvcsync.config import Settings
from dvcsync.mapping import load_mappings

REPO = Path(__file__).resolve().parents[2]


def _init(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["init", *args])
    return result.exit_code, result.output


def test_shipped_mappings_are_the_repository_folder_and_the_default() -> None:
    assert default_mappings().resolve() == (REPO / "mappings").resolve()
    assert Settings.load(None, use_env=False).province.mappings == default_mappings()


def test_init_writes_a_config_that_loads_and_a_copy_of_the_mappings(tmp_path: Path) -> None:
    code, output = _init(str(tmp_path))
    assert code == 0, output
    assert "next:" in output and "mappings check" in output
    shipped = sorted(p.relative_to(REPO / "mappings") for p in (REPO / "mappings").rglob("*.yaml"))
    copied = sorted(p.relative_to(tmp_path / "mappings") for p in (tmp_path / "mappings").rglob("*"))
    assert [p for p in copied if p.suffix] == shipped  # YAML only: no __init__.py, no caches
    for name in shipped:
        assert (tmp_path / "mappings" / name).read_bytes() == (REPO / "mappings" / name).read_bytes()

    settings = Settings.load(tmp_path / "dvcsync.toml", use_env=False)
    assert settings.province.mappings == tmp_path / "mappings"
    assert settings.state.url == f"sqlite:///{tmp_path / 'dvcsync-state.db'}"
    defaults = Settings.load(None, use_env=False)
    assert settings.portal == defaults.portal and settings.server == defaults.server
    assert set(load_mappings(settings.province.mappings).specs) == set(load_mappings(REPO / "mappings").specs)


def test_every_section_is_there_and_every_commented_key_is_valid(tmp_path: Path) -> None:
    assert _init(str(tmp_path))[0] == 0
    text = (tmp_path / "dvcsync.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    for section in Settings.model_fields:
        assert section in data, section
    assert {"server.payment", "server.portal", "server.monitoring"} <= {
        f"server.{k}" for k, v in data["server"].items() if isinstance(v, dict)
    }
    # switch every commented key on, except the secret files (which must exist to load)
    live = re.sub(r"^# (?!\w+_file = )(\w+ = )", r"\1", text, flags=re.MULTILINE)
    assert live != text
    (tmp_path / "all.toml").write_text(live, encoding="utf-8")
    settings = Settings.load(tmp_path / "all.toml", use_env=False)
    assert settings.portal.transport_for("TraCuuHoSo") == "soap"
    assert settings.server.tls_client_ca == Path("/etc/dvcsync/callers-ca.pem")
    assert "password =" not in text and "secret =" not in text and "token =" not in text


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    assert _init(str(tmp_path))[0] == 0
    config = tmp_path / "dvcsync.toml"
    config.write_text("# mine\n", encoding="utf-8")
    code, output = _init(str(tmp_path))
    assert code == 2 and "--force" in output
    assert config.read_text(encoding="utf-8") == "# mine\n"
    code, _ = _init(str(tmp_path), "--force")
    assert code == 0 and "[province]" in config.read_text(encoding="utf-8")


def test_init_refuses_when_only_the_mappings_exist(tmp_path: Path) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "dossier.yaml").write_text("# edited\n", encoding="utf-8")
    code, output = _init(str(tmp_path))
    assert code == 2 and "mappings" in output
    assert not (tmp_path / "dvcsync.toml").exists()


@pytest.mark.parametrize("where", [".", ""])
def test_init_defaults_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = _init(*([where] if where else []))
    assert code == 0, output
    assert (tmp_path / "dvcsync.toml").is_file() and (tmp_path / "mappings" / "dossier.yaml").is_file()
    assert "--config" not in output  # ./dvcsync.toml is found without it
