"""A tenant's own state, worked out from the shared state's URL: the pure URL arithmetic both
the loader (which derives and compares tenants' states when it builds them) and
``dvcsync.tenants`` (which re-exports it) need. No database is touched here.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl

TENANT_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
SCHEMA_PREFIX = "dvcsync_"
_SEARCH_PATH = re.compile(r"(?:^|\s)-c\s*search_path\s*=\s*(\S+)")


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
        f"state.url: a {backend} state cannot be split by tenant: give each tenant [tenants.{code}.state] url"
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
