"""The variables `.ci/run` exports for the test harness (DVCSYNC_REQUIRE_*) are not settings: a
configuration loaded beside them must not refuse them as unknown keys (every CLI test would fail
in CI only, where they are set)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dvcsync.config import Settings

CI_RUN = Path(__file__).resolve().parents[2] / ".ci" / "run"


def test_every_variable_ci_exports_leaves_the_configuration_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    exported = re.findall(r"^\s*export (DVCSYNC_\w+)=(\S*)", CI_RUN.read_text(encoding="utf-8"), re.M)
    assert exported, "no DVCSYNC_ variable exported by .ci/run?"
    for name, value in exported:
        monkeypatch.setenv(name, value or "1")
    monkeypatch.setenv("DVCSYNC_REQUIRE_SOMETHING_NEW", "1")  # the whole family, not a list
    Settings.load(None)  # raises ConfigError naming the variable when it is taken for a setting
