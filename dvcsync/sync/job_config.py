"""What each job reads of the configuration, and nothing else (issue 22: configuration in two
halves). A job or helper takes one of these small frozen objects, naming the sections and value
objects (``dvcsync.config.Limits``, ``Retry``) it uses; ``from_settings`` picks them out of the
whole ``Settings``, which only the composition root (``cycles``, ``runtime``, the CLI, the
scheduler) holds. A job never keeps ``Settings``: what it may read is then visible in one place,
and a test builds it from the few values it cares about.

Paths that depend on the tenant or the state's location (documents, receipts) are resolved here,
once, so a job needs neither ``[state]`` nor the tenant's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from dvcsync.config import (
    CitizenCheckSettings,
    Limits,
    PaymentSettings,
    PortalSettings,
    PushSettings,
    Retry,
    Settings,
)
from dvcsync.sync.attachments import documents_dir


def receipts_dir(settings: Settings) -> Path:
    """``payment.receipts_dir``, or ``receipts/`` beside the state database (or the working folder);
    a tenant's in its own ``<code>/`` under it."""
    from dvcsync.tenants import tenant_folder  # a tenant's receipts are its own: receipts/<code>/

    if settings.payment.receipts_dir is not None:
        return tenant_folder(settings, Path(settings.payment.receipts_dir))
    url = make_url(settings.state.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return tenant_folder(settings, Path(url.database).resolve().parent / "receipts")
    return tenant_folder(settings, Path("receipts"))


@dataclass(frozen=True)
class CitizenCheckConfig:
    """``CitizenCheck``: its own section, and the portal's (the lookups go through a client of
    their own, within the portal's concurrency and rate)."""

    citizen_check: CitizenCheckSettings
    portal: PortalSettings

    @classmethod
    def from_settings(cls, settings: Settings) -> CitizenCheckConfig:
        return cls(citizen_check=settings.citizen_check, portal=settings.portal)


@dataclass(frozen=True)
class PushConfig:
    """``PushJob`` (and ``AdoptJob``, which builds one): ``[push]``, the portal's limits and
    retry, how many history entries go in one call, the source's time zone, and the citizen
    check's config when ``[citizen_check]`` is on (None when off)."""

    push: PushSettings
    limits: Limits
    retry: Retry
    history_batch_size: int
    timezone: str
    citizen_check: CitizenCheckConfig | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> PushConfig:
        return cls(
            push=settings.push,
            limits=settings.portal.limits,
            retry=settings.portal.retry,
            history_batch_size=settings.portal.history_batch_size,
            timezone=settings.province.timezone,
            citizen_check=(
                CitizenCheckConfig.from_settings(settings) if settings.citizen_check.enabled else None
            ),
        )


@dataclass(frozen=True)
class PullConfig:
    """``PullJob``: the portal's limits and where received attachments are stored."""

    limits: Limits
    documents_dir: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> PullConfig:
        return cls(limits=settings.portal.limits, documents_dir=documents_dir(settings))


@dataclass(frozen=True)
class PaymentConfig:
    """``PaymentJob``: ``[payment]``, where receipts go, and the longest reply it reads (the
    portal's ``max_reply_bytes``)."""

    payment: PaymentSettings
    receipts_dir: Path
    max_reply_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> PaymentConfig:
        return cls(
            payment=settings.payment,
            receipts_dir=receipts_dir(settings),
            max_reply_bytes=settings.portal.max_reply_bytes,
        )


__all__ = [
    "CitizenCheckConfig",
    "PaymentConfig",
    "PullConfig",
    "PushConfig",
    "receipts_dir",
]
