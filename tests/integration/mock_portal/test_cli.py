"""``python -m mock_portal`` and ``dvcsync mock-portal``: flags, MOCK_PORTAL_ environment
variables, rich help, ``--version``, seeding at start-up, a real start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mock_portal import cli
from mock_portal.config import MockConfig
from mock_portal.testing import config_argv, run_mock_in_process, run_mock_process

from .support import PortalClient, http_client
from .test_portal_dossiers import portal_dossier

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[MockConfig]:
    """``cli.main`` parses and validates as for real, but records the config instead of serving."""
    for name in list(os.environ):
        if name.startswith(cli.ENV_PREFIX):
            monkeypatch.delenv(name)
    configs: list[MockConfig] = []
    monkeypatch.setattr(cli, "start", lambda cfg, quiet=False: configs.append(cfg))
    return configs


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MOCK_PORTAL_", "DVCSYNC_"))}
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**clean, "COLUMNS": "200", **(env or {})},
    )


def test_flags_and_environment(
    started: list[MockConfig], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = tmp_path / "faults.json"
    spec.write_text(json.dumps({"seed": 3, "rules": [{"service": "soap", "reset_rate": 0.5}]}))
    monkeypatch.setenv("MOCK_PORTAL_PASSWORD", "from-env")
    monkeypatch.setenv("MOCK_PORTAL_BATCH_LIMIT", "7")
    monkeypatch.setenv("MOCK_PORTAL_LENIENT", "1")
    monkeypatch.setenv("MOCK_PORTAL_PUBLIC_URL", "http://mock.example:9/")
    argv = ["--port", "9090", "--faults", f"@{spec}", "--success-code", "00", "--batch-limit", "5"]
    assert cli.main([*argv, "--callback-url", "http://127.0.0.1:1/cb", "--payment-reply", "flat"]) == 0
    cfg = started[-1]
    assert cfg.port == 9090 and cfg.batch_limit == 5, "a flag wins over the environment"
    assert cfg.credentials.password == "from-env" and cfg.strict is False and cfg.success_code == "00"
    assert cfg.faults.seed == 3 and cfg.faults.rules[0].service == "soap"
    assert cfg.callback_url == "http://127.0.0.1:1/cb" and cfg.payment_reply_form == "flat"
    assert cfg.public_url == "http://mock.example:9"
    assert cli.main(["--strict"]) == 0 and started[-1].strict is True, "--strict on the command line wins"
    monkeypatch.delenv("MOCK_PORTAL_LENIENT")
    monkeypatch.setenv("MOCK_PORTAL_STRICT", "false")
    monkeypatch.setenv("MOCK_PORTAL_CALLBACK_DUPLICATE", "1")
    assert cli.main([]) == 0 and started[-1].strict is False and started[-1].callback_duplicate is True


def test_the_testing_harness_command_line_round_trips(started: list[MockConfig]) -> None:
    cfg = MockConfig(
        strict=False,
        success_code="0",
        batch_limit=9,
        callback_url="http://127.0.0.1:1/cb",
        public_url="http://mock.example:9",
        push_retry_s=0.2,
        push_max_attempts=2,
    )
    assert cli.main(config_argv(cfg)) == 0
    assert started[-1].model_dump(exclude={"credentials"}) == cfg.model_dump(exclude={"credentials"})


@pytest.mark.parametrize(
    "argv",
    [
        ["--faults", '{"rules": [{"hang_rate": 5}]}'],
        ["--public-url", "ftp://somewhere"],
        ["--success-code", "zero"],
        ["--batch-limit", "0"],
        ["--seed-dossiers", "/nonexistent/seed.json"],
    ],
)
def test_invalid_settings_exit_2(started: list[MockConfig], argv: list[str]) -> None:
    assert cli.main(argv) == 2 and not started


def test_help_and_version_in_both_commands() -> None:
    for argv in (["-m", "mock_portal"], ["-m", "dvcsync.cli", "mock-portal"]):
        done = _run(*argv, "--help")
        assert done.returncode == 0, done.stderr
        for text in (
            "--callback-url",
            "--public-url",
            "--seed-dossiers",
            "--strict",
            "--lenient",
            "MOCK_PORTAL_",
        ):
            assert text in done.stdout, (argv, text)
        version = _run(*argv, "--version")
        assert version.returncode == 0 and version.stdout.startswith("mock_portal "), version
    assert "╭─ Credentials" in _run("-m", "mock_portal", "--help").stdout, "rich help with panels"
    assert "--knows" in _run("-m", "dvcsync.cli", "mock-portal", "--help").stdout


def test_invalid_seed_file_exits_2_naming_the_record(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{**portal_dossier(1), "NgayNopHoSo": "2025-11-20"}]), encoding="utf-8")
    done = _run("-m", "mock_portal", "--port", "1", "--seed-dossiers", str(seed))
    assert done.returncode == 2 and "NgayNopHoSo" in done.stderr and str(seed) in done.stderr, done.stderr


def test_seeded_at_start_and_again_on_the_same_state(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"dossiers": [portal_dossier(1), portal_dossier(2)]}), encoding="utf-8")
    state = str(tmp_path / "mock.db")
    with run_mock_in_process(state=state, seed_dossiers=str(seed)) as mock, http_client(mock) as http:
        listed = http.get("/_admin/portal-dossiers").json()
        assert [item["MaHoSo"] for item in listed] == ["G22.99-251120-0001", "G22.99-251120-0002"]
        http.post("/_admin/dossiers/G22.99-251120-0001/withdraw").raise_for_status()
    seed.write_text(json.dumps([portal_dossier(1), portal_dossier(3)]), encoding="utf-8")
    # a restart: known ones kept as they are
    with run_mock_in_process(state=state, seed_dossiers=str(seed)) as mock, http_client(mock) as http:
        listed = http.get("/_admin/portal-dossiers").json()
        assert [item["MaHoSo"] for item in listed] == [f"G22.99-251120-000{n}" for n in (1, 2, 3)]
        assert listed[0]["status"] == "7"


def test_started_process_prints_credentials_and_serves(tmp_path: Path) -> None:
    with run_mock_process(state=str(tmp_path / "m.db"), strict=False, success_code="0") as mock:
        assert "--lenient" in config_argv(mock.config)
        client = PortalClient(mock)
        client.login()
        assert client.call("LayDanhSachTTHC", endpoint="share")["error_code"] == "0"
        client.close()
    banner = cli.banner(MockConfig())
    assert "password=matkhau-thu-nghiem" in banner and "payment_secret=khoa-bi-mat-thu-nghiem" in banner


def test_knows_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    missing = _run("-m", "dvcsync.cli", "mock-portal", "--port", "1", "--knows", str(tmp_path / "none.db"))
    assert missing.returncode == 2 and "no such file" in missing.stderr, missing.stderr
    not_onestop = tmp_path / "other.db"
    not_onestop.write_bytes(b"")
    unreadable = _run("-m", "dvcsync.cli", "mock-portal", "--port", "1", "--knows", str(not_onestop))
    assert unreadable.returncode == 2 and "cannot read its dossiers" in unreadable.stderr, unreadable.stderr
    seed = tmp_path / "seed.json"
    seed.write_text("[]", encoding="utf-8")
    both = _run("-m", "dvcsync.cli", "mock-portal", "--knows", str(not_onestop), "--seed-dossiers", str(seed))
    assert both.returncode == 2 and "give one of them" in both.stderr, both.stderr
