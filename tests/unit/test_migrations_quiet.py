"""Alembic's INFO lines stay out of the log unless -v (issue 21 item 7: seven of them on a new
state under the service's INFO level)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _upgrade(tmp_path: Path, *flags: str) -> str:
    config = tmp_path / "dvcsync.toml"
    config.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")} | {
        "DVCSYNC_LOG__LEVEL": "INFO"
    }
    done = subprocess.run(
        [sys.executable, "-m", "dvcsync.cli", *flags, "--config", str(config), "db", "upgrade"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_new_state_at_info_logs_no_alembic_line(tmp_path: Path) -> None:
    assert "Running upgrade" not in _upgrade(tmp_path)


def test_verbose_shows_the_migrations(tmp_path: Path) -> None:
    assert "Running upgrade" in _upgrade(tmp_path, "-v")
