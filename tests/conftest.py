"""Test-wide guards. Tests may reach loopback only: anything else is a bug in the test."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# CI runs on a loaded 2-core machine: the same examples every run, and no failure because
# generating them was slow there. DVCSYNC_HYPOTHESIS=dev explores afresh.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("DVCSYNC_HYPOTHESIS", "ci"))

_RAM = "/dev/shm"
_UNIT = Path(__file__).resolve().parent / "unit"


def pytest_configure(config: pytest.Config) -> None:
    """A session of unit tests only (``make unit``) keeps tmp_path in RAM (tmpfs) where there is
    one. The state opens SQLite with synchronous=FULL: every commit is an fsync, ~3 ms on this
    disk, and some tests commit thousands of times; no test can observe durability across power
    loss, and tmpfs files are the same real files, modes and locks. pytest keeps its numbered
    folders and their retention there (~200 MB a unit session, the last 3 kept). Sessions with
    integration or e2e tests (a GB or more) stay on disk; an explicit --basetemp or
    PYTEST_DEBUG_TEMPROOT wins."""
    if config.option.basetemp or "PYTEST_DEBUG_TEMPROOT" in os.environ:
        return
    if not (os.path.isdir(_RAM) and os.access(_RAM, os.W_OK | os.X_OK)):
        return
    paths = [(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args]
    if paths and all(path == _UNIT or _UNIT in path.parents for path in paths):
        os.environ["PYTEST_DEBUG_TEMPROOT"] = _RAM


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ``slow`` tests first, each group in its collected order: on ``make test``'s two workers
    (pytest-xdist hands tests out in this order) the minute-long replica, fence and kill tests
    start at once and the many short ones fill in beside them, instead of the longest starting
    last and one worker idling while it runs. Stable and the same in every worker, as xdist needs."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


_real_connect = socket.socket.connect
_real_getaddrinfo = socket.getaddrinfo


def _is_loopback(host: Any) -> bool:
    if not isinstance(host, str):
        return False
    if host in {"localhost", ""}:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise RuntimeError(f"network access outside loopback is forbidden in tests: {address!r}")
    return _real_connect(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_loopback(host if isinstance(host, str) else host.decode()):
        raise RuntimeError(f"DNS lookups outside loopback are forbidden in tests: {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    yield
