"""What the state raises, under dvcsync's one root of errors."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from dvcsync.errors import TerminalError


class SchemaOutOfDate(TerminalError):
    """The state database is at another revision than this dvcsync was written for: nothing may
    run on it until `dvcsync db upgrade` (or, when it is newer, a newer dvcsync)."""


def shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def newer_message(url: str, current: str) -> str:
    return (
        f"the state database {shown_url(url)} is at revision {current}, written by a newer dvcsync;"
        " upgrade dvcsync"
    )
