"""``[server] rate_per_group``: each (tenant, path group) starts at most that many requests a
second, in bursts of twice that, and the rest get the contract's 503 at once; one group's flood
leaves the others their share. Driven as ASGI with the guard's clock controlled (no server, no
sleeping)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest

from dvcsync.config import ServerSettings
from dvcsync.server import _access
from dvcsync.server._access import AccessGuard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(_access.time, "monotonic", fake)
    return fake


async def _ok(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _get(guard: AccessGuard, path: str) -> tuple[int, dict[str, Any] | None]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "client": ("127.0.0.1", 40000)}
    asyncio.run(guard(scope, receive, send))
    status = int(sent[0]["status"])
    body = json.loads(sent[1]["body"]) if status != 200 else None
    return status, body


def _guard(rate: float, **tenants: ServerSettings) -> AccessGuard:
    return AccessGuard(_ok, ServerSettings(rate_per_group=rate), tenants=tenants or None)


PORTAL, PAYMENT = "/inbound/dvcqg/DongBoHoSoMC", "/inbound/payment/dptracuuthanhtoanhs"


@pytest.mark.parametrize("rate", [1.0, 2.5, 10.0])
def test_a_group_starts_a_burst_of_twice_its_rate_then_one_a_token(clock: Clock, rate: float) -> None:
    guard = _guard(rate)
    burst = int(2 * rate)
    assert [_get(guard, PORTAL)[0] for _ in range(burst)] == [200] * burst
    status, body = _get(guard, PORTAL)
    assert status == 503 and body is not None  # the contract's refusal shape, not a bare error
    assert guard.refused[("portal", 503)] == 1
    clock.now += 1.01 / rate  # one token back (a hair over: the clock is a float)
    assert _get(guard, PORTAL)[0] == 200
    assert _get(guard, PORTAL)[0] == 503
    clock.now += 3600  # refilled, but never past the burst
    assert [_get(guard, PORTAL)[0] for _ in range(burst + 1)] == [200] * burst + [503]


def test_one_groups_flood_leaves_the_other_groups_and_tenants_their_share(clock: Clock) -> None:
    guard = _guard(1.0, a=ServerSettings(), b=ServerSettings())
    flood = [_get(guard, f"/t/a{PAYMENT}")[0] for _ in range(50)]
    assert flood.count(200) == 2 and flood.count(503) == 48
    assert [_get(guard, f"/t/a{PORTAL}")[0] for _ in range(2)] == [200, 200]  # a's other group
    assert [_get(guard, f"/t/b{PAYMENT}")[0] for _ in range(2)] == [200, 200]  # b's same group
    assert [_get(guard, PAYMENT)[0] for _ in range(2)] == [200, 200]  # the process's own paths


def test_zero_is_no_rate_cap_and_open_paths_are_never_counted(clock: Clock) -> None:
    unlimited = _guard(0.0)
    assert {_get(unlimited, PORTAL)[0] for _ in range(200)} == {200}
    capped = _guard(1.0)
    assert {_get(capped, "/healthz")[0] for _ in range(20)} == {200}
    assert [_get(capped, PORTAL)[0] for _ in range(3)] == [200, 200, 503]
