"""The portal client: every service over JSON or SOAP (as configured per service), one shared
``httpx.AsyncClient``, sessions, a rate budget, retries that know which failures are safe to
repeat, and typed replies."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import ValidationError

from dvcsync import metrics
from dvcsync.config import PortalSettings
from dvcsync.contract import REPLY_MODELS, SHARE_SERVICES, AuthReply, PortalReply

from ._http import ReplyTooLarge, describe, make_http_client, read_capped, tls_problem
from .errors import (
    AmbiguousError,
    AuthError,
    BusinessError,
    PortalError,
    ProtocolError,
    TlsError,
    TransientError,
    UnreachableError,
)
from .rate import RateBudget
from .retry import Backoff, parse_retry_after
from .session import SessionCache

if TYPE_CHECKING:
    from .soap import SoapCodec

log = logging.getLogger(__name__)

# Writes the portal applies by appending: re-sending after a lost reply would store them twice.
NON_IDEMPOTENT = frozenset({"CapNhatTienDoHoSoMC", "DongBoTrangThaiHoSo", "DongBoDanhGia"})
AUTH_ERROR_CODES = frozenset({401})
# Refusals that mean "not processed": safe to repeat whatever the call.
NOT_APPLIED_STATUSES = frozenset({429, 503})
UNREACHABLE_TRIES = 2  # a blip is retried once; a portal that is down ends the cycle in seconds
# A gateway's answer for a portal behind it that does not answer (only at login: mid-cycle a
# 502 may come after the write was applied).
GATEWAY_DOWN = frozenset({502, 503, 504})

Sleep = Callable[[float], Awaitable[None]]


class PortalClient:
    """``await client.call("TraCuuHoSo", {"mahoso": ...})`` → the service's reply model.

    Each service goes over JSON or SOAP as ``[portal] transport`` / ``transport_by_service`` say;
    the session always comes from the JSON login (the SOAP face has no login of its own).

    Business refusals come back as replies (``reply.ok`` is False; batch replies carry per-item
    codes); only transport and protocol failures raise.
    """

    def __init__(
        self,
        settings: PortalSettings,
        http: httpx.AsyncClient,
        *,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        rate: RateBudget | None = None,
        sessions: SessionCache | None = None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self.rate = rate or RateBudget(settings.rate_limit, burst=max(1.0, float(settings.concurrency)))
        # a shared cache (dvcsync.portal.shared) logs in through whichever client finds it empty
        self.sessions = sessions or SessionCache(self._login, settings.session_ttl_s)
        self.stats: Counter[str] = Counter()
        self._soap: SoapCodec | None = None
        base = settings.adapter_url.rstrip("/")
        self._urls = {
            "auth": base + settings.auth_endpoint,
            "integration": base + settings.integration_endpoint,
            "share": base + settings.share_endpoint,
        }
        self._headers = {"Content-Type": "application/json", "Charset": "utf-8", "dstcode": settings.dstcode}

    # ------------------------------------------------------------------ session

    async def _login(self) -> str:
        try:
            session = await self._login_once()
        except PortalError as exc:
            metrics.portal_request("auth", outcome_of(exc))
            raise
        metrics.portal_request("auth", "ok")
        return session

    async def _login_once(self) -> str:
        body = {
            "username": self.settings.username,
            "password": self.settings.password.get_secret_value(),
        }
        self.stats["login"] += 1
        started = time.perf_counter()
        try:
            async with self.http.stream(
                "POST", self._urls["auth"], content=_dumps(body), headers=self._headers
            ) as response:
                status, headers = response.status_code, response.headers
                content = await read_capped(response, self.settings.max_reply_bytes)
        except httpx.HTTPError as exc:
            tls = tls_problem(exc)
            if tls:
                raise TlsError("auth", tls) from None
            raise UnreachableError("auth", f"login failed: {describe(exc)}") from None
        except ReplyTooLarge as exc:
            raise ProtocolError("auth", str(exc)) from None
        finally:
            metrics.PORTAL_LATENCY.labels("auth").observe(time.perf_counter() - started)
        if status in GATEWAY_DOWN:
            raise UnreachableError("auth", f"login answered HTTP {status} (the portal is not answering)")
        if status in NOT_APPLIED_STATUSES or status >= 500:
            raise TransientError(
                "auth",
                f"login answered HTTP {status}",
                retry_after=parse_retry_after(headers.get("Retry-After")),
            )
        if status != 200:
            raise AuthError("auth", f"login answered HTTP {status}")
        try:
            reply = AuthReply.model_validate(json.loads(content))
        except (ValueError, ValidationError):
            raise TransientError("auth", "login answer is not an auth reply (garbled?)") from None
        if reply.error_code != 0 or not reply.session:
            raise AuthError("auth", f"login refused: error_code {reply.error_code}: {reply.message}")
        return reply.session

    # ------------------------------------------------------------------ calls

    async def call(
        self,
        service: str,
        fields: dict[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
        max_attempts: int | None = None,
        raw_fields: dict[str, str] | None = None,
        typed: bool = True,
    ) -> PortalReply:
        """Send one service call, retrying what is safe to retry.

        Raises ``AmbiguousError`` at once for a non-idempotent call whose answer was lost, so the
        caller can read back before re-sending; ``TransientError`` when retries ran out.
        ``raw_fields`` are already-serialised JSON values (e.g. a batch joined from stored payloads).
        ``typed=False`` leaves ``result`` items as plain dicts, for callers that check each item
        themselves (one bad item must not make the whole reply unreadable).
        """
        safe_to_repeat = service not in NON_IDEMPOTENT if idempotent is None else idempotent
        attempts = max_attempts or self.settings.max_attempts
        endpoint = "share" if service in SHARE_SERVICES else "integration"
        reply_model = REPLY_MODELS.get(service, PortalReply) if typed else PortalReply
        relogged = False
        attempt = 0
        while True:
            attempt += 1
            session = ""
            try:
                session = await self.sessions.get(self._login)
                reply = await self._exchange(
                    endpoint,
                    service,
                    {
                        "session": session,
                        "madonvi": self.settings.madonvi,
                        "service": service,
                        **(fields or {}),
                    },
                    raw_fields,
                    reply_model,
                )
                if reply.error_code in AUTH_ERROR_CODES:
                    self.sessions.invalidate(session)
                    if relogged:
                        raise AuthError(service, f"session refused after a fresh login: {reply.message}")
                    relogged, attempt = True, attempt - 1  # an expired session is not a failed attempt
                    self.stats["relogin"] += 1
                    self._retrying(service, "session", None, 0.0)
                    continue
                self.stats[f"ok:{service}"] += 1
                return reply
            except UnreachableError as exc:
                self.stats[f"unreachable:{service}"] += 1
                if attempt >= min(attempts, UNREACHABLE_TRIES):
                    raise  # the caller stops its cycle: waiting per record would only take longer
                await self._sleep(self._retrying(service, "unreachable", exc, self.backoff.delay(attempt)))
            except AmbiguousError as exc:
                self.stats[f"ambiguous:{service}"] += 1
                if not safe_to_repeat or attempt >= attempts:
                    raise
                await self._sleep(self._retrying(service, "ambiguous", exc, self.backoff.delay(attempt)))
            except TransientError as exc:
                self.stats[f"transient:{service}"] += 1
                if attempt >= attempts:
                    raise
                delay = self.backoff.delay(attempt, exc.retry_after)
                await self._sleep(self._retrying(service, "transient", exc, delay))
            except _HttpAuthError as exc:
                self.sessions.invalidate(session)
                if relogged:
                    raise AuthError(service, "HTTP 401 after a fresh login") from None
                relogged, attempt = True, attempt - 1
                self.stats["relogin"] += 1
                self._retrying(service, "session", exc, 0.0)

    @staticmethod
    def _retrying(service: str, cause: str, exc: PortalError | None, delay: float) -> float:
        """Count a retry and say so in one line (the cause's short detail, never a body); a
        session renewed is routine (sessions expire), so it is INFO, every other cause WARNING."""
        metrics.PORTAL_RETRIES.labels(cause).inc()
        detail = f" ({exc.detail})" if exc is not None else ""
        level = logging.INFO if cause == "session" else logging.WARNING
        log.log(level, "portal %s: %s%s; retrying in %.1f s", service, cause, detail, delay)
        return delay

    async def _exchange(
        self,
        endpoint: str,
        service: str,
        body: dict[str, Any],
        raw_fields: dict[str, str] | None,
        reply_model: type[PortalReply],
    ) -> PortalReply:
        """One request and its typed reply, counted by outcome."""
        try:
            reply = _parse_reply(service, await self._post(endpoint, service, body, raw_fields), reply_model)
        except PortalError as exc:
            metrics.portal_request(service, outcome_of(exc))
            raise
        auth = reply.error_code in AUTH_ERROR_CODES
        metrics.portal_request(service, "auth" if auth else "ok" if reply.ok else "refused")
        return reply

    async def _post(
        self, endpoint: str, service: str, body: dict[str, Any], raw_fields: dict[str, str] | None = None
    ) -> Any:
        await self.rate.acquire()
        self.stats["requests"] += 1
        started = time.perf_counter()
        try:
            return await self._send(endpoint, service, body, raw_fields)
        finally:
            metrics.PORTAL_LATENCY.labels(service).observe(time.perf_counter() - started)

    async def _send(
        self, endpoint: str, service: str, body: dict[str, Any], raw_fields: dict[str, str] | None
    ) -> Any:
        soap = self.settings.transport_for(service) == "soap"
        if soap:
            url, (content, extra) = (
                self.settings.soap_url,
                self._soap_codec().encode(
                    service, {**body, **{k: json.loads(v) for k, v in (raw_fields or {}).items()}}
                ),
            )
            headers = {**self._headers, **extra}
        else:
            url, content, headers = self._urls[endpoint], _dumps(body, raw_fields), self._headers
        try:
            # Streamed: a reply past ``max_reply_bytes`` is refused, not held in memory.
            async with self.http.stream("POST", url, content=content, headers=headers) as response:
                status, reply_headers = response.status_code, response.headers
                reply_body = await read_capped(response, self.settings.max_reply_bytes)
        except ReplyTooLarge as exc:
            raise ProtocolError(service, str(exc)) from None
        except httpx.HTTPError as exc:
            failure = _transport_failure(service, exc)
            if failure is None:
                raise
            raise failure from None
        if status in NOT_APPLIED_STATUSES:
            raise TransientError(
                service, f"HTTP {status}", retry_after=parse_retry_after(reply_headers.get("Retry-After"))
            )
        if status == 401:
            raise _HttpAuthError(service, "HTTP 401")
        if soap and status in (200, 500) and "xml" in reply_headers.get("content-type", ""):
            # a SOAP fault comes with HTTP 500
            return self._soap_codec().decode(service, status, reply_headers, bytes(reply_body))
        if status >= 500:
            raise AmbiguousError(service, f"HTTP {status}")
        if status != 200:
            raise ProtocolError(service, f"HTTP {status}: {reply_body[:200].decode('utf-8', 'replace')}")
        if soap:
            raise AmbiguousError(service, "SOAP answer is not XML")
        try:
            return json.loads(reply_body)
        except ValueError:
            raise AmbiguousError(service, "answer is not JSON") from None

    def _soap_codec(self) -> SoapCodec:
        """Built on first use: a REST-only deployment never parses the WSDL."""
        if self._soap is None:
            from .soap import SoapCodec

            self._soap = SoapCodec(self.settings.soap_empty_lists)
        return self._soap

    async def aclose(self) -> None:
        await self.http.aclose()


class _HttpAuthError(PortalError):
    pass


def _transport_failure(service: str, exc: httpx.HTTPError) -> PortalError | None:
    """What an HTTP-level failure means for the request: refused by TLS, never sent, or sent with
    no answer (``None``: none of those, the error goes up as it is)."""
    tls = tls_problem(exc)
    if tls:  # the TLS layer refused us: nothing was processed, and it is no lost reply
        return TlsError(service, tls)
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return UnreachableError(service, f"not sent: {describe(exc)}")
    if isinstance(exc, httpx.PoolTimeout):
        return TransientError(service, f"not sent: {describe(exc)}")
    if isinstance(
        exc,
        (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.DecodingError),
    ):
        return AmbiguousError(service, f"sent, no answer: {describe(exc)}")
    return None


def outcome_of(exc: PortalError) -> str:
    """The ``outcome`` label of a failed request (subclasses before their bases)."""
    if isinstance(exc, UnreachableError):
        return "unreachable"
    if isinstance(exc, TransientError):
        return "transient"
    if isinstance(exc, AmbiguousError):
        return "ambiguous"
    if isinstance(exc, AuthError | _HttpAuthError):
        return "auth"
    if isinstance(exc, BusinessError):
        return "refused"
    return "protocol"


__all__ = ["NON_IDEMPOTENT", "PortalClient", "make_http_client"]


def _dumps(body: dict[str, Any], raw_fields: dict[str, str] | None = None) -> bytes:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if raw_fields:
        extra = ",".join(f"{json.dumps(name)}:{value}" for name, value in raw_fields.items())
        text = f"{text[:-1]},{extra}}}" if len(text) > 2 else f"{{{extra}}}"
    return text.encode("utf-8")


def _parse_reply(service: str, data: Any, model: type[PortalReply]) -> PortalReply:
    """The typed reply, or ``ProtocolError`` naming the field: a wrongly typed reply is the portal's
    fault, and a ``ValidationError`` escaping here would end the whole cycle."""
    if not isinstance(data, dict) or "error_code" not in data:
        raise AmbiguousError(service, "answer is not a portal reply")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc
    if data.get("error_code") not in (0, "0", "00"):
        # an error reply whose result does not fit the success shape is still an error reply
        try:
            return PortalReply.model_validate({k: data[k] for k in ("error_code", "message") if k in data})
        except ValidationError as exc:
            error = exc
    first = error.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "(reply)"
    raise ProtocolError(service, f"reply does not match the contract at {where}: {first.get('msg')}")
