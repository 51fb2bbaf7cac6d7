"""Fixtures of the mock portal's integration tests: a fresh mock per test.

``mock`` runs the app in process (``run_mock_in_process``: requests go through
``httpx.ASGITransport``, no socket), for what the mock answers; ``served`` serves it on a free
loopback port (``run_mock``), for what is about the network: client timeouts, dropped connections,
the address a client reached, a real server end to end.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mock_portal.testing import InProcessMock, RunningMock, run_mock, run_mock_in_process

from .support import PortalClient, http_client


@pytest.fixture
def mock() -> Iterator[InProcessMock]:
    with run_mock_in_process() as running:
        yield running


@pytest.fixture
def http(mock: InProcessMock) -> Iterator[httpx.Client]:
    """A bare client on ``mock`` (no dstcode header, no session)."""
    with http_client(mock) as client:
        yield client


@pytest.fixture
def portal(mock: InProcessMock) -> Iterator[PortalClient]:
    client = PortalClient(mock)
    client.login()
    yield client
    client.close()


@pytest.fixture
def served() -> Iterator[RunningMock]:
    with run_mock() as running:
        yield running


@pytest.fixture
def served_portal(served: RunningMock) -> Iterator[PortalClient]:
    client = PortalClient(served)
    client.login()
    yield client
    client.close()
