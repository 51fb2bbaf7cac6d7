from __future__ import annotations

import logging

from adapter.logs import SafeFormatter


def _format(msg: str, *args: object, exc: bool = False) -> str:
    record = logging.LogRecord("adapter.x", logging.WARNING, __file__, 1, msg, args, None)
    if exc:
        try:
            raise ValueError("ours")
        except ValueError:
            import sys

            record.exc_info = sys.exc_info()
    return SafeFormatter("%(levelname)s %(message)s").format(record)


def test_a_newline_in_an_argument_cannot_start_a_forged_line() -> None:
    line = _format("payment callback refused for %s: %s", "REF\n2026-11-29 INFO adapter: paid", "x")
    assert "\n" not in line and "\\x0a" in line


def test_bidi_and_nul_are_escaped() -> None:
    line = _format("code %s", "AB\u202eCD\x00")
    assert "\u202e" not in line and "\x00" not in line


def test_our_own_tracebacks_keep_their_lines() -> None:
    text = _format("failed %s", "x", exc=True)
    assert "Traceback" in text and "\n" in text and "ValueError: ours" in text
