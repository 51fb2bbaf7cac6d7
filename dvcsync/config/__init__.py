"""Configuration: one TOML file, every key overridable by ``DVCSYNC_…`` environment variables
(``__`` between levels, e.g. ``DVCSYNC_PORTAL__ADAPTER_URL``), secrets also from files.

Precedence, highest first: explicit overrides (command line) > environment > TOML file >
defaults; ``Settings.origin(key)`` says which one a value came from. Unknown keys, in the file or
as ``DVCSYNC_`` variables, are errors, so a typo never silently falls back to a default. Relative
paths in a file are relative to that file's folder, not to wherever the command was started.

``[tenants.<code>]`` tables (one per province a deployment serves) override any section for one
tenant; each tenant's merged settings are built and checked at load time, so a bad key in a
tenant table is reported like any other (``dvcsync.tenants`` is the way to them).

Two halves: ``_sections`` holds the section models (what a key may hold, no I/O) and
``_loader`` the reading (TOML, environment, tenants, relative paths, provenance); ``_settings``
joins them in ``Settings``; ``_values`` holds the small frozen objects a job or client can take
instead of the whole of it (each job's own config, built from these, is in
``dvcsync.sync.job_config``). The package imports nothing above it (``dvcsync.tenants`` imports
it, never the reverse). Import from here: the underscored modules may move.
"""

from ._errors import ConfigError
from ._loader import CONFIG_ENV, DEFAULT_CONFIG, _config_path
from ._sections import (
    DEPRECATED_COLUMNS,
    DURATION,
    REPORT_FORMATS,
    SCHEDULE_EVERY,
    AccessSettings,
    CitizenCheckSettings,
    LogSettings,
    Network,
    PaymentSettings,
    PortalSettings,
    ProvinceSettings,
    PushSettings,
    ReconcileSettings,
    ScheduleSettings,
    ServerSettings,
    StateSettings,
    TlsClientSettings,
    Transport,
    duration_s,
    portal_check_mode,
    report_formats,
)
from ._settings import (
    TEST_PASSWORD,
    TEST_PAYMENT_SECRET,
    Settings,
    is_loopback_host,
    published_secret_problems,
)
from ._values import Limits, Retry, Timeouts

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "DEPRECATED_COLUMNS",
    "DURATION",
    "REPORT_FORMATS",
    "SCHEDULE_EVERY",
    "TEST_PASSWORD",
    "TEST_PAYMENT_SECRET",
    "AccessSettings",
    "CitizenCheckSettings",
    "ConfigError",
    "Limits",
    "LogSettings",
    "Network",
    "PaymentSettings",
    "PortalSettings",
    "ProvinceSettings",
    "PushSettings",
    "ReconcileSettings",
    "Retry",
    "ScheduleSettings",
    "ServerSettings",
    "Settings",
    "StateSettings",
    "Timeouts",
    "TlsClientSettings",
    "Transport",
    "_config_path",
    "duration_s",
    "is_loopback_host",
    "portal_check_mode",
    "published_secret_problems",
    "report_formats",
]
