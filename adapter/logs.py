"""Log lines that a caller cannot forge.

Inbound values (a payment reference, a dossier code, a URL path) reach log messages; a ``\\n`` in
one would start a line of the attacker's choosing, and bidi controls would hide text on a
terminal. The formatter escapes control and bidi characters in the message and its arguments
(tracebacks, which are ours, keep their newlines).
"""

from __future__ import annotations

import logging

from adapter.contract import escape_for_log

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class SafeFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        safe = logging.makeLogRecord(record.__dict__)
        safe.message = escape_for_log(record.message, limit=4000)
        return super().formatMessage(safe)


def configure_logging(level: int) -> None:
    """One stderr handler with the safe formatter, on the root logger."""
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
