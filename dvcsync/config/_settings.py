"""``Settings``: the whole configuration, its sections validated, each key's origin kept, and
each tenant's merged settings built when it is loaded (``Settings.load``, the way in).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ._errors import ConfigError
from ._loader import (
    Layers,
    read_layers,
    shared_state_problems,
    tenant_layer,
    tenant_tables,
    validation_message,
)
from ._sections import (
    CitizenCheckSettings,
    LogSettings,
    PaymentSettings,
    PortalSettings,
    ProvinceSettings,
    PushSettings,
    ReconcileSettings,
    ScheduleSettings,
    ServerSettings,
    StateSettings,
)


class Settings(BaseSettings):
    """The whole configuration. ``Settings.load()`` is the way in."""

    model_config = SettingsConfigDict(
        env_prefix="DVCSYNC_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    province: ProvinceSettings = Field(default_factory=ProvinceSettings)
    portal: PortalSettings = Field(default_factory=PortalSettings)
    payment: PaymentSettings = Field(default_factory=PaymentSettings)
    push: PushSettings = Field(default_factory=PushSettings)
    citizen_check: CitizenCheckSettings = Field(default_factory=CitizenCheckSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    tenants: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="[tenants.<code>] tables: per-province overrides of any section (see dvcsync.tenants)",
    )

    _origins: dict[str, str] = PrivateAttr(default_factory=dict)
    _tenant: str = PrivateAttr(default="")
    _tenant_settings: dict[str, Settings] = PrivateAttr(default_factory=dict)

    @property
    def tenant(self) -> str:
        """The tenant these settings are for ("" for the top level, or when there are no tenants)."""
        return self._tenant

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load() merges file, environment and overrides itself, in that order of precedence
        return (init_settings,)

    @classmethod
    def load(cls, path: str | Path | None = None, *, use_env: bool = True, **overrides: Any) -> Settings:
        """Read ``path`` (or ``$DVCSYNC_CONFIG``, or ``./dvcsync.toml`` if present), then the
        environment, then ``overrides`` (nested dicts by section), each winning over the one before.
        ``use_env=False`` reads neither ``DVCSYNC_`` variables nor ``$DVCSYNC_CONFIG`` (the demo,
        which must never write into what a production environment points at)."""
        layers = read_layers(cls, path, use_env, overrides)
        try:
            settings = cls(**layers.merged)
        except ValidationError as exc:
            raise ConfigError(validation_message(exc, layers.origins, layers.where)) from None
        settings._origins = layers.origins
        if layers.tables:
            settings.tenants = tenant_tables(layers.tables, layers.where)
            settings._tenant_settings = _build_tenants(cls, settings, layers)
        return settings

    def origin(self, key: str) -> str:
        """Where the value of ``key`` (``"portal.timeout"``) came from: ``command line``,
        ``environment DVCSYNC_…``, ``file …`` or ``default``."""
        return self._origins.get(key, "default")


def _build_tenants(cls: type[Settings], shared: Settings, layers: Layers) -> dict[str, Settings]:
    """Each tenant's settings: its table deep-merged over the shared (top-level) values, its
    state partitioned unless it names its own; two tenants on one state are refused."""
    built: dict[str, Settings] = {}
    errors: list[str] = []
    for code, table in shared.tenants.items():
        try:
            values, origins = tenant_layer(layers, code, table, shared.state.url)
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        try:
            settings = cls(**values)
        except ValidationError as exc:
            errors.append(validation_message(exc, layers.origins, layers.where, tenant=code))
            continue
        settings._origins = origins
        settings._tenant = code
        built[code] = settings
    if errors:
        raise ConfigError("\n".join(errors))
    states = {code: (s.state.url, s.origin("state.url")) for code, s in built.items()}
    errors = shared_state_problems(states, layers.where)
    if errors:
        raise ConfigError("\n".join(errors))
    return built


# The mock portal's published test credentials (the defaults above): anyone can sign with them.
TEST_PASSWORD = "matkhau-thu-nghiem"
TEST_PAYMENT_SECRET = "khoa-bi-mat-thu-nghiem"


def _is_loopback_url(url: str) -> bool:
    from urllib.parse import urlsplit

    return is_loopback_host(urlsplit(url).hostname or "")


def published_secret_problems(settings: Settings) -> list[str]:
    """Why this configuration must not talk to a real portal: the mock's built-in password or
    payment secret while some portal or payment URL leaves the machine. Empty when safe."""
    portal_urls = [settings.portal.adapter_url, settings.portal.soap_url]
    payment_urls = [settings.payment.init_url, settings.payment.query_url, settings.payment.bill_url]
    problems = []
    if settings.portal.password.get_secret_value() == TEST_PASSWORD:
        remote = [u for u in portal_urls if not _is_loopback_url(u)]
        if remote:
            problems.append(
                f"portal.password is the mock portal's published test password but {remote[0]} is not"
                " loopback: set [portal] password_file (or DVCSYNC_PORTAL__PASSWORD_FILE)"
            )
    if settings.payment.secret.get_secret_value() == TEST_PAYMENT_SECRET:
        remote = [u for u in payment_urls if not _is_loopback_url(u)]
        if remote or not is_loopback_host(settings.server.host):
            where = remote[0] if remote else f"the inbound server listens on {settings.server.host}"
            problems.append(
                "payment.secret is the mock's published test secret (anyone can sign a callback with it)"
                f" but {where} is not loopback: set [payment] secret_file (or DVCSYNC_PAYMENT__SECRET_FILE)"
            )
    return problems


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (``[::1]`` brackets allowed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
