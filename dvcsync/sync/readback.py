"""What the portal already holds of a dossier, decided from a read-back (``TraCuuHoSo``): pure
functions, no SQL and no HTTP, so every case is a unit test.

The portal gives history entries no id and never removes one, so an entry is identified by what
it says after mapping: the dossier, when (``ThoiDiemXuLy``), who (``NguoiXuLy``), what
(``NoiDungXuLy``) and the status after it (``TrangThai``). Two entries equal on all five are the
same entry; the province's entries are matched against the portal's as multisets, in the
province's order, so a step recorded twice in the province is sent twice only if the portal has
it fewer times. An entry the portal has and the province does not is *portal-only*: it is
reported (a conflict for the reconciler), never deleted (the contract has no way) nor re-sent.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

HISTORY_IDENTITY = ("MaHoSo", "ThoiDiemXuLy", "NguoiXuLy", "NoiDungXuLy", "TrangThai")

Fingerprint = tuple[str, ...]


def _text(value: Any) -> str:
    """A wire value as compared: scalars as stripped text, absent and empty alike."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value).strip()


def history_fingerprint(entry: Mapping[str, Any]) -> Fingerprint:
    """What identifies a history entry on the portal, which gives entries no id of their own."""
    return tuple(_text(entry.get(k)) for k in HISTORY_IDENTITY)


def _same(mine: Any, theirs: Any) -> bool:
    """``mine`` (what the mapping makes) against ``theirs`` (what the portal holds). Lists are
    compared item by item on the keys the mapping fills: the portal may keep keys of its own."""
    if isinstance(mine, list) or isinstance(theirs, list):
        left = mine if isinstance(mine, list) else []
        right = theirs if isinstance(theirs, list) else []
        if len(left) != len(right):
            return False
        return all(_same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(mine, dict):
        other = theirs if isinstance(theirs, dict) else {}
        return all(_same(value, other.get(key)) for key, value in mine.items())
    if isinstance(theirs, dict):
        return False
    return _text(mine) == _text(theirs)


def differing_fields(mapped: Mapping[str, Any], portal: Mapping[str, Any]) -> list[str]:
    """The wire fields of ``mapped`` that the portal holds differently (sorted). Fields only the
    portal has are not differences: it keeps fields a client does not send."""
    return sorted(
        key for key, value in mapped.items() if key != "QuaTrinhXuLy" and not _same(value, portal.get(key))
    )


@dataclass
class HistorySettlement:
    """The province's pending history entries of one dossier against the portal's history."""

    missing: list[list[int]] = field(default_factory=list)  # per outbox entry: indexes still to send
    present: int = 0  # province entries found on the portal
    portal_only: list[dict[str, Any]] = field(default_factory=list)  # on the portal, not in the province

    @property
    def missing_count(self) -> int:
        return sum(len(m) for m in self.missing)


def settle_history(
    pending: Sequence[Sequence[Mapping[str, Any]]],
    portal_history: Iterable[Mapping[str, Any]],
    acknowledged: Iterable[Mapping[str, Any]] = (),
) -> HistorySettlement:
    """Match each pending outbox entry's history items (in the province's order) against the
    portal's history as a multiset. ``acknowledged``: items the state already knows the portal
    holds (they account for portal entries too, so they are never taken for portal-only)."""
    portal_entries = list(portal_history)
    left: Counter[Fingerprint] = Counter(history_fingerprint(e) for e in portal_entries)
    for item in acknowledged:
        mark = history_fingerprint(item)
        if left[mark] > 0:
            left[mark] -= 1
    result = HistorySettlement()
    for items in pending:
        missing: list[int] = []
        for index, item in enumerate(items):
            mark = history_fingerprint(item)
            if left[mark] > 0:
                left[mark] -= 1
                result.present += 1
            else:
                missing.append(index)
        result.missing.append(missing)
    for entry in portal_entries:  # what is left over, in the portal's order
        mark = history_fingerprint(entry)
        if left[mark] > 0:
            left[mark] -= 1
            result.portal_only.append(dict(entry))
    return result


def describe_entry(entry: Mapping[str, Any]) -> str:
    """A history entry as a reconciler reads it in a conflict (its identity, compact JSON)."""
    return json.dumps(
        {k: _text(entry.get(k)) for k in HISTORY_IDENTITY if k != "MaHoSo"},
        ensure_ascii=False,
        separators=(",", ":"),
    )


__all__ = [
    "HISTORY_IDENTITY",
    "HistorySettlement",
    "describe_entry",
    "differing_fields",
    "history_fingerprint",
    "settle_history",
]
