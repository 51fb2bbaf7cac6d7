"""Settings of one mock portal run: credentials, rules, faults, payment behaviour.

One pydantic model so that the CLI, ``create_app`` and the test harness agree on names and
defaults; every flag of ``python -m mock_portal`` maps to one field here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
