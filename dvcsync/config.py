"""Configuration: one TOML file, every key overridable by ``DVCSYNC_…`` environment variables
(``__`` between levels, e.g. ``DVCSYNC_PORTAL__ADAPTER_URL``), secrets also from files.

Precedence, highest first: explicit overrides (command line) > environment > TOML file >
defaults; ``Settings.origin(key)`` says which one a value came from. Unknown keys, in the file or
as ``DVCSYNC_`` variables, are errors, so a typo never silently falls back to a default. Relative
paths in a file are relative to that file's folder, not to wherever the command was started.

``[tenants.<code>]`` tables (one per province a deployment serves) override any section for one
tenant; each tenant's merged settings are built and checked at load time, so a bad key in a
tenant table is reported like any other (``dvcsync.tenants`` is the way to them).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from dvcsync._resources import default_mappings
from dvcsync.province.instants import zone

CONFIG_ENV = "DVCSYNC_CONFIG"
DEFAULT_CONFIG = Path("dvcsync.toml")
Transport = Literal["rest", "soap"]


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file and key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProvinceSettings(_Section):
    source_url: str = "sqlite:///onestop.db"
    sink_url: str = ""
    mappings: Path = Field(default_factory=default_mappings)
    documents_dir: Path | None = Field(
        default=None,
        description="where attachments received from the portal are stored; default: documents/ beside"
        " the state file",
    )
    timezone: str = Field(
        default="Asia/Ho_Chi_Minh",
        description="the source's time zone: naive timestamps (DATETIME, timestamp, text without an offset)"
        " are wall-clock times there",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)  # an unknown zone fails at load, naming the key
        return value

    @property
    def effective_sink_url(self) -> str:
        return self.sink_url or self.source_url


def _read_secret(path: Path | None, what: str) -> SecretStr | None:
    if path is None:
        return None
    try:
        return SecretStr(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise ValueError(f"cannot read {what} from {path}: {exc.strerror}") from None


class TlsClientSettings(_Section):
    """TLS towards a national endpoint: verification is on unless ``verify = false`` (tests only);
    ``ca_bundle`` replaces the system store (a provincial LGSP's own CA); a client certificate
    and key give mutual TLS where the integration platform asks for it."""

    verify: bool = True
    ca_bundle: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> TlsClientSettings:
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key is set but client_cert is not")
        return self


class PortalSettings(TlsClientSettings):
    adapter_url: str = "http://127.0.0.1:8080/dvcqg"
    auth_endpoint: str = "/auth"
    integration_endpoint: str = "/integration"
    share_endpoint: str = "/share"
    soap_url: str = "http://127.0.0.1:8080/soap"
    transport: Transport = "rest"
    transport_by_service: dict[str, Transport] = Field(default_factory=dict)
    soap_empty_lists: Literal["nil", "omit"] = Field(
        default="nil",
        description="an empty list over SOAP: the element once with xsi:nil (a choice), or left out",
    )
    # The defaults are the mock portal's local test credentials, so a fresh checkout talks to it.
    username: str = "dvcsync"
    password: SecretStr = SecretStr("matkhau-thu-nghiem")
    password_file: Path | None = None
    dstcode: str = "H40"
    madonvi: str = "000.00.01.H40"
    batch_size: int = Field(default=50, ge=1, le=1000)
    history_batch_size: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="history entries per CapNhatTienDoHoSoMC call; real clients send at most 10 and the "
        "portal's own limit is not published",
    )
    concurrency: int = Field(default=4, ge=1, le=64)
    rate_limit: float = Field(default=20.0, gt=0)
    timeout: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(
        default=8, ge=1, description="portal refusals of one record before it is a dead letter"
    )
    give_up_after: float = Field(
        default=3 * 24 * 3600,
        gt=0,
        description="seconds a record may keep failing (refusals, ambiguous answers) before a dead letter",
    )
    session_ttl_s: float = Field(default=540.0, gt=0, description="re-login before the portal expires us")
    max_reply_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="a longer portal reply is a protocol error, not read"
    )

    @model_validator(mode="after")
    def _password_from_file(self) -> PortalSettings:
        secret = _read_secret(self.password_file, "portal.password")
        if secret is not None:
            self.password = secret
        return self

    def transport_for(self, service: str) -> Transport:
        return self.transport_by_service.get(service, self.transport)


class PaymentSettings(TlsClientSettings):
    init_url: str = "http://127.0.0.1:8080/payment/init"
    query_url: str = "http://127.0.0.1:8080/payment/query"
    bill_url: str = "http://127.0.0.1:8080/payment/bill"
    partner_code: str = "H40-QNINH"
    secret: SecretStr = SecretStr("khoa-bi-mat-thu-nghiem")
    secret_file: Path | None = None
    callback_message_type: str = "CONFIRM"
    poll_min_age_s: float = Field(default=30 * 60, ge=0)
    poll_max_age_s: float = Field(default=3 * 24 * 3600, gt=0)
    init_retry_after_s: float = Field(
        default=15 * 60, ge=0, description="a dossier whose last attempt failed is asked for again after this"
    )
    receipts_dir: Path | None = Field(
        default=None, description="where GET_BILL receipts go; default: receipts/ beside the state file"
    )

    @model_validator(mode="after")
    def _secret_from_file(self) -> PaymentSettings:
        secret = _read_secret(self.secret_file, "payment.secret")
        if secret is not None:
            self.secret = secret
        return self


class PushSettings(_Section):
    page_size: int = Field(
        default=500, ge=1, le=10_000, description="source rows read, mapped and committed at a time"
    )
    lookback_s: float = Field(
        default=300.0, ge=0, description="re-read rows changed this long before the cursor (late commits)"
    )
    parallel_enqueue: bool = Field(
        default=True,
        description="read and map a backlog over one page in a forked process while delivering (Linux)",
    )


class StateSettings(_Section):
    url: str = "sqlite:///dvcsync-state.db"
    lock_wait_s: float = Field(
        default=30.0, ge=0, description="how long a command waits for another holding the state, then exits 3"
    )
    keep_days: float = Field(
        default=30,
        gt=0,
        description="delivered payloads and settled inbox bodies older than this keep only codes, hashes"
        " and times",
    )
    claim_lease_s: float = Field(
        default=60.0,
        ge=1,
        description="replicas on PostgreSQL: how long a replica's claim on a dossier lasts unless renewed;"
        " a replica that dies has its dossiers taken over by the others after this",
    )


class CitizenCheckSettings(_Section):
    """``[citizen_check]``: before a push, the population database (``TraCuuThongTinCongDan``, SOAP)
    confirms a citizen owner's ID number, name and (when the source has one) birth date. Off by
    default: it sends personal data to another system, which a province must decide to do."""

    enabled: bool = Field(default=False, description="check citizen owners before their dossiers are pushed")
    ttl_s: float = Field(
        default=86400.0, ge=0, description="seconds a verdict is reused for the same ID, name and birth date"
    )
    timeout_s: float = Field(
        default=10.0, gt=0, description="seconds one lookup may take; past it the dossier goes unchecked"
    )
    concurrency: int = Field(
        default=4, ge=1, le=64, description="lookups in flight at most (never more than [portal] concurrency)"
    )
    birth_date_column: str = Field(
        default="",
        description="source column with the owner's birth date (ISO date); empty: the ID and name only"
        " (the sample one-stop schema has no birth date)",
    )


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_DURATION_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration_s(value: str) -> float:
    """``"90s"``, ``"30m"``, ``"24h"``, ``"2d"`` in seconds."""
    match = DURATION.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a duration like '30m', '24h' or '2d'")
    return float(match.group(1)) * _DURATION_S[match.group(2)]


REPORT_FORMATS = ("html", "xlsx", "csv", "json")


def report_formats(value: list[str]) -> list[str]:
    """The report formats asked for, each one known (shared by ``[reconcile] formats`` and the CLI)."""
    unknown = [f for f in value if f not in REPORT_FORMATS]
    if unknown:
        raise ValueError(
            f"unknown report format(s) {', '.join(unknown)}; choose from {', '.join(REPORT_FORMATS)}"
        )
    return value


def portal_check_mode(value: str) -> str:
    """``all``, ``none`` or ``sample:N`` (N > 0), shared by ``[reconcile] portal_check`` and the CLI."""
    text = value.strip()
    if text in ("all", "none") or re.fullmatch(r"sample:[1-9]\d*", text):
        return text
    raise ValueError(f"{value!r}: expected all, none or sample:N")


# [reconcile] settings that named the province's columns before province.yaml, and its key now
DEPRECATED_COLUMNS = {
    "received_column": "received",
    "agency_column": "agency",
    "procedure_column": "procedure",
    "owner_column": "owner",
    "origin_column": "portal_code",
}


class ReconcileSettings(_Section):
    stale_after: str = Field(
        default="24h", description="a province change not on the portal after this long is reported stale"
    )
    statement_url: str = Field(
        default="",
        description="the payment platform's daily statement (?date=YYYY-MM-DD); empty: 'statement'"
        " beside [payment] init_url",
    )
    keep_reports: int = Field(default=30, ge=1, description="dated reports kept in out_dir; older removed")
    out_dir: Path = Field(default=Path("reports"), description="where dated reports are written")
    formats: list[str] = Field(default_factory=lambda: list(REPORT_FORMATS))
    portal_check: str = Field(default="all", description="all | sample:N | none")
    period_days: int = Field(default=31, ge=1, description="the scheduled report covers this many days")
    html_max_rows: int = Field(
        default=20_000, ge=100, description="rows in the HTML table; the XLSX and CSV hold every row"
    )
    # Deprecated: the dossier columns reconcile reads are named in province.yaml (`dossiers`); a
    # configuration written before that file may still set them, and a value set here still wins.
    received_column: str | None = Field(
        default=None, description="deprecated: province.yaml dossiers.received"
    )
    agency_column: str | None = Field(default=None, description="deprecated: province.yaml dossiers.agency")
    procedure_column: str | None = Field(
        default=None, description="deprecated: province.yaml dossiers.procedure"
    )
    owner_column: str | None = Field(default=None, description="deprecated: province.yaml dossiers.owner")
    origin_column: str | None = Field(
        default=None, description="deprecated: province.yaml dossiers.portal_code"
    )

    @field_validator(*DEPRECATED_COLUMNS)
    @classmethod
    def _deprecated_column(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            logging.getLogger(__name__).warning(
                "[reconcile] %s is deprecated: name the column in province.yaml (dossiers.%s);"
                " the setting still wins over it",
                info.field_name,
                DEPRECATED_COLUMNS[str(info.field_name)],
            )
        return value

    @field_validator("stale_after")
    @classmethod
    def _duration(cls, value: str) -> str:
        duration_s(value)
        return value.strip()

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        return report_formats(value)

    @field_validator("portal_check")
    @classmethod
    def _portal_check(cls, value: str) -> str:
        return portal_check_mode(value)

    @property
    def stale_after_s(self) -> float:
        return duration_s(self.stale_after)

    def statement_url_for(self, payment_init_url: str) -> str:
        if self.statement_url:
            return self.statement_url
        base = payment_init_url.rstrip("/").rsplit("/", 1)[0]
        return f"{base}/statement"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(value: Any) -> Any:
    """``"10.0.0.0/8"`` or a bare address (``"10.1.2.3"`` = one host), strictly parsed."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return value
    out = []
    for item in value:
        try:
            out.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
    return out


class AccessSettings(_Section):
    """Who may call one group of inbound paths. Unset values fall back to ``[server]``'s."""

    allow: list[Network] | None = Field(default=None, description="CIDR networks allowed to call")
    token: SecretStr | None = Field(default=None, description="shared bearer credential")
    token_file: Path | None = None

    _allow = field_validator("allow", mode="before")(lambda cls, v: _networks(v))

    @model_validator(mode="after")
    def _token_from_file(self) -> AccessSettings:
        secret = _read_secret(self.token_file, "token")
        if secret is not None:
            self.token = secret
        if self.token is not None and len(self.token.get_secret_value()) < 16:
            raise ValueError("token: a shared credential must be at least 16 characters")
        return self


class ServerSettings(AccessSettings):
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    trusted_proxies: list[Network] = Field(
        default_factory=list,
        description="peers whose X-Forwarded-For / X-Real-IP / Forwarded headers are believed",
    )
    payment: AccessSettings = Field(default_factory=AccessSettings)
    portal: AccessSettings = Field(default_factory=AccessSettings)
    monitoring: AccessSettings = Field(default_factory=AccessSettings)
    # Limits: what one hostile caller can cost the process.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, description="larger bodies get 413")
    max_json_depth: int = Field(default=32, ge=4, le=1000)
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="a request whose headers have not all arrived by then is dropped"
    )
    read_timeout_s: float = Field(
        default=30.0, gt=0, description="a request not wholly received by then (headers and body) is dropped"
    )
    keepalive_timeout_s: float = Field(default=5.0, gt=0)
    max_requests_in_flight: int = Field(
        default=32, ge=1, description="requests handled at once; more get 503 at once"
    )
    max_in_flight_per_group: int | None = Field(
        default=None,
        ge=1,
        description="requests one tenant's path group (payment, portal, monitoring) may have in flight;"
        " more get 503 at once (unset: half of max_requests_in_flight)",
    )
    rate_per_group: float = Field(
        default=0.0,
        ge=0,
        description="requests per second one tenant's path group may start, bursts of twice that;"
        " more get 503 (0: no rate cap)",
    )
    max_connections: int = Field(
        default=4096, ge=16, description="open connections; beyond it new ones are closed at once"
    )
    # TLS of the inbound server itself; a client CA makes a client certificate mandatory.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None

    _trusted = field_validator("trusted_proxies", mode="before")(lambda cls, v: _networks(v))

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca needs tls_cert and tls_key (mutual TLS is TLS first)")
        return self

    def group(self, name: str) -> AccessSettings:
        """The effective access rules of one path group (its own values, else ``[server]``'s)."""
        own: AccessSettings = getattr(self, name)
        return AccessSettings.model_construct(
            allow=own.allow if own.allow is not None else self.allow,
            token=own.token if own.token is not None else self.token,
        )


SCHEDULE_EVERY = re.compile(r"^every\s+(\d+)\s*(s|m|h)$")


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class ScheduleSettings(_Section):
    push: str = "every 60s"
    pull: str = "every 60s"
    payments: str = "every 5m"
    catalogue: str = "every 24h"
    reconcile: str = "every 24h"
    prune: str = "every 24h"
    satisfaction: str = "0 2 1 * *"  # 02:00 on the 1st (local time): last month's figures

    @field_validator("push", "pull", "payments", "catalogue", "reconcile", "prune", "satisfaction")
    @classmethod
    def _schedule(cls, value: str) -> str:
        text = value.strip()
        every = SCHEDULE_EVERY.match(text)
        if every:
            if int(every.group(1)) == 0:
                raise ValueError(f"{value!r}: the interval must be at least 1")
            return text
        if len(text.split()) == 5:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(text)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a valid cron expression: {exc}") from None
            return text
        raise ValueError(f"{value!r} is neither 'every <n>s|m|h' nor a 5-field cron expression")


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
        file = _config_path(path, use_env)
        data: dict[str, Any] = {}
        where = str(file) if file else "configuration"
        if file is not None:
            try:
                data = tomllib.loads(file.read_text(encoding="utf-8"))
            except OSError as exc:
                raise ConfigError(f"{file}: cannot read configuration: {exc.strerror}") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{file}: invalid TOML: {exc}") from None
            _resolve_paths(cls, data, file.resolve().parent)
        env: dict[str, Any] = {}
        env_names: dict[str, str] = {}
        if use_env:
            declared = data.get("tenants")
            env, env_names = _environment(cls, set(declared) if isinstance(declared, dict) else set())
        origins: dict[str, str] = {}
        for key in _leaves(data):
            origins[key] = f"file {file}"
        for key in _leaves(env):
            origins[key] = f"environment {env_names.get(key, '')}".rstrip()
        for key in _leaves(overrides):
            origins[key] = "command line"
        merged = _merge(_merge(data, env), overrides)
        tables = merged.pop("tenants", None) or {}
        try:
            settings = cls(**merged)
        except ValidationError as exc:
            raise ConfigError(_validation_message(exc, origins, where)) from None
        settings._origins = origins
        if tables:
            settings.tenants = _tenant_tables(tables, where)
            settings._tenant_settings = _build_tenants(cls, settings, merged, origins, where)
        return settings

    def origin(self, key: str) -> str:
        """Where the value of ``key`` (``"portal.timeout"``) came from: ``command line``,
        ``environment DVCSYNC_…``, ``file …`` or ``default``."""
        return self._origins.get(key, "default")


def _validation_message(
    exc: ValidationError, origins: dict[str, str], where: str, tenant: str = ""
) -> str:
    """One line per error: the file (or variable) and the key, as the operator wrote them."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = [str(p) for p in error.get("loc", ())]
        key = ".".join(loc)
        msg = error.get("msg", "invalid").removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            msg = "unknown key"
        if tenant:
            source = origins.get(f"tenants.{tenant}.{key}", origins.get(key, where))
            section = ".".join(["tenants", tenant, *loc[:-1]]) if len(loc) > 1 else f"tenants.{tenant}"
            shown = f"[{section}] {loc[-1] if len(loc) > 1 else key or '(table)'}"
        else:
            source = origins.get(key, where)
            shown = key
        source = source.removeprefix("file ") if source.startswith("file ") else source
        lines.append(f"{source}: {shown}: {msg}")
    return "\n".join(lines)


def _tenant_tables(tables: Any, where: str) -> dict[str, dict[str, Any]]:
    """The raw ``[tenants.<code>]`` tables, their codes checked (the sections are checked by
    building each tenant's settings)."""
    from dvcsync.tenants import TENANT_CODE

    if not isinstance(tables, dict):
        raise ConfigError(f"{where}: tenants: expected [tenants.<code>] tables")
    problems = []
    for code, table in tables.items():
        if not TENANT_CODE.match(str(code)):
            problems.append(
                f"{where}: [tenants.{code}]: a tenant code is 1-32 of a-z, 0-9, '-' and '_',"
                " starting with a letter or digit"
            )
        elif not isinstance(table, dict):
            problems.append(f"{where}: tenants.{code}: expected a table of sections")
        elif "tenants" in table:
            problems.append(f"{where}: [tenants.{code}] tenants: tenants do not nest")
    if problems:
        raise ConfigError("\n".join(problems))
    return {str(code): table for code, table in sorted(tables.items())}


def _build_tenants(
    cls: type[Settings],
    shared: Settings,
    merged: dict[str, Any],
    origins: dict[str, str],
    where: str,
) -> dict[str, Settings]:
    """Each tenant's settings: its table deep-merged over the shared (top-level) values, its
    state partitioned unless it names its own; two tenants on one state are refused."""
    from dvcsync.tenants import state_identity, tenant_state_url

    built: dict[str, Settings] = {}
    errors: list[str] = []
    for code, table in shared.tenants.items():
        own = _merge({}, table)
        derived = "url" not in (own.get("state") or {})
        if derived:
            try:
                url = tenant_state_url(shared.state.url, code)
            except ValueError as exc:
                errors.append(f"{origins.get('state.url', where).removeprefix('file ')}: {exc}")
                continue
            own = _merge(own, {"state": {"url": url}})
        try:
            settings = cls(**_merge(merged, own))
        except ValidationError as exc:
            errors.append(_validation_message(exc, origins, where, tenant=code))
            continue
        prefix = f"tenants.{code}."
        tenant_origins = dict(origins)
        for key, origin in origins.items():
            if key.startswith(prefix):
                tenant_origins[key[len(prefix) :]] = f"{origin} [tenants.{code}]"
        if derived:
            tenant_origins["state.url"] = f"derived from state.url for tenant {code}"
        settings._origins = {k: v for k, v in tenant_origins.items() if not k.startswith("tenants.")}
        settings._tenant = code
        built[code] = settings
    if errors:
        raise ConfigError("\n".join(errors))
    seen: dict[tuple[str, ...], str] = {}
    for code, settings in built.items():
        identity = state_identity(settings.state.url)
        if identity in seen:
            errors.append(
                f"{where}: tenants {seen[identity]} and {code} share one state"
                f" ({settings.origin('state.url')}): each tenant needs its own [tenants.<code>.state] url"
            )
        seen.setdefault(identity, code)
    if errors:
        raise ConfigError("\n".join(errors))
    return built


# Variables with the prefix that are not settings: the config file's path and test switches.
_NOT_SETTINGS = frozenset(
    {
        "DVCSYNC_CONFIG",
        "DVCSYNC_TENANT",
        "DVCSYNC_DEBUG",  # the CLI's: print the traceback of a failure
        "DVCSYNC_REQUIRE_POSTGRES",
        "DVCSYNC_REQUIRE_CHROMIUM",
        "DVCSYNC_REQUIRE_MARIADB",
        "DVCSYNC_REQUIRE_FAKETIME",
        "DVCSYNC_HYPOTHESIS",
    }
)
_PREFIX = "DVCSYNC_"


def _environment(
    cls: type[BaseSettings], declared: set[str] | frozenset[str] = frozenset()
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``DVCSYNC_`` variables as nested values (parsed as pydantic-settings does: JSON for
    lists and tables), and which variable gave each key; a variable naming no key is an error.

    ``DVCSYNC_TENANTS__<CODE>__…`` sets a value of a tenant ``declared`` by a ``[tenants.<code>]``
    table of the file, ``<CODE>`` being its code in capitals with each ``-`` written ``_`` (shells
    cannot spell ``-``); a variable naming any other tenant is an error, never a new tenant built
    from defaults (``TINH_B`` for ``tinh-b`` once made a fourth tenant ``tinh_b``)."""
    from pydantic_settings import EnvSettingsSource

    unknown = []
    strays: list[str] = []
    names: dict[str, str] = {}
    spellings: dict[str, set[str]] = {}  # configured code -> the spellings its variables use
    for name in os.environ:
        upper = name.upper()
        # DVCSYNC_REQUIRE_*: the test harness's (what may not skip in CI), never a setting
        if not upper.startswith(_PREFIX) or upper in _NOT_SETTINGS or upper.startswith("DVCSYNC_REQUIRE_"):
            continue
        parts = upper[len(_PREFIX) :].lower().split("__")
        if parts[0] == "tenants" and len(parts) > 2:  # DVCSYNC_TENANTS__<CODE>__<SECTION>__<KEY>
            key = _known_key(cls, parts[2:]) if parts[2] != "tenants" else None
            if key is not None:
                code = _declared_tenant(parts[1], declared)
                if code is None:
                    strays.append(name)
                    continue
                spellings.setdefault(code, set()).add(upper.split("__")[1])
                key = f"tenants.{code}.{key}"
        elif parts == ["tenants"]:
            key = None  # whole tenants as JSON would declare tenants outside the file
        else:
            key = _known_key(cls, parts)
        if key is None:
            unknown.append(name)
        else:
            names[key] = name
    problems = [f"environment: {n}: no such setting (sections and keys are joined by '__')" for n in unknown]
    for name in strays:
        code = name.upper()[len(_PREFIX) :].split("__")[1]
        problems.append(
            f"environment: {name}: no tenant {code!r} is declared in the file"
            + (f" (declared: {', '.join(sorted(declared))};" if declared else " (no [tenants.<code>] tables;")
            + " a tenant's variables spell its code in capitals with '_' for '-',"
            " e.g. DVCSYNC_TENANTS__TINH_B__… for tinh-b)"
        )
    if problems:
        raise ConfigError("\n".join(problems))
    source = EnvSettingsSource(
        cls, case_sensitive=False, env_prefix=_PREFIX, env_nested_delimiter="__", env_parse_none_str=None
    )
    try:
        values = source()
        values.pop("tenants", None)  # pydantic-settings' own reading keeps the variables' spelling
        if spellings:
            # each tenant's variables parsed as the top level's are (lists and tables as JSON)
            tables: dict[str, Any] = {}
            for code, spelt in sorted(spellings.items()):
                for prefix in sorted(spelt):
                    own = EnvSettingsSource(
                        cls,
                        case_sensitive=False,
                        env_prefix=f"{_PREFIX}TENANTS__{prefix}__",
                        env_nested_delimiter="__",
                        env_parse_none_str=None,
                    )()
                    own.pop("tenants", None)
                    tables[code] = _merge(tables.get(code) or {}, own)
            values["tenants"] = tables
    except Exception as exc:  # a value pydantic-settings cannot parse (bad JSON for a list)
        raise ConfigError(f"environment: {exc}") from None
    return values, names


def _declared_tenant(spelt: str, declared: set[str] | frozenset[str]) -> str | None:
    """The declared tenant a variable's ``<CODE>`` (lower-cased) names: the code itself, else the
    one code that reads the same with ``-`` as ``_``; None for none, or for two such codes."""
    if spelt in declared:
        return spelt
    matches = [code for code in declared if code.replace("-", "_") == spelt.replace("-", "_")]
    return matches[0] if len(matches) == 1 else None


def _known_key(model: type[BaseModel], parts: list[str]) -> str | None:
    """``["portal", "timeout"]`` → ``"portal.timeout"`` if the model has it; a table (dict) field
    takes any sub-key."""
    current: Any = model
    path = []
    for index, part in enumerate(parts):
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        path.append(part)
        annotation = field.annotation
        nested = _model_in(annotation)
        if nested is not None:
            current = nested
            continue
        if _is_table(annotation):
            return ".".join(path)  # a table takes any sub-key
        return ".".join(path) if index == len(parts) - 1 else None
    return ".".join(path) if path else None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _is_table(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is dict or annotation is dict


def _is_path(annotation: Any) -> bool:
    return annotation is Path or Path in (getattr(annotation, "__args__", ()) or ())


_URL_KEYS = {("province", "source_url"), ("province", "sink_url"), ("state", "url")}


def _resolve_paths(
    model: type[BaseModel], data: dict[str, Any], base: Path, prefix: tuple[str, ...] = ()
) -> None:
    """Relative paths and relative SQLite files in a config file, made absolute against ``base``."""
    for name, value in list(data.items()):
        if not prefix and name == "tenants" and isinstance(value, dict):
            for table in value.values():  # each tenant's table holds sections as the top level does
                if isinstance(table, dict):
                    _resolve_paths(model, table, base)
            continue
        field = model.model_fields.get(name)
        if field is None:
            continue  # reported as an unknown key by validation
        nested = _model_in(field.annotation)
        if nested is not None and isinstance(value, dict):
            _resolve_paths(nested, value, base, (*prefix, name))
        elif (
            _is_path(field.annotation) and isinstance(value, str) and value and not Path(value).is_absolute()
        ):
            data[name] = str(base / value)
        elif (*prefix, name) in _URL_KEYS and isinstance(value, str):
            data[name] = _absolute_sqlite(value, base)


def _absolute_sqlite(url: str, base: Path) -> str:
    for scheme in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(scheme):
            rest = url[len(scheme) :]
            if (
                rest
                and not rest.startswith("/")
                and not rest.startswith(":memory:")
                and not rest.startswith("file:")
            ):
                return f"{scheme}{base / rest}"
    return url


def _leaves(data: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and not name.endswith("transport_by_service"):
            out.extend(_leaves(value, name + "."))
        else:
            out.append(name)
    return out


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _config_path(path: str | Path | None, use_env: bool = True) -> Path | None:
    if path is not None:
        return Path(path)
    env = os.environ.get(CONFIG_ENV) if use_env else None
    if env:
        return Path(env)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


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
