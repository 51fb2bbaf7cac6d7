"""``python -m mock_portal``: flags, MOCK_PORTAL_ environment variables, banner, a real start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mock_portal.cli import build_parser, config_from_args, main
from mock_portal.testing import config_argv, run_mock_process

from .support import PortalClient


def test_flags_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = tmp_path / "faults.json"
    spec.write_text(json.dumps({"seed": 3, "rules": [{"service": "soap", "reset_rate": 0.5}]}))
    monkeypatch.setenv("MOCK_PORTAL_PASSWORD", "from-env")
    monkeypatch.setenv("MOCK_PORTAL_BATCH_LIMIT", "7")
    monkeypatch.setenv("MOCK_PORTAL_LENIENT", "1")
    args = build_parser().parse_args(
        [
            "--port",
            "9090",
            "--faults",
            f"@{spec}",
            "--success-code",
            "00",
            "--batch-limit",
            "5",
            "--callback-url",
            "http://127.0.0.1:1/cb",
        ]
    )
    cfg = config_from_args(args)
    assert cfg.port == 9090 and cfg.batch_limit == 5, "a flag wins over the environment"
    assert cfg.credentials.password == "from-env" and cfg.strict is False and cfg.success_code == "00"
    assert cfg.faults.seed == 3 and cfg.faults.rules[0].service == "soap"
    assert cfg.callback_url == "http://127.0.0.1:1/cb"


def test_invalid_settings_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--faults", '{"rules": [{"hang_rate": 5}]}']) == 2
    assert "invalid settings" in capsys.readouterr().err


def test_help_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mock_portal", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "--callback-url" in done.stdout and "MOCK_PORTAL_" in done.stdout


def test_started_process_prints_credentials_and_serves(tmp_path: Path) -> None:
    with run_mock_process(state=str(tmp_path / "m.db"), strict=False, success_code="0") as mock:
        assert "--lenient" in config_argv(mock.config)
        client = PortalClient(mock)
        client.login()
        assert client.call("LayDanhSachTTHC", endpoint="share")["error_code"] == "0"
        client.close()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mock_portal.cli import banner; from mock_portal.config import MockConfig;"
            "print(banner(MockConfig()))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "password=matkhau-thu-nghiem" in out and "payment_secret=khoa-bi-mat-thu-nghiem" in out
