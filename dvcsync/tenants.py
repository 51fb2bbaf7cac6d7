"""Tenants: one deployment serving several provinces, each a ``[tenants.<code>]`` table of
overrides (any section) deep-merged over the shared top-level settings.

Each tenant's state is its own, so one tenant's backlog, dead letters or runs never mix with
another's: unless a tenant names its own ``[tenants.<code>.state] url``, a SQLite state becomes
``<stem>-<code>.db`` beside the shared one, and a PostgreSQL state the schema ``dvcsync_<code>``
of the same database (``options=-csearch_path=…`` in the URL; ``ensure_schema`` creates it).
The merged settings are built and checked when the configuration is loaded
(``Settings.load``); this module is how the rest of dvcsync reaches them.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl

from dvcsync.config import ConfigError, Settings

TENANT_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
SCHEMA_PREFIX = "dvcsync_"
_SEARCH_PATH = re.compile(r"(?:^|\s)-c\s*search_path\s*=\s*(\S+)")


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


# ---------------------------------------------------------------- the state partition


def tenant_state_url(url: str, code: str) -> str:
    """The tenant's own state beside the shared one: ``…/dvcsync-state.db`` →
    ``…/dvcsync-state-<code>.db``; a PostgreSQL database → its schema ``dvcsync_<code>``.
    ValueError for a state that cannot be split (in memory, another database)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:" or database.startswith("file:"):
            raise ValueError(
                f"state.url {url!r} cannot be split by tenant: give each tenant [tenants.{code}.state] url"
            )
        path = Path(database)
        return parsed.set(database=str(path.with_name(f"{path.stem}-{code}{path.suffix}"))).render_as_string(
            hide_password=False
        )
    if backend == "postgresql":
        schema = tenant_schema(code)
        options = parsed.query.get("options", "")
        if isinstance(options, tuple):
            options = " ".join(options)
        kept = _SEARCH_PATH.sub(" ", options).strip()
        options = f"{kept} -csearch_path={schema}".strip()
        return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)
    raise ValueError(
        f"state.url: a {backend} state cannot be split by tenant: give each tenant"
        f" [tenants.{code}.state] url"
    )


def tenant_schema(code: str) -> str:
    """The PostgreSQL schema of a tenant's state (``-`` is not welcome in an unquoted name)."""
    return SCHEMA_PREFIX + code.replace("-", "_")


def state_schema(url: str) -> str | None:
    """The first schema of the URL's ``options=-csearch_path=…``; None when it names none
    (or is not PostgreSQL)."""
    query = url.partition("?")[2]
    if not url.startswith("postgres"):
        return None
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "options":
            match = _SEARCH_PATH.search(value)
            if match:
                first = match.group(1).split(",")[0].strip().strip('"')
                return first or None
    return None


def state_identity(url: str) -> tuple[str, ...]:
    """What makes two state URLs one state: the SQLite file, or the PostgreSQL server,
    database and schema (credentials and other options aside)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            return ("sqlite", str(Path(database).resolve()))
        return ("sqlite", url)
    return (
        backend,
        (parsed.host or "").lower(),
        str(parsed.port or ""),
        parsed.database or "",
        state_schema(url) or "public",
    )


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
