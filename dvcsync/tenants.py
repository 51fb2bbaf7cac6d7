"""Tenants: one deployment serving several provinces, each a ``[tenants.<code>]`` table of
overrides (any section) deep-merged over the shared top-level settings.

Each tenant's state is its own, so one tenant's backlog, dead letters or runs never mix with
another's: unless a tenant names its own ``[tenants.<code>.state] url``, a SQLite state becomes
``<stem>-<code>.db`` beside the shared one, and a PostgreSQL state the schema ``dvcsync_<code>``
of the same database (``options=-csearch_path=…`` in the URL; ``ensure_schema`` creates it).
The merged settings are built and checked when the configuration is loaded
(``Settings.load``); this module is how the rest of dvcsync reaches them. The URL arithmetic of
the partition lives in ``dvcsync.config._tenancy`` (the loader needs it, and the configuration
imports nothing above it) and is re-exported here.
"""

from __future__ import annotations

from pathlib import Path

from dvcsync.config import ConfigError, Settings
from dvcsync.config._tenancy import (
    SCHEMA_PREFIX,
    TENANT_CODE,
    state_identity,
    state_schema,
    tenant_schema,
    tenant_state_url,
)

__all__ = [
    "SCHEMA_PREFIX",
    "TENANT_CODE",
    "each_tenant",
    "ensure_schema",
    "for_tenant",
    "state_identity",
    "state_schema",
    "tenant_codes",
    "tenant_folder",
    "tenant_schema",
    "tenant_state_url",
]


def tenant_codes(settings: Settings) -> list[str]:
    """The configured tenants' codes, sorted; [] when there are none (or for one tenant's settings)."""
    return sorted(settings.tenants)


def for_tenant(settings: Settings, code: str) -> Settings:
    """One tenant's merged settings (``.tenant == code``); a ConfigError naming the known codes
    when there is no such tenant."""
    if settings.tenant == code:
        return settings
    built = settings._tenant_settings
    if code in built:
        return built[code]
    if not built:
        raise ConfigError(f"no tenant {code!r}: no [tenants.<code>] tables are configured")
    raise ConfigError(f"no tenant {code!r}: the configured tenants are {', '.join(sorted(built))}")


def each_tenant(settings: Settings) -> dict[str, Settings]:
    """Every tenant's settings by code, in code order; ``{"": settings}`` without tenants, and
    ``{code: settings}`` for settings that are already one tenant's."""
    if settings.tenant:
        return {settings.tenant: settings}
    if not settings._tenant_settings:
        return {"": settings}
    return dict(sorted(settings._tenant_settings.items()))


def tenant_folder(settings: Settings, root: Path) -> Path:
    """A tenant's own folder under a files root (documents, receipts, reports): ``root/<code>``,
    whether ``root`` is shared or the tenant's own, so two tenants never write one folder (the same
    dossier code in two provinces once shared ``documents/<code>/``); ``root`` without tenants."""
    return root / settings.tenant if settings.tenant else root


def ensure_schema(url: str) -> None:
    """Create the schema a PostgreSQL state URL's search_path names, if it is missing, before
    the state's tables are made in it (migrations create tables, not schemas). Nothing for
    SQLite or a URL naming no schema. Two processes racing here both succeed."""
    schema = state_schema(url)
    if schema is None:
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool, hide_parameters=True, isolation_level="AUTOCOMMIT")
    exists = text("SELECT 1 FROM pg_namespace WHERE nspname = :n")
    try:
        with engine.connect() as conn:
            if conn.execute(exists, {"n": schema}).first() is not None:
                return  # made by an administrator, or by an earlier run: no CREATE right needed
            quoted = '"' + schema.replace('"', '""') + '"'
            try:
                conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
            except DBAPIError:
                # IF NOT EXISTS is not atomic: a concurrent creator wins, which is as good
                if conn.execute(exists, {"n": schema}).first() is None:
                    raise
    finally:
        engine.dispose()
