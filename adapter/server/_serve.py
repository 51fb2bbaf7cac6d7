"""The inbound app under uvicorn, with the limits a network the province does not control needs.

uvicorn closes idle keep-alive connections, but not a connection that never sends a byte, nor a
request that arrives a byte every few seconds: one process runs both the sync jobs and this
server, so a thousand such callers must not hold its file descriptors. ``GuardedH11Protocol``
gives every request ``header_timeout_s`` for its headers and ``read_timeout_s`` for the whole of
it, and closes connections beyond ``max_connections`` at once. (Hypercorn has read timeouts of
its own, but swapping servers for two timers would change far more than it fixes.)
"""

from __future__ import annotations

import asyncio
import logging
import resource
import ssl
from collections import Counter
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from adapter.config import ServerSettings, is_loopback_host

log = logging.getLogger("adapter.server")

DROPPED: Counter[str] = Counter()
"""Connections closed by the limits, by reason (``headers``, ``body``, ``connections``)."""


class GuardedH11Protocol(H11Protocol):
    header_timeout_s = 10.0
    read_timeout_s = 30.0
    max_connections = 4096

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = ""
        if len(self.connections) > self.max_connections:
            DROPPED["connections"] += 1
            transport.abort()
            return
        self._arm("headers", self.header_timeout_s)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            if not self._phase:  # the first bytes of a new request
                self._arm("headers", self.header_timeout_s)
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body", self.read_timeout_s)
        else:  # the request is in: the application has it, no deadline on the caller
            self._disarm()

    def on_response_complete(self) -> None:
        self._disarm()  # idle from here: uvicorn's keep-alive timeout takes over
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._phase = phase
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
        self._deadline, self._phase = None, ""

    def _too_slow(self) -> None:
        DROPPED[self._phase or "headers"] += 1
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.abort()  # nothing worth answering; free the descriptor now


def guarded_protocol(settings: ServerSettings) -> type[GuardedH11Protocol]:
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "header_timeout_s": settings.header_timeout_s,
            "read_timeout_s": settings.read_timeout_s,
            "max_connections": settings.max_connections,
        },
    )


def server_config(app: Any, settings: ServerSettings, **overrides: Any) -> uvicorn.Config:
    """uvicorn settings for the inbound server: our own protocol and limits, no proxy headers
    (``trusted_proxies`` decides whom to believe, not uvicorn's default of 127.0.0.1), TLS and
    client certificates when configured."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": guarded_protocol(settings),
        "proxy_headers": False,
        "server_header": False,
        "log_level": "warning",
        "access_log": False,
        "timeout_keep_alive": max(1, round(settings.keepalive_timeout_s)),
        "h11_max_incomplete_event_size": 16 * 1024,
        "timeout_graceful_shutdown": 10,
        "lifespan": "off",
    }
    if settings.tls_cert is not None:
        options.update(ssl_certfile=str(settings.tls_cert), ssl_keyfile=str(settings.tls_key))
        if settings.tls_client_ca is not None:
            options.update(ssl_ca_certs=str(settings.tls_client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED)
    options.update(overrides)
    return uvicorn.Config(app, **options)


def listen_problems(settings: ServerSettings) -> list[str]:
    """Why the inbound server must not start with these settings (empty when it may)."""
    problems = []
    for name in ("tls_cert", "tls_key", "tls_client_ca"):
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            problems.append(f"[server] {name} = {str(path)!r}: no such file")
    if is_loopback_host(settings.host):
        return problems
    mtls = settings.tls_client_ca is not None
    open_groups = [
        name
        for name in ("payment", "portal", "monitoring")
        if settings.group(name).allow or settings.group(name).token is not None or mtls
    ]
    if not open_groups:
        problems.append(
            f"[server] host = {settings.host!r} listens beyond this machine, but no caller is"
            " authenticated: set [server] allow = [\"CIDR\", ...] (the payment platform's and the"
            " portal's networks) and/or token_file (a shared credential sent as 'Authorization: Bearer"
            " …'), per group in [server.payment], [server.portal], [server.monitoring], or"
            " tls_client_ca for mutual TLS; or listen on 127.0.0.1 behind a reverse proxy"
        )
    elif settings.tls_cert is None and any(settings.group(n).token is not None for n in open_groups):
        log.warning(
            "inbound server: bearer credentials on %s without TLS travel in clear; set [server] tls_cert"
            " and tls_key, or terminate TLS at a reverse proxy",
            settings.host,
        )
    return problems


def raise_open_files_limit(target: int = 65536) -> int:
    """Lift the soft descriptor limit toward the hard one (many distributions default to 1024,
    below what a busy inbound server and the sync jobs need together). Returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(target, hard) if hard != resource.RLIM_INFINITY else target
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return wanted
        except (ValueError, OSError):
            return soft
    return soft
