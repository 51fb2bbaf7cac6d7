"""One place that turns a failure a user can cause or meet into one line naming the thing and the
fix, with the README's exit code, instead of a traceback.

The exit code of an error dvcsync raises on purpose is its own (``DvcsyncError.exit_code``, see
``dvcsync.errors``); what is decided here is the line, and the codes of what others raise (a
driver's error, a file the system refused, Ctrl-C). An error of dvcsync's that no case names is
still reported as unexpected, with its traceback on request: reaching here, it was not foreseen.

``main()`` calls ``explain`` for whatever a command let escape. The traceback stays available:
``-v`` (``--verbose``) or ``DVCSYNC_DEBUG=1`` prints it after the line. What is printed comes
from data (paths, driver messages, a dossier code in an error) and is escaped like the logs are:
no control or bidi character reaches the terminal raw.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dvcsync.config import ConfigError
from dvcsync.contract import escape_for_log
from dvcsync.errors import DvcsyncError, ExitCode

DEBUG_ENV = "DVCSYNC_DEBUG"
_DB_FIX = (
    "check [state] url and [province] source_url (the server, the credentials, the file);"
    " `dvcsync config check` opens both and says which fails"
)


@dataclass(frozen=True)
class Explained:
    message: str
    code: int
    traceback_useful: bool = False  # an unforeseen error: the line says how to see the traceback


def terminal_text(text: object, limit: int = 2000) -> str:
    """Text from data made safe for a terminal, line by line (newlines kept, each line escaped
    as a log line is: control, bidi and other invisible characters as ``\\xNN``)."""
    return "\n".join(escape_for_log(line, limit=limit) for line in str(text).splitlines() or [""])


def debug_wanted(verbose: bool) -> bool:
    return verbose or os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def explain(exc: BaseException) -> Explained:
    """The line and exit code for ``exc``; an unforeseen exception gets exit 1 and a line saying
    how to see its traceback."""
    if isinstance(exc, DvcsyncError):
        ours = _ours(exc)
        if ours is not None:
            return ours
    portal = _portal(exc)
    if portal is not None:
        return portal
    database = _database(exc)
    if database is not None:
        return database
    if isinstance(exc, OSError) and exc.filename is not None:
        what = exc.strerror or type(exc).__name__
        return Explained(
            f"{exc.filename}: {what}: fix the file or folder (its owner, mode or path)"
            " or the setting naming it",
            ExitCode.INVALID,
        )
    if isinstance(exc, KeyboardInterrupt):
        return Explained("interrupted", ExitCode.INTERRUPTED)
    return Explained(
        f"unexpected error: {type(exc).__name__}: {_first_line(exc)}"
        f" (run with -v or {DEBUG_ENV}=1 for the traceback, and report it)",
        ExitCode.PROBLEMS,
        traceback_useful=True,
    )


def _ours(exc: DvcsyncError) -> Explained | None:
    """The line for an error of dvcsync's that a command may let escape on purpose (its code is
    its own); None for the portal's (``_portal``) and for any other."""
    from dvcsync.province.source import SourceUnavailable
    from dvcsync.state import SchemaOutOfDate
    from dvcsync.sync.state_guard import IdentityMismatch, StateMissing
    from dvcsync.sync.state_lock import StateBusy

    if isinstance(exc, ConfigError):
        return Explained(f"configuration error\n{exc}", exc.exit_code)
    if isinstance(exc, SchemaOutOfDate | StateMissing | IdentityMismatch | StateBusy):
        return Explained(str(exc), exc.exit_code)
    if isinstance(exc, SourceUnavailable):
        said = str(exc)
        return Explained(
            said if "source_url" in said else f"{said} (fix [province] source_url)", exc.exit_code
        )
    return None


def _portal(exc: BaseException) -> Explained | None:
    from zeep.exceptions import DTDForbidden, EntitiesForbidden

    from dvcsync.portal import AuthError, UnreachableError
    from dvcsync.portal.errors import PortalError

    if isinstance(exc, DTDForbidden | EntitiesForbidden):
        return Explained(
            "the portal's reply was refused: it declares a DTD or entities, which dvcsync never"
            " parses (check [portal] soap_url points at the national portal)",
            ExitCode.PROBLEMS,
        )
    if isinstance(exc, UnreachableError):
        return Explained(f"portal unreachable: {exc} (run again later)", exc.exit_code)
    if isinstance(exc, AuthError):
        return Explained(
            f"the portal refused the login: {exc} (check [portal] username and password)", exc.exit_code
        )
    if isinstance(exc, PortalError):
        return Explained(f"the portal's reply could not be used: {exc}", exc.exit_code)
    return None


def _database(exc: BaseException) -> Explained | None:
    from sqlalchemy.exc import (
        ArgumentError,
        DatabaseError,
        InterfaceError,
        NoSuchModuleError,
        OperationalError,
    )

    if isinstance(exc, NoSuchModuleError | ArgumentError):
        return Explained(f"a database URL cannot be used: {exc} ({_DB_FIX})", ExitCode.INVALID)
    # refused, no such file, no right to it, a file that is no database (the exact class: its
    # other subclasses, an integrity or SQL error, are dvcsync's own bugs)
    if isinstance(exc, OperationalError | InterfaceError) or type(exc) is DatabaseError:
        return Explained(f"a database cannot be opened: {_first_line(exc)} ({_DB_FIX})", ExitCode.INVALID)
    return None


def cell_text(value: object, limit: int = 2000) -> str:
    """``terminal_text`` for where rich reads markup (table cells and titles): ``[red]`` in a
    dossier code is shown, not obeyed."""
    from rich.markup import escape

    return escape(terminal_text(value, limit))


__all__ = ["DEBUG_ENV", "Explained", "cell_text", "debug_wanted", "explain", "terminal_text"]
