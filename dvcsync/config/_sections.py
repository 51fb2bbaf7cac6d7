"""The configuration's section models: what each ``[section]`` may hold and which values are
valid. No file, environment or tenant is read here (that is ``_loader``); a secret kept in a
file is read by ``_secrets`` when its section is validated.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dvcsync._resources import default_mappings
from dvcsync.province.instants import zone

from ._secrets import read_secret as _read_secret
from ._values import Limits, Retry, Timeouts

Transport = Literal["rest", "soap"]


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

    @property
    def limits(self) -> Limits:
        return Limits(concurrency=self.concurrency, rate_per_s=self.rate_limit, batch_size=self.batch_size)

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts(request_s=self.timeout, session_ttl_s=self.session_ttl_s)

    @property
    def retry(self) -> Retry:
        return Retry(max_attempts=self.max_attempts, give_up_after_s=self.give_up_after)


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
            logging.getLogger("dvcsync.config").warning(
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
