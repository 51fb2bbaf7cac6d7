"""Fixtures of the mock portal's integration tests: a fresh mock per test on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mock_portal.testing import RunningMock, run_mock

from .support import PortalClient


@pytest.fixture
def mock() -> Iterator[RunningMock]:
    with run_mock() as running:
        yield running


@pytest.fixture
def portal(mock: RunningMock) -> Iterator[PortalClient]:
    client = PortalClient(mock)
    client.login()
    yield client
    client.close()
