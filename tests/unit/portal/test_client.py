"""Client behaviour against scripted answer sequences (respx): what is retried, what is not."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import pytest
import respx

from dvcsync.config import PortalSettings
from dvcsync.portal import (
    AmbiguousError,
    AuthError,
    Backoff,
    PortalClient,
    ProtocolError,
    RateBudget,
    UnreachableError,
    parse_retry_after,
)

BASE = "http://portal.test/dvcqg"
AUTH, INTEGRATION, SHARE = f"{BASE}/auth", f"{BASE}/integration", f"{BASE}/share"
OK = {"error_code": 0, "message": "", "result": []}


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def _client(sleeps: Sleeps, **overrides: Any) -> PortalClient:
    settings = PortalSettings(
        adapter_url=BASE,
        dstcode="H40-TEST",
        madonvi="000.00.00.H40",
        max_attempts=4,
        rate_limit=10_000,
        **overrides,
    )
    return PortalClient(settings, httpx.AsyncClient(), backoff=Backoff(rng=random.Random(1)), sleep=sleeps)


def _login_route(mock: respx.MockRouter) -> respx.Route:
    sessions = iter(f"S{i}" for i in range(1, 100))
    return mock.post(AUTH).mock(
        side_effect=lambda request: httpx.Response(
            200, json={"error_code": 0, "session": next(sessions), "message": "ok"}
        )
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@respx.mock(assert_all_called=False)
def test_request_shape_and_endpoints(respx_mock: respx.MockRouter) -> None:
    _login_route(respx_mock)
    integration = respx_mock.post(INTEGRATION).mock(return_value=httpx.Response(200, json=OK))
    share = respx_mock.post(SHARE).mock(return_value=httpx.Response(200, json={**OK, "error_code": "00"}))
    client = _client(Sleeps())
    reply = run(client.call("TraCuuHoSo", {"mahoso": "X-1"}))
    assert reply.ok
    assert run(client.call("LayDanhSachTTHC")).ok  # "00" is success too
    request = integration.calls.last.request
    assert request.headers["dstcode"] == "H40-TEST"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "session": "S1",
        "madonvi": "000.00.00.H40",
        "service": "TraCuuHoSo",
        "mahoso": "X-1",
    }
    assert json.loads(share.calls.last.request.content)["service"] == "LayDanhSachTTHC"
    login = json.loads(respx_mock.calls[0].request.content)
    assert set(login) == {"username", "password"}


@respx.mock
def test_concurrent_calls_share_one_login(respx_mock: respx.MockRouter) -> None:
    login = _login_route(respx_mock)
    respx_mock.post(INTEGRATION).mock(return_value=httpx.Response(200, json=OK))
    client = _client(Sleeps())

    async def many() -> None:
        await asyncio.gather(*(client.call("TraCuuHoSo", {"mahoso": str(i)}) for i in range(8)))

    run(many())
    assert login.call_count == 1


@respx.mock
def test_expired_session_relogs_in_and_retries(respx_mock: respx.MockRouter) -> None:
    login = _login_route(respx_mock)
    route = respx_mock.post(INTEGRATION).mock(
        side_effect=[
            httpx.Response(200, json={"error_code": 401, "message": "Phiên làm việc hết hạn"}),
            httpx.Response(200, json=OK),
        ]
    )
    client = _client(Sleeps())
    assert run(client.call("TraCuuHoSo", {"mahoso": "X"})).ok
    assert login.call_count == 2
    assert [json.loads(c.request.content)["session"] for c in route.calls] == ["S1", "S2"]


@respx.mock
def test_session_refused_after_fresh_login_is_an_auth_error(respx_mock: respx.MockRouter) -> None:
    _login_route(respx_mock)
    respx_mock.post(INTEGRATION).mock(return_value=httpx.Response(401))
    with pytest.raises(AuthError):
        run(_client(Sleeps()).call("TraCuuHoSo", {"mahoso": "X"}))


@respx.mock
def test_login_refused(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(AUTH).mock(
        return_value=httpx.Response(200, json={"error_code": 1, "message": "Sai mật khẩu"})
    )
    with pytest.raises(AuthError, match="Sai mật khẩu"):
        run(_client(Sleeps()).call("TraCuuHoSo", {"mahoso": "X"}))


@respx.mock
def test_throttle_and_unavailable_are_retried_honouring_retry_after(respx_mock: respx.MockRouter) -> None:
    _login_route(respx_mock)
    route = respx_mock.post(INTEGRATION).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(503, headers={"Retry-After": "1"}),
            httpx.Response(200, json=OK),
        ]
    )
    sleeps = Sleeps()
    # throttling means "not processed": even an append-only write is repeated
    assert run(_client(sleeps).call("CapNhatTienDoHoSoMC", {"data": []})).ok
    assert route.call_count == 3
    assert sleeps.delays[0] >= 3 and sleeps.delays[1] >= 1


@respx.mock
def test_a_refused_connection_is_tried_twice_then_the_portal_is_unreachable(
    respx_mock: respx.MockRouter,
) -> None:
    """Not max_attempts times with growing back-off: a portal that is down ends the cycle in
    seconds, and the caller uses no record's attempt for it."""

    _login_route(respx_mock)
    route = respx_mock.post(INTEGRATION).mock(side_effect=httpx.ConnectError("refused"))
    sleeps = Sleeps()
    with pytest.raises(UnreachableError, match="not sent: ConnectError"):
        run(_client(sleeps).call("CapNhatTienDoHoSoMC", {"data": []}))
    assert route.call_count == 2 and len(sleeps.delays) == 1 and sum(sleeps.delays) < 5


@respx.mock
def test_a_login_the_gateway_answers_502_to_is_unreachable(respx_mock: respx.MockRouter) -> None:

    respx_mock.post(AUTH).mock(return_value=httpx.Response(502, text="Bad Gateway"))
    with pytest.raises(UnreachableError, match="HTTP 502"):
        run(_client(Sleeps()).call("TraCuuHoSo", {"mahoso": "x"}))


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("dropped"),
        httpx.ReadError("reset"),
        httpx.Response(500),
        httpx.Response(502),
        httpx.Response(200, content=b"<html>oops"),
    ],
    ids=["read-timeout", "dropped", "reset", "500", "502", "not-json"],
)
def test_lost_answers_are_ambiguous_for_append_only_writes(failure: Any) -> None:
    with respx.mock() as mock:
        _login_route(mock)
        route = mock.post(INTEGRATION).mock(side_effect=[failure, httpx.Response(200, json=OK)])
        with pytest.raises(AmbiguousError):
            run(_client(Sleeps()).call("CapNhatTienDoHoSoMC", {"data": []}))
        assert route.call_count == 1  # never re-sent blindly


@pytest.mark.parametrize("failure", [httpx.ReadTimeout("slow"), httpx.Response(500)], ids=["timeout", "500"])
def test_lost_answers_are_retried_for_idempotent_calls(failure: Any) -> None:
    with respx.mock() as mock:
        _login_route(mock)
        route = mock.post(INTEGRATION).mock(side_effect=[failure, httpx.Response(200, json=OK)])
        assert run(_client(Sleeps()).call("DongBoHoSoMC", {"isUpdating": "True", "data": []})).ok
        assert route.call_count == 2


@respx.mock
def test_client_errors_are_not_retried(respx_mock: respx.MockRouter) -> None:
    _login_route(respx_mock)
    route = respx_mock.post(INTEGRATION).mock(return_value=httpx.Response(400, text="bad request"))
    with pytest.raises(ProtocolError, match="HTTP 400"):
        run(_client(Sleeps()).call("TraCuuHoSo", {"mahoso": "X"}))
    assert route.call_count == 1


@respx.mock
def test_business_refusal_is_returned_not_raised(respx_mock: respx.MockRouter) -> None:
    _login_route(respx_mock)
    respx_mock.post(INTEGRATION).mock(
        return_value=httpx.Response(
            200, json={"error_code": "3", "message": "Hồ sơ đã tồn tại", "result": None}
        )
    )
    reply = run(_client(Sleeps()).call("DongBoHoSoMC", {"isUpdating": "False", "data": []}))
    assert not reply.ok and reply.error_code == 3 and "đã tồn tại" in reply.message


def test_backoff_is_full_jitter_and_capped() -> None:
    backoff = Backoff(base=0.5, cap=4.0, rng=random.Random(3))
    delays = [backoff.delay(attempt) for attempt in range(1, 10) for _ in range(50)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert max(delays) > 3.0 and min(delays) < 0.5  # spread, not fixed
    assert backoff.delay(1, retry_after=7) >= 7


def test_retry_after_parsing() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


def test_rate_budget_spaces_requests() -> None:
    import time

    async def burst() -> float:
        budget = RateBudget(rate=200, burst=1)
        started = time.monotonic()
        for _ in range(11):
            await budget.acquire()
        return time.monotonic() - started

    assert asyncio.run(burst()) >= 10 / 200 * 0.9


@respx.mock
def test_raw_fields_are_spliced_in_as_json(respx_mock: respx.MockRouter) -> None:
    _login_route(respx_mock)
    route = respx_mock.post(INTEGRATION).mock(return_value=httpx.Response(200, json=OK))
    raw = '[{"MaHoSo":"A-1","ChuHoSo":"Nguyễn Văn An"},{"MaHoSo":"A-2"}]'
    run(_client(Sleeps()).call("DongBoHoSoMC", {"isUpdating": "False"}, raw_fields={"data": raw}))
    body = json.loads(route.calls.last.request.content)
    assert body["isUpdating"] == "False" and body["service"] == "DongBoHoSoMC"
    assert body["data"] == [{"MaHoSo": "A-1", "ChuHoSo": "Nguyễn Văn An"}, {"MaHoSo": "A-2"}]
