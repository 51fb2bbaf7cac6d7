"""Code tables at run time: plain lookups, reverse lookups and dated lookups with successors.

Agencies change: since 1 July 2025 districts are gone and many communes merged. A dossier names
the agency it was filed with, so an agency is resolved *as of the dossier's date*, following
successors when the named one no longer existed then.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from .spec import CodeTableSpec, DatedEntry

_MAX_SUCCESSION = 16


class CodeLookupError(LookupError):
    """The value has no entry (or none valid at the date): the message says which."""


class CodeTable:
    def __init__(self, spec: CodeTableSpec) -> None:
        self.name = spec.name
        self.dated = spec.dated
        self.default = spec.default
        self._plain: dict[str, Any] = {}
        self._dated: dict[str, DatedEntry] = {}
        if isinstance(spec.entries, list):
            self._dated = {entry.key: entry for entry in spec.entries}
        else:
            self._plain = dict(spec.entries)
        self._reverse: dict[tuple[str | None, str], str | None] = {}

    def __len__(self) -> int:
        return len(self._dated) if self.dated else len(self._plain)

    def keys(self) -> list[str]:
        return list(self._dated) if self.dated else list(self._plain)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def lookup(self, key: str, as_of: date | None = None) -> Any:
        if self.dated:
            return self._lookup_dated(key, as_of)
        if key in self._plain:
            return self._plain[key]
        if self.default is not None:
            return self.default
        raise CodeLookupError(f"no entry {key!r} in code table {self.name!r}")

    def _lookup_dated(self, key: str, as_of: date | None) -> Any:
        entry = self._dated.get(key)
        if entry is None:
            if self.default is not None:
                return self.default
            raise CodeLookupError(f"no entry {key!r} in code table {self.name!r}")
        if as_of is None:
            return entry.value
        chain = [entry.key]
        while entry.valid_to is not None and as_of > entry.valid_to:
            if entry.successor is None:
                raise CodeLookupError(
                    f"{key!r} in code table {self.name!r} ended on {entry.valid_to} with no successor "
                    f"(needed as of {as_of})"
                )
            entry = self._dated[entry.successor]
            chain.append(entry.key)
            if len(chain) > _MAX_SUCCESSION:
                raise CodeLookupError(f"successor chain of {key!r} in {self.name!r} loops: {chain}")
        if entry.valid_from is not None and as_of < entry.valid_from:
            raise CodeLookupError(
                f"{entry.key!r} in code table {self.name!r} is valid only from {entry.valid_from} "
                f"(needed as of {as_of})"
            )
        return entry.value

    def reverse_lookup(self, value: str, attr: str | None = None) -> str:
        """The key whose value (or value[attr]) is ``value``; an ambiguous value is an error."""
        if not self._reverse:
            self._build_reverse()
        marker = (attr, value)
        if marker not in self._reverse:
            raise CodeLookupError(f"no entry with value {value!r} in code table {self.name!r}")
        key = self._reverse[marker]
        if key is None:
            raise CodeLookupError(f"value {value!r} is ambiguous in code table {self.name!r}")
        return key

    def _build_reverse(self) -> None:
        items: list[tuple[str, Any]] = (
            [(k, e.value) for k, e in self._dated.items()] if self.dated else list(self._plain.items())
        )
        for key, value in items:
            candidates: list[tuple[str | None, Any]] = [(None, value)]
            if isinstance(value, dict):
                candidates = [(name, sub) for name, sub in value.items()]
            for attr, sub in candidates:
                marker = (attr, str(sub))
                self._reverse[marker] = None if marker in self._reverse else key
