"""The one error the configuration raises, apart so every half of the package can raise it."""

from __future__ import annotations

from dvcsync.errors import TerminalError


class ConfigError(TerminalError, ValueError):
    """The configuration cannot be used; the message names the file and key."""
