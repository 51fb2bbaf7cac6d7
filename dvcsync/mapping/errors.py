"""Why a record could not be mapped, said so a person can fix the source row."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvcsync.errors import TerminalError


def mask(value: Any) -> str:
    """Personal data in errors: keep the shape, hide the content (``0912345678`` → ``09******78``)."""
    text = "" if value is None else str(value)
    if len(text) <= 4:
        return "*" * len(text)
    return text[:2] + "*" * (len(text) - 4) + text[-2:]


def show(value: Any, *, personal: bool) -> str:
    if personal:
        return repr(mask(value))
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "...'"


@dataclass(frozen=True)
class FieldError:
    """One field of one record that could not be mapped."""

    record: str  # the record's key (e.g. the dossier's local number)
    field: str  # output field, with list positions (DanhSachLePhi[1].Gia)
    source: str  # where the value came from in the source (column path), "" if not from a column
    value: str  # the offending value, already masked when it is personal data
    reason: str

    def __str__(self) -> str:
        origin = f" (from {self.source})" if self.source else ""
        return f"{self.record}: {self.field}{origin} = {self.value}: {self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {
            "record": self.record,
            "field": self.field,
            "source": self.source,
            "value": self.value,
            "reason": self.reason,
        }


class MappingSpecError(TerminalError, ValueError):
    """A spec or code table is invalid; carries the file, line and key of every problem."""

    def __init__(self, problems: list[tuple[Path, int | None, str, str]]) -> None:
        self.problems = problems
        lines = []
        for path, line, key, message in problems:
            where = f"{path}:{line}" if line else str(path)
            lines.append(f"{where}: {key}: {message}" if key else f"{where}: {message}")
        super().__init__("\n".join(lines))
