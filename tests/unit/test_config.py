from __future__ import annotations

from pathlib import Path

import pytest

from dvcsync.config import ConfigError, Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DVCSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./dvcsync.toml


def test_defaults_without_a_file() -> None:
    settings = Settings.load()
    assert settings.portal.adapter_url == "http://127.0.0.1:8080/dvcqg"
    assert settings.portal.batch_size == 50 and settings.portal.transport == "rest"
    assert settings.province.effective_sink_url == settings.province.source_url


def test_file_then_environment_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        '[portal]\nbatch_size = 10\nconcurrency = 2\n[portal.transport_by_service]\nTraCuuHoSo = "soap"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("DVCSYNC_PORTAL__CONCURRENCY", "6")
    settings = Settings.load(config, state={"url": "sqlite:///x.db"})
    assert settings.portal.batch_size == 10  # file
    assert settings.portal.concurrency == 6  # environment wins over the file
    assert settings.state.url == "sqlite:///x.db"  # explicit override
    assert settings.portal.transport_for("TraCuuHoSo") == "soap"
    assert settings.portal.transport_for("DongBoHoSoMC") == "rest"


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text("[server]\nport = 9999\n", encoding="utf-8")
    monkeypatch.setenv("DVCSYNC_CONFIG", str(config))
    assert Settings.load().server.port == 9999


def test_secrets_from_files_and_never_in_repr(tmp_path: Path) -> None:
    (tmp_path / "portal.secret").write_text("mat-khau-rat-bi-mat\n", encoding="utf-8")
    (tmp_path / "payment.secret").write_text("khoa-thanh-toan", encoding="utf-8")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[portal]\npassword_file = "{tmp_path / "portal.secret"}"\n'
        f'[payment]\nsecret_file = "{tmp_path / "payment.secret"}"\n',
        encoding="utf-8",
    )
    settings = Settings.load(config)
    assert settings.portal.password.get_secret_value() == "mat-khau-rat-bi-mat"
    assert settings.payment.secret.get_secret_value() == "khoa-thanh-toan"
    assert "mat-khau" not in repr(settings) and "khoa-thanh-toan" not in str(settings.model_dump())


def test_unknown_key_is_an_error_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[portal]\nbatchsize = 10\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c\.toml: portal\.batchsize: unknown key"):
        Settings.load(config)


def test_bad_values_and_bad_toml(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[portal]\nconcurrency = 0\n[schedule]\npush = "sometimes"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Settings.load(config)
    assert "portal.concurrency" in str(info.value) and "schedule.push" in str(info.value)
    config.write_text("[portal\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid TOML"):
        Settings.load(config)
    with pytest.raises(ConfigError, match="cannot read"):
        Settings.load(tmp_path / "missing.toml")


def test_missing_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[portal]\npassword_file = "{tmp_path / "nope"}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cannot read portal\.password from"):
        Settings.load(config)


def test_schedules_become_triggers() -> None:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    from dvcsync.scheduler import trigger_for

    every = trigger_for("every 5m")
    assert isinstance(every, IntervalTrigger) and every.interval.total_seconds() == 300
    assert isinstance(trigger_for("*/15 7-17 * * 1-5"), CronTrigger)


def test_command_line_beats_environment_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[portal]\ntimeout = 10\nconcurrency = 2\n", encoding="utf-8")
    monkeypatch.setenv("DVCSYNC_PORTAL__TIMEOUT", "20")
    settings = Settings.load(config, portal={"timeout": 30})
    assert settings.portal.timeout == 30 and settings.origin("portal.timeout") == "command line"
    assert settings.portal.concurrency == 2 and settings.origin("portal.concurrency") == f"file {config}"
    assert Settings.load(config).origin("portal.timeout") == "environment DVCSYNC_PORTAL__TIMEOUT"
    assert settings.origin("portal.batch_size") == "default"


def test_use_env_false_reads_no_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "prod.toml"
    elsewhere.write_text('[state]\nurl = "postgresql://prod/state"\n', encoding="utf-8")
    monkeypatch.setenv("DVCSYNC_CONFIG", str(elsewhere))
    monkeypatch.setenv("DVCSYNC_STATE__URL", "postgresql://prod/state")
    monkeypatch.setenv("DVCSYNC_PORTAL__ADAPTER_URL", "https://dvcqg.example/dvcqg")
    settings = Settings.load(None, use_env=False, state={"url": "sqlite:///demo.db"})
    assert settings.state.url == "sqlite:///demo.db"
    assert settings.portal.adapter_url == "http://127.0.0.1:8080/dvcqg"


def test_a_variable_naming_no_setting_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVCSYNC_PORTAL__TIMEOUTT", "5")
    monkeypatch.setenv("DVCSYNC_PORTL__TIMEOUT", "5")
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert "DVCSYNC_PORTAL__TIMEOUTT" in str(info.value) and "DVCSYNC_PORTL__TIMEOUT" in str(info.value)


def test_nested_and_table_variables_are_known(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVCSYNC_SERVER__PAYMENT__ALLOW", '["10.0.0.0/8"]')
    monkeypatch.setenv("DVCSYNC_PORTAL__TRANSPORT_BY_SERVICE__TRACUUHOSO", "soap")
    settings = Settings.load()
    assert [str(n) for n in settings.server.payment.allow or []] == ["10.0.0.0/8"]
    assert settings.origin("server.payment.allow") == "environment DVCSYNC_SERVER__PAYMENT__ALLOW"


def test_relative_paths_in_a_file_are_relative_to_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "portal.secret").write_text("a-password\n", encoding="utf-8")
    config = folder / "dvcsync.toml"
    config.write_text(
        '[province]\nsource_url = "sqlite:///onestop.db"\nmappings = "my-mappings"\n'
        '[portal]\npassword_file = "portal.secret"\n[state]\nurl = "sqlite:///var/state.db"\n',
        encoding="utf-8",
    )
    settings = Settings.load(config)  # the test runs in tmp_path, not in etc/
    assert settings.province.mappings == folder / "my-mappings"
    assert settings.province.source_url == f"sqlite:///{folder / 'onestop.db'}"
    assert settings.state.url == f"sqlite:///{folder / 'var/state.db'}"
    assert settings.portal.password.get_secret_value() == "a-password"


def test_a_bad_cron_expression_fails_when_the_configuration_loads() -> None:
    with pytest.raises(ConfigError, match=r"schedule\.push"):
        Settings.load(None, schedule={"push": "61 * * * *"})
    with pytest.raises(ConfigError, match="at least 1"):
        Settings.load(None, schedule={"pull": "every 0s"})
    assert Settings.load(None, schedule={"push": "*/5 7-17 * * 1-5"}).schedule.push == "*/5 7-17 * * 1-5"
