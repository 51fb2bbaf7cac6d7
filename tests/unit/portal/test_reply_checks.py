"""Replies the contract does not allow (wrongly typed, too large) against scripted answers (respx):
each is a ``ProtocolError`` naming the service and the field, never a ``ValidationError`` escaping."""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from dvcsync.config import PortalSettings
from dvcsync.portal import Backoff, PortalClient, ProtocolError

BASE = "http://portal.test/dvcqg"
AUTH, INTEGRATION = f"{BASE}/auth", f"{BASE}/integration"
LOGIN = {"error_code": 0, "session": "S1", "message": "ok"}


async def _no_sleep(_: float) -> None:
    return None


def _client(**overrides: Any) -> PortalClient:
    settings = PortalSettings(adapter_url=BASE, max_attempts=2, rate_limit=10_000, **overrides)
    return PortalClient(settings, httpx.AsyncClient(), backoff=Backoff(rng=random.Random(1)), sleep=_no_sleep)


def _call(service: str, reply: httpx.Response, **overrides: Any) -> Any:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(AUTH).mock(return_value=httpx.Response(200, json=LOGIN))
        route = mock.post(INTEGRATION).mock(return_value=reply)
        try:
            return asyncio.run(_client(**overrides).call(service, {"mahoso": "X-1"}))
        finally:
            assert route.call_count >= 1


@pytest.mark.parametrize(
    ("reply", "field"),
    [
        ({"error_code": 0, "result": [{"MaHoSo": {"a": 1}}]}, "result.0.MaHoSo"),
        ({"error_code": 0, "result": {"MaHoSo": "X-1"}}, "result"),
        ({"error_code": 0, "message": ["not", "text"], "result": []}, "message"),
        ({"error_code": "không", "message": "x"}, "error_code"),
        ({"error_code": {"a": 1}}, "error_code"),
        ({"error_code": 1, "message": {"a": 1}}, "message"),  # an error reply, itself wrongly typed
    ],
)
def test_a_wrongly_typed_reply_is_a_protocol_error_naming_service_and_field(
    reply: dict[str, Any], field: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        _call("TraCuuHoSo", httpx.Response(200, json=reply))
    assert caught.value.service == "TraCuuHoSo"
    assert f"at {field}:" in str(caught.value)


def test_an_error_reply_whose_result_has_another_shape_is_still_an_error_reply() -> None:
    reply = _call("TraCuuHoSo", httpx.Response(200, json={"error_code": 5, "message": "x", "result": "?"}))
    assert (reply.ok, reply.error_code, reply.message, reply.result) == (False, 5, "x", None)


def test_a_wrongly_typed_untyped_call_is_a_protocol_error_too() -> None:
    async def scenario() -> None:
        with respx.mock() as mock:
            mock.post(AUTH).mock(return_value=httpx.Response(200, json=LOGIN))
            mock.post(INTEGRATION).mock(return_value=httpx.Response(200, json={"error_code": 0, "result": 7}))
            await _client().call("DanhSachHoSo", {}, typed=False)

    with pytest.raises(ProtocolError, match=r"DanhSachHoSo: .* at result:"):
        asyncio.run(scenario())


def test_a_reply_announcing_more_than_the_cap_is_refused_before_reading() -> None:
    big = httpx.Response(200, headers={"Content-Length": str(10 * 1024 * 1024)}, content=b"{}")
    with pytest.raises(ProtocolError, match="TraCuuHoSo: reply larger than 4096 bytes"):
        _call("TraCuuHoSo", big, max_reply_bytes=4096)


def test_a_streamed_reply_past_the_cap_is_refused_by_counting() -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):
            sent += 1
            yield b" " * 1024

    with pytest.raises(ProtocolError, match="reply larger than 4096 bytes"):
        _call("TraCuuHoSo", httpx.Response(200, content=chunks()), max_reply_bytes=4096)
    assert sent <= 6  # stopped at the cap, the rest never read


def test_a_reply_within_the_cap_reads_as_before() -> None:
    body = {"error_code": 0, "message": "", "result": []}
    assert _call("TraCuuHoSo", httpx.Response(200, json=body), max_reply_bytes=1024).ok


def test_an_oversized_login_answer_is_a_protocol_error() -> None:
    async def scenario() -> None:
        with respx.mock() as mock:
            mock.post(AUTH).mock(return_value=httpx.Response(200, content=b" " * 5000))
            await _client(max_reply_bytes=1024).call("TraCuuHoSo", {"mahoso": "X"})

    with pytest.raises(ProtocolError, match="auth: reply larger than 1024 bytes"):
        asyncio.run(scenario())


def _raised_from(exc: httpx.HTTPError, cause: BaseException) -> httpx.HTTPError:
    exc.__cause__ = cause
    return exc


def test_tls_refusals_are_named_and_other_failures_are_not() -> None:
    """A server that sends the TLS alert (not every one does: asyncio's drops the connection) makes
    the refusal read ``TLS: ...``; a reset or a non-certificate TLS read error stays what it was."""
    from dvcsync.portal._http import describe, tls_problem

    alert = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required")
    assert (tls_problem(_raised_from(httpx.ReadError(""), alert)) or "").startswith("TLS: handshake refused")
    eof = ssl.SSLError(1, "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF")
    assert tls_problem(_raised_from(httpx.ReadError(""), eof)) is None
    assert (tls_problem(_raised_from(httpx.ConnectError(""), eof)) or "").startswith("TLS: handshake refused")
    reset = _raised_from(httpx.ReadError(""), ConnectionResetError(104, "Connection reset by peer"))
    assert tls_problem(reset) is None
    assert describe(reset) == "ReadError (connection reset by peer)"
