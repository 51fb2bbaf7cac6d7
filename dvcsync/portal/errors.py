"""What can go wrong talking to the portal, classified by what the caller may safely do next."""

from __future__ import annotations

from dvcsync.errors import DvcsyncError, ExitCode, TerminalError
from dvcsync.errors import TransientError as RootTransientError


class PortalError(DvcsyncError):
    """Base of every portal failure. ``service`` names the call. Exit code 1 unless a subclass
    says otherwise (set on the subclasses only: a value here would shadow ``TerminalError``'s)."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.detail = message


class TransientError(PortalError, RootTransientError):
    """The request was not applied (refused before processing, or never sent): retry it as is."""

    exit_code = ExitCode.PROBLEMS  # ended a command after the job's own retries: a problem left

    def __init__(self, service: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(service, message)
        self.retry_after = retry_after


class UnreachableError(TransientError):
    """The portal could not be reached at all: connection refused, DNS, a connect or login
    timeout, its gateway answering 502-504 to the login, TLS refused. Nothing was processed, and
    retrying each record would only wait longer: the cycle stops, uses no record's attempt, and
    the next cycle tries again (``CircuitBreaker`` spaces those tries in the service)."""

    exit_code = ExitCode.UNREACHABLE


class TlsError(UnreachableError):
    """The TLS layer refused the exchange (certificate not trusted, client certificate missing or
    refused): nothing reached the portal. Retried like a refused connection (a certificate being
    rotated heals); the message starts with ``TLS:`` so an operator sees a configuration matter."""


class AmbiguousError(PortalError):
    """The request left, no usable answer came back: it may or may not have been applied.

    Safe to re-send only for idempotent calls; for append-only writes (``CapNhatTienDoHoSoMC``)
    the caller reads the portal's state back first and sends only what is missing.
    """


class AuthError(PortalError, TerminalError):
    """Login refused, or the session was refused after a fresh login."""


class BusinessError(PortalError):
    """The portal understood the call and refused it (non-zero ``error_code``): not retried."""

    def __init__(self, service: str, error_code: int, message: str) -> None:
        super().__init__(service, f"error_code {error_code}: {message}")
        self.error_code = error_code
        self.message = message


class ProtocolError(PortalError):
    """The portal's answer is not what the contract says (HTTP 4xx, a body that is not a reply)."""
