"""Log lines that a caller cannot forge, as text or JSON, at the level ``[log]`` asks.

Inbound values (a payment reference, a dossier code, a URL path) reach log messages; a ``\\n`` in
one would start a line of the attacker's choosing, and bidi controls would hide text on a
terminal. The text formatter escapes control and bidi characters in the message and its arguments
(tracebacks, which are ours, keep their newlines); the JSON formatter writes one object per line,
whose string escaping already covers control characters.

Libraries (httpx logs every request at INFO, uvicorn every access) stay at WARNING whatever the
level: `dvcsync run` at INFO is then one line per cycle, not hundreds per minute.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dvcsync.contract import escape_for_log

if TYPE_CHECKING:
    from dvcsync.config import LogSettings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LIBRARIES = (
    "httpx",
    "httpcore",
    "apscheduler",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "asyncio",
    "zeep",
)


class SafeFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        safe = logging.makeLogRecord(record.__dict__)
        safe.message = escape_for_log(record.message, limit=4000)
        return super().formatMessage(safe)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    and ``exc_info`` (the traceback text) when there is one; what a log shipper parses."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage()[:4000],
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: int, fmt: str = "text") -> None:
    """One stderr handler on the root logger, text (safe) or JSON; libraries at WARNING."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else SafeFormatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def apply_log_settings(settings: LogSettings, verbose: bool, *, service: bool = False) -> None:
    """Apply ``[log]``. A one-off command logs at WARNING unless ``[log] level`` was set (in the
    file or ``DVCSYNC_LOG__LEVEL``): its table or JSON on stdout is the report, and INFO lines
    would only repeat it. The service (``service=True``, `dvcsync run`) logs at ``[log] level``,
    INFO by default: one line per cycle. ``verbose`` (``-v``) puts dvcsync's own loggers at DEBUG;
    libraries stay at WARNING either way."""
    chosen = settings.level if service or "level" in settings.model_fields_set else "WARNING"
    level = logging.getLevelNamesMapping()[chosen]
    configure_logging(logging.DEBUG if verbose else level, settings.format)
