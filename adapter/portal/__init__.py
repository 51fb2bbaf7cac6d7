"""Clients of the national portal (REST with httpx; SOAP with zeep comes with the inbound work)."""

from .errors import AmbiguousError, AuthError, BusinessError, PortalError, ProtocolError, TransientError
from .rate import RateBudget
from .rest import NON_IDEMPOTENT, RestPortalClient, make_http_client
from .retry import Backoff, parse_retry_after
from .session import SessionCache

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
    "TransientError",
    "make_http_client",
    "parse_retry_after",
]
