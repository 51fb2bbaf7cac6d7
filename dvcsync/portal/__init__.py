"""The national portal's client: JSON (httpx) or SOAP (zeep builds and reads, httpx carries)."""

from typing import TYPE_CHECKING, Any

from ._http import ReplyTooLarge, ssl_context
from .client import NON_IDEMPOTENT, PortalClient, make_http_client
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


def __getattr__(name: str) -> Any:
    """``SoapCodec`` on first use: zeep and lxml (~25 MB) stay out of a REST-only process."""
    if name == "SoapCodec":
        from .soap import SoapCodec

        return SoapCodec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "NON_IDEMPOTENT",
    "AmbiguousError",
    "AuthError",
    "Backoff",
    "BusinessError",
    "PortalClient",
    "PortalError",
    "ProtocolError",
    "RateBudget",
    "ReplyTooLarge",
    "SessionCache",
    "SoapCodec",
    "TlsError",
    "TransientError",
    "UnreachableError",
    "make_http_client",
    "parse_retry_after",
    "ssl_context",
]
