"""How due history entries are packed into ``CapNhatTienDoHoSoMC`` calls: a pure decision, apart
from the push job that sends them, so it is tested without a portal or a state."""

from __future__ import annotations

from dvcsync.state import DueEntry

__all__ = ["pack_history"]


def pack_history(due: list[DueEntry], size: int) -> list[list[DueEntry]]:
    """Group due history entries into ``CapNhatTienDoHoSoMC`` calls of at most ``size`` entries,
    several dossiers a call (the contract keys each entry by ``MaHoSo``). An outbox entry is never
    split: a dossier has at most one entry due at a time (the next waits for this one's answer),
    so its order holds whichever call carries it. Best fit, largest first (calls kept by the
    room they have left, so a round of hundreds of entries packs in linear time): dossiers of 6
    and 4 steps share calls instead of a 6 going alone because the next 6 did not fit."""
    calls: list[list[DueEntry]] = []
    by_room: dict[int, list[int]] = {}  # room left → the calls with that much
    for entry in sorted(due, key=lambda e: len(e.history[0]), reverse=True):
        n = len(entry.history[0])
        fit = next((r for r in range(n, size + 1) if by_room.get(r)), None)
        if fit is None:
            calls.append([entry])
            index, left = len(calls) - 1, size - n
        else:
            index = by_room[fit].pop()
            calls[index].append(entry)
            left = fit - n
        if left > 0:
            by_room.setdefault(left, []).append(index)
    return calls
