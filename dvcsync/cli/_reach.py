"""What `config check` can reach: it opens the state and the province database the way a run
would, read only, and reports what it cannot open, one line each with the fix (a PostgreSQL state
that refused connections once passed the check and then failed every command with a traceback).

Nothing is created: a missing SQLite file is reported, never made, and no mode is changed.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from dvcsync.config import Settings

CONNECT_TIMEOUT_S = 5


def state_problems(settings: Settings) -> list[str]:
    """The state: a folder, unreadable, not a database, or a server that cannot be reached. One
    not made yet is no problem before a first run (``db upgrade``/``init``/``adopt`` make it, and
    every other command refuses naming them)."""
    problem = _open_problem(settings.state.url)
    if problem and problem != "missing":
        return [f"[state] url: {problem} (fix [state] url or the database it names)"]
    return []


def source_problems(settings: Settings) -> list[str]:
    """The province database: missing (opening a SQLite one would create it empty), unreadable
    or unreachable."""
    url = settings.province.source_url
    problem = _open_problem(url)
    if problem == "missing":
        return [f"[province] source_url: {_shown(url)} does not exist"]
    if problem:
        return [f"[province] source_url: {problem}"]
    return []


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return url.split(":", 1)[0] + ":…"
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)


def _open_problem(url: str) -> str | None:
    """None when the database opens; ``"missing"`` for a SQLite file that does not exist; else
    one line saying why it does not open."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception as exc:
        return f"not a database URL: {exc}"
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return _sqlite_problem(Path(database))
    return _server_problem(url)


def _sqlite_problem(path: Path) -> str | None:
    if path.is_dir():
        return f"{path} is a folder, not a database file"
    if not path.exists():
        return "missing"
    if not os.access(path, os.R_OK):
        return f"{path}: permission denied (the user running dvcsync cannot read it)"
    try:
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"  # read only: nothing is created
        conn = sqlite3.connect(uri, uri=True, timeout=CONNECT_TIMEOUT_S)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"{path}: cannot be opened: {exc}"
    return None


def _server_problem(url: str) -> str | None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    try:
        engine = create_engine(
            url,
            poolclass=NullPool,
            hide_parameters=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S} if url.startswith("postgres") else {},
        )
    except Exception as exc:  # an unknown driver, a bad option
        return f"{_shown(url)}: cannot be used: {exc}"
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        message = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return f"{_shown(url)}: cannot be reached: {message[0] if message else type(exc).__name__}"
    finally:
        engine.dispose()
    return None


__all__ = ["source_problems", "state_problems"]
