"""Secrets kept in files (``password_file``, ``secret_file``, ``token_file``): the one read of a
file the section models make, kept here so the models themselves stay free of I/O code. The
models call it from their validators, so an unreadable file is reported at its key."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr


def read_secret(path: Path | None, what: str) -> SecretStr | None:
    """The secret in ``path`` (stripped), None without a path; ValueError naming ``what`` when
    the file cannot be read."""
    if path is None:
        return None
    try:
        return SecretStr(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise ValueError(f"cannot read {what} from {path}: {exc.strerror}") from None
