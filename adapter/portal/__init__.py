"""The national portal's client: JSON (httpx) or SOAP (zeep builds and reads, httpx carries)."""

from .errors import AmbiguousError, AuthError, BusinessError, PortalError, ProtocolError, TransientError
from .rate import RateBudget
from .rest import NON_IDEMPOTENT, RestPortalClient, make_http_client
from .retry import Backoff, parse_retry_after
from .session import SessionCache
from .soap import SoapCodec

__all__ = [
    "NON_IDEMPOTENT",
    "AmbiguousError",
    "AuthError",
    "Backoff",
    "BusinessError",
    "PortalError",
    "ProtocolError",
    "RateBudget",
    "RestPortalClient",
    "SessionCache",
    "SoapCodec",
    "TransientError",
    "make_http_client",
    "parse_retry_after",
]
