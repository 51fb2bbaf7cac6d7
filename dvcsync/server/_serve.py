"""The inbound app under uvicorn, with the limits a network the province does not control needs.

uvicorn closes idle keep-alive connections, but not a connection that never sends a byte, nor a
request that arrives a byte every few seconds: one process runs both the sync jobs and this
server, so a thousand such callers must not hold its file descriptors. ``GuardedH11Protocol``
gives every request ``header_timeout_s`` for its headers and ``read_timeout_s`` for the whole of
it, and closes connections beyond ``max_connections`` at once. (Hypercorn has read timeouts of
its own, but swapping servers for two timers would change far more than it fixes.)

It also refuses ambiguous framing (RFC 9112 §6.3) with 400 and closes: a proxy in front that
frames a request by another header than h11 does would otherwise let a second, hidden request
ride the connection (request smuggling). h11 already refuses differing ``Content-Length`` values
and unknown transfer codings; ``StrictConnection`` adds both headers at once, a repeated
``Content-Length``, ``Transfer-Encoding`` on HTTP/1.0, folded header lines and bare LF line ends.
A connection closed while the caller is still sending (an early 401/413, a refused framing) is
closed lingering: the answer is sent, the write side shut, and what the caller still sends is
read and discarded for up to ``linger_s`` (or ``linger_bytes``), so the caller's kernel does
not reset the connection before the caller has read the answer.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import ssl
import time
from collections import Counter
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from dvcsync.config import ServerSettings, is_loopback_host

log = logging.getLogger("dvcsync.server")

DROPPED: Counter[str] = Counter()
"""Connections closed by the limits, by reason (``headers``, ``body``, ``connections``,
``framing``, ``linger``)."""

_LOG_BURST, _LOG_WINDOW_S = 20, 10.0
_log_window = [0.0, 0, 0]  # window start, lines in it, lines suppressed


class StrictConnection(h11.Connection):
    """h11's server side, refusing the request heads a proxy could read differently."""

    refusal = ""
    """Why the last request was refused (h11's reason or ours), for the log line."""

    def next_event(self) -> Any:
        head = bytes(self._receive_buffer) if self.their_state is h11.IDLE else b""
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.refusal = str(exc)
            raise
        if isinstance(event, h11.Request):
            problem = framing_problem(event, head)
            if problem is not None:
                self.refusal = problem
                raise h11.RemoteProtocolError(problem, error_status_hint=400)
        return event


def framing_problem(request: h11.Request, head: bytes) -> str | None:
    """Why this request's framing is ambiguous, or None. ``head`` is the raw bytes the request
    was read from: h11 merges repeated equal ``Content-Length`` values and unfolds folded lines,
    which a proxy in front may not do alike."""
    raw = head.lstrip(b"\r\n")
    end = raw.find(b"\r\n\r\n")
    raw = raw[: end if end >= 0 else len(raw)]
    if raw.count(b"\n") != raw.count(b"\r\n"):
        return "a line ending in LF without CR"
    if b"\r\n " in raw or b"\r\n\t" in raw:
        return "a folded header line"
    fields = [line.partition(b":") for line in raw.split(b"\r\n")[1:]]
    lengths = [value.strip() for name, _, value in fields if name.strip().lower() == b"content-length"]
    chunked = any(name.strip().lower() == b"transfer-encoding" for name, _, _ in fields)
    if chunked and lengths:
        return "both Transfer-Encoding and Content-Length"
    if len(lengths) > 1 or any(b"," in value for value in lengths):
        return "more than one Content-Length"
    if chunked and request.http_version == b"1.0":
        return "Transfer-Encoding on HTTP/1.0"
    return None


def _log_limited(message: str, *args: object) -> None:
    """One warning, at most ``_LOG_BURST`` per ``_LOG_WINDOW_S`` (a flood must not flood the log)."""
    now = time.monotonic()
    if now - _log_window[0] > _LOG_WINDOW_S:
        _log_window[0], _log_window[1] = now, 0
    if _log_window[1] >= _LOG_BURST:
        _log_window[2] += 1
        return
    _log_window[1] += 1
    more, _log_window[2] = _log_window[2], 0
    log.warning(message + (f" ({more} more not logged)" if more else ""), *args)


class _LingeringTransport:
    """The connection's transport, but ``close()`` lingers while the caller may still be sending."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedH11Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._protocol.lingering or self._transport.is_closing()

    def close(self) -> None:
        if self._protocol.lingering or self._transport.is_closing():
            return
        if self._protocol.caller_still_sending():
            self._protocol.linger()
        else:
            self._transport.close()


class GuardedH11Protocol(H11Protocol):
    header_timeout_s = 10.0
    read_timeout_s = 30.0
    max_connections = 4096
    linger_s = 5.0
    linger_bytes = 4 * 1024 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        size = self.config.h11_max_incomplete_event_size
        self.conn = StrictConnection(h11.SERVER, size if size is not None else 16 * 1024)
        self.lingering = False
        self._discarded = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._raw = transport
        super().connection_made(_LingeringTransport(transport, self))  # type: ignore[arg-type]
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = ""
        if len(self.connections) > self.max_connections:
            DROPPED["connections"] += 1
            transport.abort()
            return
        self._arm("headers", self.header_timeout_s)

    def data_received(self, data: bytes) -> None:
        if self.lingering:  # answered and closing: read what the caller still sends, and drop it
            self._discarded += len(data)
            if self._discarded > self.linger_bytes:
                self._end_linger()
            return
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

    def send_400_response(self, msg: str) -> None:
        DROPPED["framing"] += 1
        why = ascii(getattr(self.conn, "refusal", "") or "malformed request")[1:-1][:200]
        _log_limited("inbound request from %s refused with 400: %s", self._peer(), why)
        super().send_400_response("Invalid HTTP request received: ambiguous or malformed framing.")

    def caller_still_sending(self) -> bool:
        """Whether closing now could reset the connection under an answer not yet read: the
        request's body has not all arrived, or more bytes wait unread."""
        state = self.conn.their_state
        return state in (h11.SEND_BODY, h11.ERROR) or bool(self.conn.trailing_data[0])

    def linger(self) -> None:
        """Shut the write side after the answer, then read and drop until the caller closes,
        ``linger_s`` passes or ``linger_bytes`` have come."""
        self._disarm()
        self.lingering = True
        if self._raw.can_write_eof():
            self._raw.write_eof()
        self._raw.resume_reading()
        self._deadline = self.loop.call_later(self.linger_s, self._end_linger)

    def _end_linger(self) -> None:
        self._deadline = None
        if self._discarded > self.linger_bytes:
            DROPPED["linger"] += 1
            self._raw.abort()
        else:
            self._raw.close()

    def eof_received(self) -> None:
        if self.lingering:  # the caller has read the answer and closed its side: done
            self._end_linger()

    def _peer(self) -> str:
        return self.client[0] if self.client else "?"

    def on_response_complete(self) -> None:
        if self.lingering:
            return  # closing: the linger timer stays, nothing more is read from this caller
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
            ' authenticated: set [server] allow = ["CIDR", ...] (the payment platform\'s and the'
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
