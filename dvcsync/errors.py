"""The root of every error dvcsync raises on purpose, and what each means to the one who meets it.

A scheduler retries what is *transient* (the portal down, a lock held, a network that dropped) and
stops on what is *terminal* (a configuration, a mapping or a state that needs a person). The CLI
turns any of them into its exit code in one place (``dvcsync.cli._errors.explain``) from
``exit_code``, instead of a case per class. Classes keep their builtin base beside this root
(``ValueError``, ``RuntimeError``, ``OSError``) where callers already catch that base.

This module imports nothing of dvcsync: every layer may raise these.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The CLI's exit codes, as README lists them."""

    OK = 0
    PROBLEMS = 1  # the command ran and found or left problems (dead letters, mismatches, an unforeseen error)
    INVALID = 2  # the configuration, a mapping, the state or an argument needs a fix first
    BUSY = 3  # another run holds the state: try again when it ends
    UNREACHABLE = 4  # the portal or a database could not be reached: run again later
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class DvcsyncError(Exception):
    """An error dvcsync raises on purpose. ``transient``: the same call may succeed later
    unchanged; ``exit_code``: what the CLI exits with when this ends a command."""

    transient: bool = False
    exit_code: ExitCode = ExitCode.PROBLEMS


class TransientError(DvcsyncError):
    """Retry later, unchanged: the portal, a database or a lock is not available now."""

    transient = True
    exit_code = ExitCode.UNREACHABLE


class TerminalError(DvcsyncError):
    """Retrying alone will not help: a person must fix a setting, a mapping, a state or an input."""

    transient = False
    exit_code = ExitCode.INVALID
