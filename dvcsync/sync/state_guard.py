"""A state belongs to one province and one portal, and only some commands may create one.

A mistyped ``[state] url`` used to create a new, empty state (folders included) and so met every
dossier for the first time; a state pointed at another province's source or another portal
would be read as the truth about this one. So:

- a state that does not exist is created only by ``db upgrade``, ``init``, ``adopt`` and
  ``demo``; every other command refuses, naming the path and the command that creates it, and
  creates nothing on the way (no file, no folder);
- a state records the identity it serves (source, portal address, ``madonvi``, ``dstcode``,
  tenant) when it is created or first used; a command whose configuration names another is
  refused naming both (``dvcsync db rebind`` records the new one after a deliberate move).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from dvcsync.config import Settings
from dvcsync.errors import TerminalError
from dvcsync.state import StateStore

CREATORS = "`dvcsync db upgrade` (a new province: `dvcsync init`; one already on the portal: `dvcsync adopt`)"
IDENTITY_KEYS = ("source", "portal", "madonvi", "dstcode", "tenant")


class StateMissing(TerminalError):
    """The configured state does not exist and this command does not create one."""


class IdentityMismatch(TerminalError):
    """The state serves another province or portal than the configuration names."""


def _shown(url: str) -> str:
    """A database URL as compared and shown: password hidden, a SQLite path made absolute."""
    try:
        parsed = make_url(url)
    except Exception:  # an unparsable URL is compared as written
        return url
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        parsed = parsed.set(database=str(Path(parsed.database).resolve()))
    return parsed.render_as_string(hide_password=True)


def identity_of(settings: Settings) -> dict[str, str]:
    return {
        "source": _shown(settings.province.source_url),
        "portal": settings.portal.adapter_url.rstrip("/"),
        "madonvi": settings.portal.madonvi,
        "dstcode": settings.portal.dstcode,
        "tenant": settings.tenant,
    }


def state_created(url: str) -> bool:
    """Whether the state exists: its SQLite file, or its tables on PostgreSQL (in its tenant's
    schema). A database that cannot be reached counts as existing: opening it says why."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        return (
            not database or database == ":memory:" or database.startswith("file:") or Path(database).is_file()
        )
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.pool import NullPool

    from dvcsync.tenants import state_schema

    engine = create_engine(url, poolclass=NullPool, hide_parameters=True)
    try:
        with engine.connect() as conn:
            return bool(inspect(conn).has_table("outbox", schema=state_schema(url)))
    except Exception:
        return True
    finally:
        engine.dispose()


def require_state(settings: Settings, command: str) -> None:
    """Refuse (``StateMissing``) a command that would otherwise create the state."""
    if state_created(settings.state.url):
        return
    raise StateMissing(
        f"no state at {_shown(settings.state.url)}: `{command}` does not create one (a mistyped"
        f" [state] url?); to start a state there run {CREATORS}"
    )


def check_identity(store: StateStore, settings: Settings) -> dict[str, str]:
    """Record this configuration's identity on a state that has none yet (or lacks some keys);
    refuse (``IdentityMismatch``) one that serves another. Returns the recorded identity."""
    wanted = identity_of(settings)
    held = store.record_identity(wanted)
    differs = [k for k in IDENTITY_KEYS if k in held and held[k] != wanted[k]]
    if differs:
        lines = "\n".join(
            f"  {k}: the state serves {held[k]!r}; the configuration names {wanted[k]!r}" for k in differs
        )
        raise IdentityMismatch(
            f"the state {_shown(settings.state.url)} belongs to another province or portal:\n{lines}\n"
            "point [state] url at this province's state, or, after a deliberate move, record the new"
            " identity with `dvcsync db rebind`"
        )
    return held


__all__ = [
    "CREATORS",
    "IDENTITY_KEYS",
    "IdentityMismatch",
    "StateMissing",
    "check_identity",
    "identity_of",
    "require_state",
    "state_created",
]
