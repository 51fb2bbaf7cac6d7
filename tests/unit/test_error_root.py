"""Every error dvcsync defines has one root (``dvcsync.errors.DvcsyncError``) and an exit code
the CLI knows, so a scheduler can tell transient from terminal and the CLI maps any of them in
one place. The package is walked, so an error added later without the root fails here."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import dvcsync
from dvcsync.errors import DvcsyncError, ExitCode, TerminalError, TransientError

# Scripts that run when imported rather than modules: the CLI's entry, alembic's environment
# and revisions (they need alembic's context and define no errors).
_SKIP_MODULES = {"dvcsync.cli.__main__"}
_SKIP_PARTS = (".migrations.env", ".migrations.versions")


def _modules() -> list[str]:
    names = [dvcsync.__name__]
    for info in pkgutil.walk_packages(dvcsync.__path__, prefix="dvcsync."):
        if info.name not in _SKIP_MODULES and not any(p in info.name for p in _SKIP_PARTS):
            names.append(info.name)
    return names


def _defined_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[key] for key in sorted(found)]


EXCEPTIONS = _defined_exceptions()
# Private ones (a leading underscore) are control flow inside one module, never seen outside it.
PUBLIC = [e for e in EXCEPTIONS if not e.__name__.startswith("_")]


def test_the_walk_finds_the_known_errors() -> None:
    names = {e.__name__ for e in PUBLIC}
    assert {"ConfigError", "PortalError", "StateBusy", "MappingSpecError", "SourceUnavailable"} <= names


@pytest.mark.parametrize("exc", PUBLIC, ids=lambda e: f"{e.__module__}.{e.__qualname__}")
def test_every_public_error_has_the_root_and_an_exit_code(exc: type[BaseException]) -> None:
    assert issubclass(exc, DvcsyncError), f"{exc.__module__}.{exc.__qualname__} lacks DvcsyncError"
    assert isinstance(exc.exit_code, ExitCode)
    assert exc.exit_code not in (ExitCode.OK, ExitCode.INTERRUPTED)
    assert isinstance(exc.transient, bool)
    assert not (issubclass(exc, TransientError) and issubclass(exc, TerminalError))


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: f"{e.__module__}.{e.__qualname__}")
def test_a_root_error_has_a_valid_exit_code(exc: type[BaseException]) -> None:
    if issubclass(exc, DvcsyncError):
        assert exc.exit_code in set(ExitCode)


def test_builtin_bases_are_kept_for_existing_handlers() -> None:
    from dvcsync.config import ConfigError
    from dvcsync.mapping.errors import MappingSpecError
    from dvcsync.province.source import SourceUnavailable
    from dvcsync.sync.state_lock import StateBusy

    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, TerminalError)
    assert issubclass(MappingSpecError, ValueError)
    assert issubclass(SourceUnavailable, RuntimeError)
    assert issubclass(StateBusy, RuntimeError) and StateBusy.transient


def test_the_exit_codes_the_cli_has_always_used() -> None:
    from dvcsync.config import ConfigError
    from dvcsync.portal.errors import AuthError, PortalError, TlsError, TransientError, UnreachableError
    from dvcsync.state import SchemaOutOfDate
    from dvcsync.sync.state_guard import IdentityMismatch, StateMissing
    from dvcsync.sync.state_lock import StateBusy

    assert ConfigError.exit_code == SchemaOutOfDate.exit_code == ExitCode.INVALID
    assert StateMissing.exit_code == IdentityMismatch.exit_code == AuthError.exit_code == ExitCode.INVALID
    assert StateBusy.exit_code == ExitCode.BUSY
    assert UnreachableError.exit_code == TlsError.exit_code == ExitCode.UNREACHABLE
    assert PortalError.exit_code == TransientError.exit_code == ExitCode.PROBLEMS
    assert UnreachableError.transient and not AuthError.transient
