"""Fault injection (DESIGN.md "Mock faults"): a pure-ASGI layer in front of the whole app.

It sits outside FastAPI's own middleware on purpose: to drop a connection without a reply (reset,
lost reply, hang) it needs uvicorn's transport, reachable only from the ``send`` callable uvicorn
hands to the outermost application. Decisions come from one ``random.Random(seed)`` drawn a fixed
number of times per request, so a given seed and request order always give the same faults.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import re
import socket
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ERROR_STATUSES = frozenset({"500", "502", "503", "504"})


class FaultRule(BaseModel):
    """One rule; ``service`` is a portal service name, ``auth``, ``payment``, ``soap`` or ``*``."""

    model_config = ConfigDict(extra="forbid")

    service: str = "*"
    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    status_rates: dict[str, float] = Field(default_factory=dict)
    throttle_rate: float = Field(default=0.0, ge=0, le=1)
    retry_after_s: int = Field(default=1, ge=0)
    reset_rate: float = Field(default=0.0, ge=0, le=1)
    hang_rate: float = Field(default=0.0, ge=0, le=1)
    hang_s: float = Field(default=300.0, ge=0)
    """How long a hang lasts at most (it ends earlier when the client gives up)."""
    malformed_rate: float = Field(default=0.0, ge=0, le=1)
    lost_reply_rate: float = Field(default=0.0, ge=0, le=1)
    session_ttl_s: float | None = Field(default=None, ge=0)
    """Session lifetime for this service's calls (None: the run's ``session_ttl_s``)."""
    session_expire_rate: float = Field(default=0.0, ge=0, le=1)
    """Probability that a call finds its session expired (and the session is dropped)."""

    @field_validator("status_rates")
    @classmethod
    def _known_statuses(cls, value: dict[str, float]) -> dict[str, float]:
        for status, rate in value.items():
            if status not in ERROR_STATUSES:
                raise ValueError(f"status_rates: status {status!r} not one of {sorted(ERROR_STATUSES)}")
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"status_rates[{status!r}] = {rate} is not a probability")
        if sum(value.values()) > 1.0:
            raise ValueError("status_rates add up to more than 1")
        return value


class FaultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    rules: list[FaultRule] = Field(default_factory=list)

    def rule_for(self, *services: str) -> FaultRule | None:
        """The first rule naming the first of ``services`` that has one, else the first ``*`` rule."""
        for service in services:
            for rule in self.rules:
                if rule.service == service:
                    return rule
        return next((rule for rule in self.rules if rule.service == "*"), None)


@dataclass(frozen=True)
class Decision:
    delay_s: float = 0.0
    hang: bool = False
    throttle: bool = False
    status: int | None = None
    reset: bool = False
    expire_session: bool = False
    malformed: bool = False
    lost_reply: bool = False
    rule: FaultRule | None = None


# Read by the portal while it handles a request this layer let through.
FORCED_EXPIRY: contextvars.ContextVar[bool] = contextvars.ContextVar("mock_forced_expiry", default=False)
SESSION_TTL: contextvars.ContextVar[float | None] = contextvars.ContextVar("mock_session_ttl", default=None)


class FaultInjector:
    """Holds the current spec and its random stream; ``PUT /_admin/faults`` replaces both."""

    def __init__(self, spec: FaultSpec) -> None:
        self.set(spec)

    def set(self, spec: FaultSpec) -> None:
        self.spec = spec
        self._rng = random.Random(spec.seed)

    @property
    def active(self) -> bool:
        return bool(self.spec.rules)

    def decide(self, *services: str) -> Decision:
        rule = self.spec.rule_for(*services)
        if rule is None:
            return Decision()
        # Always eight draws, in this order, so the stream depends only on the request count.
        u = [self._rng.random() for _ in range(8)]
        delay = (rule.latency_ms + u[0] * rule.jitter_ms) / 1000.0
        status = None
        acc = 0.0
        for code, rate in sorted(rule.status_rates.items()):
            acc += rate
            if u[3] < acc:
                status = int(code)
                break
        return Decision(
            delay_s=delay,
            hang=u[1] < rule.hang_rate,
            throttle=u[2] < rule.throttle_rate,
            status=status,
            reset=u[4] < rule.reset_rate,
            expire_session=u[5] < rule.session_expire_rate,
            malformed=u[6] < rule.malformed_rate,
            lost_reply=u[7] < rule.lost_reply_rate,
            rule=rule,
        )


_SERVICE_RE = re.compile(rb'"service"\s*:\s*"([A-Za-z0-9_]{1,64})"')


def service_of(path: str, body: bytes) -> str | None:
    """The fault/stats service name of a request, or None for requests faults never touch."""
    if path.startswith("/dvcqg/"):
        if path.rstrip("/").endswith("/auth"):
            return "auth"
        match = _SERVICE_RE.search(body)
        return match.group(1).decode() if match else "unknown"
    if path.startswith("/payment/") and not path.startswith("/payment/pay/"):
        return "payment"
    if path.startswith("/soap"):
        return "soap"
    return None


def _soap_operation(body: bytes) -> str:
    from .soap_xml import operation_of  # the SOAP face's own scan of the raw envelope

    return operation_of(body) or "soap"


def abort_connection(send: Send, *, reset: bool) -> bool:
    """Drop the client's TCP connection without a reply; ``reset`` sends an RST instead of a FIN.

    uvicorn's ``send`` is a bound method of its request cycle, which holds the asyncio transport.
    Marking the cycle disconnected stops uvicorn from answering 500 once the app returns.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    if cycle is not None and hasattr(cycle, "disconnected"):
        cycle.disconnected = True
    return True


class ConnectionDropError(RuntimeError):
    """Raised when the server gives no transport to abort (not uvicorn): the server then drops it."""


class FaultMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        injector: FaultInjector,
        count: Callable[[str, str], None],
    ) -> None:
        self.app = app
        self.injector = injector
        self.count = count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.injector.active or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        service = service_of(scope.get("path", ""), body)
        if service is None:
            await self.app(scope, _replay(body, receive), send)
            return
        # A SOAP call obeys a "soap" rule, else the rule of the operation it names (the same
        # service over REST), else "*"; its faults are counted under "soap".
        decision = self.injector.decide(
            *([service, _soap_operation(body)] if service == "soap" else [service])
        )
        if decision.rule is None:
            await self.app(scope, _replay(body, receive), send)
            return
        if decision.delay_s > 0:
            await asyncio.sleep(decision.delay_s)
        if decision.hang:
            self.count(service, "fault:hang")
            await _hang(receive, decision.rule.hang_s)
            _drop(send, reset=False)
            return
        if decision.throttle:
            self.count(service, "fault:throttle")
            await _answer(
                send,
                429,
                b'{"error_code": 429, "message": "Qu\\u00e1 nhi\\u1ec1u y\\u00eau c\\u1ea7u"}',
                [(b"retry-after", str(decision.rule.retry_after_s).encode())],
            )
            return
        if decision.status is not None:
            self.count(service, f"fault:{decision.status}")
            page = f"<html><body><h1>{decision.status} gateway error</h1></body></html>".encode()
            await _answer(send, decision.status, page, [], content_type=b"text/html")
            return
        if decision.reset:
            self.count(service, "fault:reset")
            _drop(send, reset=True)
            return
        tokens = (FORCED_EXPIRY.set(decision.expire_session), SESSION_TTL.set(decision.rule.session_ttl_s))
        try:
            if decision.expire_session:
                self.count(service, "fault:session_expiry")
            if decision.lost_reply:
                await self.app(scope, _replay(body, receive), _discard)
                self.count(service, "fault:lost_reply")
                _drop(send, reset=False)
            elif decision.malformed:
                captured = _Capture()
                await self.app(scope, _replay(body, receive), captured)
                self.count(service, "fault:malformed")
                await captured.send_truncated(send)
            else:
                await self.app(scope, _replay(body, receive), send)
        finally:
            FORCED_EXPIRY.reset(tokens[0])
            SESSION_TTL.reset(tokens[1])


def _drop(send: Send, *, reset: bool) -> None:
    if not abort_connection(send, reset=reset):
        raise ConnectionDropError("fault injection: connection dropped")


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def inner() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return inner


async def _hang(receive: Receive, limit_s: float) -> None:
    """Wait until the client gives up (``http.disconnect``) or ``limit_s`` passes."""
    try:
        async with asyncio.timeout(limit_s):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        pass


async def _discard(message: Message) -> None:
    return None


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    content_type: bytes = b"application/json",
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _Capture:
    """Collects the inner app's reply so it can be sent cut in half (a malformed body)."""

    def __init__(self) -> None:
        self.status = 200
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    async def send_truncated(self, send: Send) -> None:
        cut = bytes(self.body[: max(1, len(self.body) // 2)]) + b"\x00<!-- upstream"
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [*self.headers, (b"content-length", str(len(cut)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": cut, "more_body": False})
