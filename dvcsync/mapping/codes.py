"""Code tables at run time: plain lookups, reverse lookups and dated lookups with successors.

Agencies change: since 1 July 2025 districts are gone and many communes merged. A dossier names
the agency it was filed with, so an agency is resolved *as of the dossier's date*, following
successors when the named one no longer existed then.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from dvcsync.errors import TerminalError

from .spec import CodeTableSpec, DatedEntry, SkipEntry

_MAX_SUCCESSION = 16


class CodeLookupError(TerminalError, LookupError):
    """The value has no entry (or none valid at the date): the message says which."""


class CodeSkipped(CodeLookupError):
    """The key is in the ``skip`` list of the table's overlay: its records are not sent."""

    PREFIX = "not sent"

    def __init__(self, table: str, key: str, entry: SkipEntry) -> None:
        by = f"by {entry.decided_by}" if entry.decided_by else ""
        decided = " ".join(part for part in (by, entry.decided_at or "") if part)
        super().__init__(
            f"{self.PREFIX}: {key!r} in code table {table!r}: {entry.reason}"
            + (f" (decided {decided})" if decided else "")
        )
        self.entry = entry


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
        self.skip: dict[str, SkipEntry] = dict(spec.skip)
        self.overlay: CodeTable | None = None  # set by the loader: a table that ``overlays`` this one
        self._reverse: dict[tuple[str | None, str], str | None] = {}

    def __len__(self) -> int:
        return len(self.keys())

    def own_keys(self) -> list[str]:
        return list(self._dated) if self.dated else list(self._plain)

    def keys(self) -> list[str]:
        """Every key a look-up finds: the overlay's first, then this table's (skipped ones left out)."""
        if self.overlay is None:
            return self.own_keys()
        mine = [k for k in self.own_keys() if k not in self.overlay.skip and k not in self.overlay._plain]
        return list(self.overlay._plain) + mine

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def dated_entry(self, key: str) -> DatedEntry | None:
        """A dated table's entry with its validity and successor (None: no such key, or not dated)."""
        return self._dated.get(key)

    def lookup(self, key: str, as_of: date | None = None) -> Any:
        overlay = self.overlay
        if overlay is not None:
            if key in overlay.skip:
                raise CodeSkipped(overlay.name, key, overlay.skip[key])
            if key in overlay._plain:
                return overlay._plain[key]
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
        if self.overlay is not None:
            hidden = set(self.overlay.skip) | set(self.overlay._plain)
            items = list(self.overlay._plain.items()) + [(k, v) for k, v in items if k not in hidden]
        for key, value in items:
            candidates: list[tuple[str | None, Any]] = [(None, value)]
            if isinstance(value, dict):
                candidates = [(name, sub) for name, sub in value.items()]
            for attr, sub in candidates:
                marker = (attr, str(sub))
                self._reverse[marker] = None if marker in self._reverse else key
