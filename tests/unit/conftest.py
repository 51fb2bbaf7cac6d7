"""Shared unit-test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``DVCSYNC_`` variable of the caller's shell reaches the configuration, and relative paths
    (``dvcsync.toml``) resolve in the test's own folder."""
    for name in list(os.environ):
        if name.startswith("DVCSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
