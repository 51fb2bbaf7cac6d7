"""Settings of one mock portal run: credentials, rules, faults, payment behaviour.

One pydantic model so that the CLI, ``create_app`` and the test harness agree on names and
defaults; every flag of ``python -m mock_portal`` maps to one field here.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .faults import FaultSpec

SuccessCode = Literal[0, "0", "00"]


class Credentials(BaseModel):
    """What the province is issued. The defaults are local test values, printed at start-up."""

    model_config = ConfigDict(extra="forbid")

    username: str = "dvcsync"
    password: str = Field(default="matkhau-thu-nghiem", repr=False)
    dstcode: str = "H40"
    madonvi: str = "000.00.01.H40"
    partner_code: str = "H40-QNINH"
    payment_secret: str = Field(default="khoa-bi-mat-thu-nghiem", repr=False)


class MockConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8080
    state: str = ":memory:"
    """SQLite file kept across restarts; ``:memory:`` for a throwaway run."""
    public_url: str | None = None
    """Base URL clients reach the mock at, when it differs from what their requests say (a proxy
    rewriting ``Host``): the WSDL's ``soap:address`` and ``UrlThanhToan`` start with it."""
    seed_dossiers: str | None = None
    """JSON file of dossiers submitted on the portal (a body of ``POST /_admin/portal-dossiers``),
    loaded at start-up; those the state already holds are left as they are."""
    faults: FaultSpec = Field(default_factory=FaultSpec)
    callback_url: str | None = None
    """Full URL of the province's payment-result endpoint (``.../dpnhankqthanhtoanhs``)."""
    province_url: str | None = None
    """Full URL where portal-submitted promotion notifications are POSTed (``.../inbound/dvcqg/hoso``)."""
    callback_token: str | None = None
    """``Authorization: Bearer …`` sent with every payment callback (``[server.payment] token``)."""
    province_token: str | None = None
    """``Authorization: Bearer …`` sent with every pushed dossier (``[server.portal] token``)."""
    credentials: Credentials = Field(default_factory=Credentials)
    strict: bool = True
    """Strict: illegal status moves are refused; lenient: accepted and recorded as a warning."""
    success_code: SuccessCode = 0
    batch_limit: int = Field(default=100, ge=1)
    session_ttl_s: float = Field(default=600.0, ge=0)
    payment_reply_form: Literal["wrapped", "flat"] = "wrapped"
    callback_type: str = "CONFIRM"
    """``LoaiBanTin`` of the payment-result callback (the contract leaves it open)."""
    callback_retry_s: float = Field(default=1.0, gt=0)
    """First retry delay of an unacknowledged callback; doubles up to 30 s."""
    callback_max_attempts: int = Field(default=20, ge=1)
    callback_duplicate: bool = False
    """Deliver every acknowledged callback a second time (replay test)."""
    callback_delay_s: float = Field(default=0.0, ge=0)
    """Wait this long before the first delivery (late callback)."""
    push_retry_s: float = Field(default=1.0, gt=0)
    push_max_attempts: int = Field(default=5, ge=1)
    admin_token: str | None = Field(default=None, repr=False)
    """When set, ``/_admin`` asks every caller for ``Authorization: Bearer <admin_token>``;
    required to listen beyond loopback (the admin API pays bills and sends signed callbacks)."""

    @model_validator(mode="after")
    def _admin_beyond_loopback(self) -> MockConfig:
        from dvcsync.config import is_loopback_host

        if self.admin_token is not None and len(self.admin_token) < 16:
            raise ValueError("admin_token: at least 16 characters")
        if not is_loopback_host(self.host) and self.admin_token is None:
            raise ValueError(
                f"host {self.host!r} listens beyond this machine, and /_admin (which pays bills and sends"
                " validly signed callbacks) would answer anyone: set --admin-token (better"
                " MOCK_PORTAL_ADMIN_TOKEN), or listen on 127.0.0.1"
            )
        return self

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"public_url {value!r}: expected http(s)://host[:port][/prefix]")
        return value.rstrip("/")

    def base_url(self, request_base: str) -> str:
        """Where clients reach the mock: ``public_url`` if set, else the request's own base URL."""
        return self.public_url or request_base.rstrip("/")
