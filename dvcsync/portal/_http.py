"""The HTTP plumbing shared by the portal and the payment client: TLS from ``[portal]``/``[payment]``
settings, the naming of TLS failures, and reading a reply body without trusting its size."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from dvcsync.config import ConfigError, PaymentSettings, PortalSettings, TlsClientSettings
from dvcsync.errors import DvcsyncError

# Alerts and errors that say the TLS layer refused us (or we it) before any request was processed.
_REFUSAL_MARKERS = ("CERTIFICATE", "HANDSHAKE", "UNKNOWN_CA", "NO_SHARED_CIPHER", "PROTOCOL_VERSION")


class ReplyTooLarge(DvcsyncError):
    """A reply body longer than the configured cap: the rest is left unread."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"reply larger than {limit} bytes")
        self.limit = limit


def _section(settings: TlsClientSettings) -> str:
    if isinstance(settings, PortalSettings):
        return "portal"
    if isinstance(settings, PaymentSettings):
        return "payment"
    return type(settings).__name__


def _readable(path: Path, section: str, key: str) -> str:
    """The path as a string, or a ``ConfigError`` naming the setting: an ssl traceback names neither."""
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise ConfigError(f"[{section}] {key}: cannot read {path}: {exc.strerror or exc}") from None
    return str(path)


def _why(exc: ssl.SSLError) -> str:
    """OpenSSL's short reason (``CERTIFICATE_VERIFY_FAILED``) when it gave one, else the message."""
    return str(getattr(exc, "reason", None) or exc)


def ssl_context(settings: TlsClientSettings, *, section: str | None = None) -> ssl.SSLContext:
    """Verification on unless ``verify = false``; ``ca_bundle`` replaces the default store (certifi,
    or ``SSL_CERT_FILE``/``SSL_CERT_DIR`` as httpx reads them); a client certificate for mutual TLS."""
    where = section or _section(settings)
    if not settings.verify:
        context = httpx.create_ssl_context(verify=False)
    elif settings.ca_bundle is not None:
        cafile = _readable(settings.ca_bundle, where, "ca_bundle")
        try:
            context = ssl.create_default_context(cafile=cafile)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"[{where}] ca_bundle: {settings.ca_bundle} holds no usable CA certificate ({_why(exc)})"
            ) from None
    else:
        context = httpx.create_ssl_context(verify=True)
    if settings.client_cert is not None:
        cert = _readable(settings.client_cert, where, "client_cert")
        key = _readable(settings.client_key, where, "client_key") if settings.client_key else None
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"[{where}] client_cert/client_key: {settings.client_cert} and "
                f"{settings.client_key or '(key in the same file)'} are not a certificate and its key "
                f"({_why(exc)})"
            ) from None
    return context


def make_http_client(
    settings: TlsClientSettings,
    *,
    concurrency: int | None = None,
    timeout: float | None = None,
    section: str | None = None,
) -> httpx.AsyncClient:
    """One pooled client per endpoint group, with that group's TLS. ``concurrency`` and ``timeout``
    default to the portal's own settings (a ``PortalSettings``) or 4 connections and 30 s."""
    portal = settings if isinstance(settings, PortalSettings) else None
    conns = concurrency or (portal.concurrency if portal else 4)
    limits = httpx.Limits(max_connections=conns * 2, max_keepalive_connections=conns)
    seconds = timeout or (portal.timeout if portal else 30.0)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(seconds), limits=limits, verify=ssl_context(settings, section=section)
    )


def tls_problem(exc: BaseException) -> str | None:
    """``"TLS: ..."`` when ``exc`` (an httpx error) comes from the TLS layer refusing the exchange,
    else None. A certificate problem is a configuration problem: it must not read like a lost reply."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS: certificate verify failed: {cause.verify_message or cause.reason}"
        if isinstance(cause, ssl.SSLError):
            reason = _why(cause)
            if isinstance(exc, httpx.ConnectError) or any(m in reason.upper() for m in _REFUSAL_MARKERS):
                return f"TLS: handshake refused: {reason.lower().replace('_', ' ')}"
            return None
        cause = cause.__cause__ or cause.__context__
    return None


def describe(exc: BaseException) -> str:
    """``ReadError (connection reset by peer)``: the httpx class, and the OS's word for what happened
    (httpx's own message is often empty). A server refusing our certificate after a TLS 1.3
    handshake may just reset the connection: the reason is the operator's only clue."""
    root: BaseException = exc
    seen = {id(exc)}
    while (nxt := root.__cause__ or root.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        root = nxt
    reason = root.strerror if isinstance(root, OSError) and root.strerror else str(root)
    reason = reason.strip().lower()
    return f"{type(exc).__name__} ({reason})" if reason and root is not exc else type(exc).__name__


async def read_capped(response: httpx.Response, limit: int) -> bytearray:
    """The (decoded) body, or ``ReplyTooLarge`` as soon as it passes ``limit`` bytes: by the announced
    ``Content-Length`` before reading anything, else by counting. One growing buffer, never joined
    or copied: memory stays near ``limit`` whatever the server sends."""
    announced = response.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limit:
        raise ReplyTooLarge(limit)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        if len(body) + len(chunk) > limit:
            raise ReplyTooLarge(limit)
        body += chunk
    return body
