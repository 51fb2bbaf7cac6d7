"""Who may call which inbound path, and what one request may cost, decided before any of it
reaches the application.

A pure ASGI middleware rather than FastAPI dependencies: the refusal happens before the body is
read, and it covers every route, ``/docs``, ``/openapi.json`` and unknown paths alike, so a route
added later cannot forget it. Refusals are answered in the path's contract shape, store nothing
and log one line without the body (at most ``_LOG_BURST`` lines per ``_LOG_WINDOW_S``, the rest
counted, so a flood of bad callers cannot flood the log).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from dvcsync.config import AccessSettings, Network, ServerSettings

log = logging.getLogger("dvcsync.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

TENANT_PREFIX = "/t/"
GROUP_OF_PATH = (("/inbound/payment/", "payment"), ("/inbound/dvcqg/", "portal"))
OPEN_PATHS = frozenset({"/healthz"})
CALLBACK_PATH = "/inbound/payment/dpnhankqthanhtoanhs"
BILL_PATH = "/inbound/payment/dptracuuthanhtoanhs"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_LOG_BURST, _LOG_WINDOW_S = 20, 10.0


class _Gone(Exception):
    """The caller disconnected while sending its body."""


def group_of(path: str) -> str | None:
    """``payment`` / ``portal`` / ``monitoring``; None for the paths anyone may call."""
    if path in OPEN_PATHS:
        return None
    for prefix, group in GROUP_OF_PATH:
        if path.startswith(prefix):
            return group
    return "monitoring"  # /metrics, /readyz, /docs, /openapi.json and anything unknown


def split_tenant(path: str) -> tuple[str | None, str]:
    """``/t/<code>/rest`` → (code, ``/rest``): a tenant's path and the path its own application
    sees; any other path → (None, path)."""
    if not path.startswith(TENANT_PREFIX):
        return None, path
    code, _, rest = path[len(TENANT_PREFIX) :].partition("/")
    return code, "/" + rest


def contract_refusal(path: str, message: str) -> dict[str, Any]:
    """A refusal in the shape the path's contract answers in: the payment platform's ``MaLoi``
    for its callback, an empty bill for its look-up, ``error_code`` -1 for everything else."""
    if path == CALLBACK_PATH:
        return {"MaLoi": "99", "MoTaLoi": message}
    if path == BILL_PATH:
        return {"error_code": -1, "message": []}
    return {"error_code": -1, "message": message}


class _Rule:
    def __init__(self, access: AccessSettings, mtls: bool) -> None:
        self.networks: list[Network] = list(access.allow or [])
        self.token = access.token.get_secret_value().encode() if access.token is not None else None
        self.mtls = mtls

    def admits(self, address: Address) -> bool:
        if self.networks:
            return any(address in net for net in self.networks)
        if self.token is not None or self.mtls:
            return True  # authenticated by what the caller presents, from anywhere
        return address.is_loopback


class _Bucket:
    """A token bucket: ``rate`` requests a second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class AccessGuard:
    """Allow-list, bearer credential, body cap and in-flight caps for every inbound request.
    With ``tenants`` (code → that tenant's server settings), a tenant's paths ``/t/<code>/…``
    are judged by the tenant's own caller rules; the caps and trusted proxies are the process's.

    Capacity is shared out by tenant and path group: one (tenant, group) may hold at most
    ``max_in_flight_per_group`` of the process's ``max_requests_in_flight`` slots and start at most
    ``rate_per_group`` requests a second, so a flood on one tenant's payment path (by a caller
    holding only that tenant's token) leaves the other tenants, and that tenant's other groups,
    their share. Caps are checked after the caller is admitted: an unknown caller costs no slot."""

    def __init__(
        self,
        app: ASGIApp,
        settings: ServerSettings,
        refused: Counter[tuple[str, int]] | None = None,
        tenants: Mapping[str, ServerSettings] | None = None,
    ) -> None:
        self.app = app
        mtls = settings.tls_client_ca is not None
        self.rules = _rules(settings, mtls)
        self.tenant_rules = {code: _rules(own, mtls) for code, own in (tenants or {}).items()}
        self.trusted: list[Network] = list(settings.trusted_proxies)
        self.max_body = settings.max_body_bytes
        self.max_in_flight = settings.max_requests_in_flight
        self.in_flight = 0
        self.max_per_group = settings.max_in_flight_per_group or max(1, self.max_in_flight // 2)
        self.rate_per_group = settings.rate_per_group
        self.group_in_flight: Counter[tuple[str, str]] = Counter()
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self.refused: Counter[tuple[str, int]] = refused if refused is not None else Counter()
        self._log_window = (0.0, 0)
        self._suppressed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        code, inner = split_tenant(path)
        tenant = code or ""
        rules = self.tenant_rules.get(tenant)
        if rules is None:  # not a tenant's path: the process's rules, the whole path
            rules, inner, tenant = self.rules, path, ""
        scope = {**scope, "dvcsync.route": inner}  # what the refusal's shape goes by
        group = group_of(inner)
        if group is None:
            await self.app(scope, receive, send)
            return
        rule = rules[group]
        client = self.client_address(scope)
        if client is None:
            await self._refuse(
                scope, send, group, 403, "không xác định được địa chỉ bên gọi", "unknown client"
            )
            return
        if not rule.admits(client):
            await self._refuse(
                scope, send, group, 403, "bên gọi không được phép", f"{client} is not allowed", client
            )
            return
        if rule.token is not None and not _bearer_ok(scope, rule.token):
            await self._refuse(
                scope,
                send,
                group,
                401,
                "thiếu hoặc sai thông tin xác thực",
                "missing or wrong credential",
                client,
            )
            return
        scope["dvcsync.caller"] = str(client)  # whom the application counts refused bodies by
        key = (tenant, group)
        busy = self._over_capacity(key)
        if busy is not None:
            await self._refuse(scope, send, group, 503, "hệ thống đang bận, thử lại sau", busy, client)
            return
        self.in_flight += 1
        self.group_in_flight[key] += 1
        try:
            if scope["method"] in _BODY_METHODS:
                try:
                    body = await self._read_body(scope, receive)
                except _Gone:
                    return  # the caller left (or its deadline closed it): nobody to answer
                if body is None:
                    why = f"body over {self.max_body} bytes"
                    await self._refuse(scope, send, group, 413, "nội dung quá lớn", why, client)
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.group_in_flight[key] -= 1
            if not self.group_in_flight[key]:
                del self.group_in_flight[key]

    def _over_capacity(self, key: tuple[str, str]) -> str | None:
        """Why this (tenant, group) may not start a request now, or None."""
        where = f"{key[0]}/{key[1]}" if key[0] else key[1]
        if self.group_in_flight[key] >= self.max_per_group:
            return f"too many requests in flight for {where}"
        if self.in_flight >= self.max_in_flight:
            return "too many requests in flight"
        if self.rate_per_group > 0:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self.rate_per_group, 2 * self.rate_per_group)
            if not bucket.take():
                return f"over rate_per_group for {where}"
        return None

    # ------------------------------------------------------------------ who is calling

    def client_address(self, scope: Scope) -> Address | None:
        """The connection's own address; forwarding headers count only from ``trusted_proxies``,
        read right to left past the trusted hops (the left part is whatever the client wrote)."""
        peer = _address((scope.get("client") or ("",))[0])
        if peer is None or not self._trusted(peer):
            return peer
        chain = _forwarded_chain(scope)
        if chain is None:
            return peer
        hops = [*chain, str(peer)]
        for raw in reversed(hops):
            address = _address(raw)
            if address is None:
                return None  # a garbled hop: nobody can say who is calling
            if not self._trusted(address):
                return address
        return _address(hops[0])

    def _trusted(self, address: Address) -> bool:
        return any(address in net for net in self.trusted)

    # ------------------------------------------------------------------ body

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None past ``max_body`` (by Content-Length before reading any)."""
        declared = _header(scope, b"content-length")  # h11 has already refused one that is not a number
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Gone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    # ------------------------------------------------------------------ refusals

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        group: str,
        status: int,
        message: str,
        why: str,
        client: Address | None = None,
    ) -> None:
        self.refused[(group, status)] += 1
        self._log(scope, status, why, client)
        body = contract_refusal(scope.get("dvcsync.route", scope["path"]), message)
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="dvcsync"'))
        if status == 503:
            headers.append((b"retry-after", b"1"))
        payload = json.dumps(body, ensure_ascii=False).encode()
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _log(self, scope: Scope, status: int, why: str, client: Address | None) -> None:
        now = time.monotonic()
        start, count = self._log_window
        if now - start > _LOG_WINDOW_S:
            start, count = now, 0
        if count >= _LOG_BURST:
            self._suppressed += 1
            self._log_window = (start, count)
            return
        self._log_window = (start, count + 1)
        more = f" ({self._suppressed} more refusals not logged)" if self._suppressed else ""
        self._suppressed = 0
        peer = client if client is not None else (scope.get("client") or ("?",))[0]
        log.warning(
            "inbound %s %s refused with %d for %s: %s%s",
            scope["method"],
            ascii(scope["path"])[1:-1][:200],
            status,
            peer,
            why,
            more,
        )


def _rules(settings: ServerSettings, mtls: bool) -> dict[str, _Rule]:
    return {name: _Rule(settings.group(name), mtls) for name in ("payment", "portal", "monitoring")}


def _address(text: str) -> Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _header(scope: Scope, name: bytes) -> str | None:
    values = [v for k, v in scope.get("headers", ()) if k == name]
    if not values:
        return None
    return b",".join(values).decode("latin-1").strip()


def _forwarded_chain(scope: Scope) -> list[str] | None:
    """The hops a trusted proxy reports, oldest first: ``Forwarded``, else ``X-Forwarded-For``,
    else ``X-Real-IP``; None when it reports none."""
    forwarded = _header(scope, b"forwarded")
    if forwarded:
        hops = []
        for element in forwarded.split(","):
            fors = [p.split("=", 1)[1] for p in element.split(";") if p.strip().lower().startswith("for=")]
            hops.append(fors[0] if fors else "")
        return hops
    xff = _header(scope, b"x-forwarded-for")
    if xff:
        return [h.strip() for h in xff.split(",")]
    real = _header(scope, b"x-real-ip")
    return [real] if real else None


def _bearer_ok(scope: Scope, token: bytes) -> bool:
    values = [v for k, v in scope.get("headers", ()) if k == b"authorization"]
    if len(values) != 1:
        return False
    scheme, _, presented = values[0].partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(presented.strip(), token)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, handed to the application once; then the connection's own events."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
