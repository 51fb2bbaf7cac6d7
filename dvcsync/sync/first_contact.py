"""Dossiers met for the first time: read the portal's copy back before sending anything.

A new or lost state, or a province coming from another integration, faces a portal that may
already hold its dossiers and their history, and the portal never removes a history entry. So
an entry enqueued for a dossier the state has no evidence of (``verify_first`` on a dossier or
status entry, set at enqueue) is settled by one ``TraCuuHoSo`` per dossier, within the client's
rate budget and the job's concurrency:

- not on the portal: created as usual, its history sent whole (nothing can be there);
- on the portal, every mapped field the same: acknowledged without a write;
- on the portal, some fields different: replaced (``isUpdating`` True);
- its pending history entries matched against the portal's (``readback.settle_history``): only
  the missing ones stay to be sent; entries only the portal has become conflicts for the
  reconciler (never deleted, never re-sent);
- a portal-submitted dossier's status report: not re-sent when the portal shows that status.

The push settles the entries it is about to send (``send=True``: what is left goes out in the
same round); ``dvcsync adopt`` settles them all without sending (what differs stays in the
outbox for the next push). The state is seeded from what was read either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dvcsync.portal import AuthError, Backoff, PortalClient, PortalError, UnreachableError
from dvcsync.state import DueEntry, Outcome, StateStore

from .readback import describe_entry, differing_fields, settle_history

log = logging.getLogger(__name__)

HISTORY_FIELD = "QuaTrinhXuLy"
PORTAL_ONLY_NOTE = (
    "history entry on the portal that the province does not have (never deleted, never re-sent)"
)


@dataclass
class FirstContactCounts:
    """What the read-backs found; ``dvcsync adopt`` prints these as its summary."""

    read: int = 0
    read_failed: int = 0
    identical: int = 0
    missing_on_portal: int = 0
    differing: int = 0
    differing_fields: Counter[str] = field(default_factory=Counter)
    history_present: int = 0  # province entries already on the portal: never sent again
    history_missing: int = 0  # province entries the portal lacks: sent (once)
    dossiers_history_missing: int = 0
    portal_only: int = 0  # entries only the portal has: conflicts for the reconciler
    status_same: int = 0
    status_differs: int = 0

    def add(self, other: FirstContactCounts) -> None:
        for name in self.__dataclass_fields__:
            if name == "differing_fields":
                self.differing_fields.update(other.differing_fields)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["differing_fields"] = dict(sorted(self.differing_fields.items()))
        return data


@dataclass
class Settled:
    """The outcome of settling some entries: what is still to send, and what was recorded."""

    to_send: list[DueEntry] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (record key, entry described)


class FirstContact:
    """Reads back and settles first-contact entries; see the module docstring."""

    def __init__(
        self,
        store: StateStore,
        client: PortalClient,
        semaphore: asyncio.Semaphore,
        clock: Callable[[], float],
        backoff: Backoff | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.semaphore = semaphore
        self.clock = clock
        self.backoff = backoff or Backoff(base=1.0, cap=300.0)
        self.counts = FirstContactCounts()

    async def settle(self, entries: list[DueEntry], *, send: bool) -> list[DueEntry]:
        """Settle ``entries`` (dossier or status entries with ``verify_first``), record what was
        decided, and return the entries still to send now (``send``), with their create/replace
        choice made from what was read. Without ``send`` they stay pending for the next push.

        The copies are read and decided ``READ_CHUNK`` dossiers at a time and dropped before
        the next are read: each is a whole dossier with its history, and a push's round of
        first contacts is thousands of dossiers (a round's copies all held at once were the
        delivery's peak memory). What was decided is still recorded in one transaction at the
        end, as before: a cycle stopped part-way records nothing of the round."""
        if not entries:
            return []
        settled = Settled()
        for chunk in _by_key_chunks(entries, READ_CHUNK):
            await self._settle_chunk(chunk, settled, send=send)
        await asyncio.to_thread(self._commit, settled)
        return settled.to_send

    async def _settle_chunk(self, entries: list[DueEntry], settled: Settled, *, send: bool) -> None:
        keys = sorted({e.record_key for e in entries})
        copies = dict(zip(keys, await asyncio.gather(*(self._read(k) for k in keys)), strict=True))
        history = await asyncio.to_thread(self.store.pending_history, keys)
        by_key: dict[str, list[DueEntry]] = {}
        for entry in history:
            by_key.setdefault(entry.record_key, []).append(entry)
        for entry in entries:
            copy = copies[entry.record_key]
            if copy is _FAILED:
                settled.outcomes.append(self._later(entry))
            elif entry.kind == "status":
                self._status(entry, copy, settled, send=send)
            else:
                self._dossier(entry, copy, by_key.get(entry.record_key, []), settled, send=send)

    # ------------------------------------------------------------------ reading

    async def _read(self, key: str) -> dict[str, Any] | object | None:
        """The portal's copy (a wire dict with its ``QuaTrinhXuLy``), None when it has none,
        ``_FAILED`` when it could not be read (settled in a later round)."""
        async with self.semaphore:
            try:
                reply = await self.client.call("TraCuuHoSo", {"mahoso": key}, typed=False)
            except (AuthError, UnreachableError):
                raise  # the cycle stops: nothing is decided without the portal
            except PortalError as exc:
                log.warning("read-back of %s failed: %s", key, exc)
                self.counts.read_failed += 1
                return _FAILED
        if not reply.ok:
            log.warning("read-back of %s refused: error_code %s: %s", key, reply.error_code, reply.message)
            self.counts.read_failed += 1
            return _FAILED
        items = reply.result or []
        if not items:
            self.counts.read += 1
            return None
        # the dossier asked for, should the look-up answer several (else the first, as before)
        first = next(
            (i for i in items if isinstance(i, dict) and str(i.get("MaHoSo", "")).strip() == key), items[0]
        )
        if hasattr(first, "model_dump"):
            first = first.model_dump(mode="json", exclude_none=True)
        if not isinstance(first, dict):
            # an unreadable copy says nothing of what the portal holds: taken for "absent", the
            # whole history would go again onto a dossier that may hold it
            log.warning("read-back of %s unreadable: a %s, not a dossier", key, type(first).__name__)
            self.counts.read_failed += 1
            return _FAILED
        self.counts.read += 1
        return first

    # ------------------------------------------------------------------ deciding

    def _later(self, entry: DueEntry) -> Outcome:
        return Outcome(
            entry.id,
            entry.record_key,
            entry.kind,
            "retry",
            error="read-back failed",
            next_attempt_at=self.clock() + self.backoff.delay(entry.attempts + 1),
            count_attempt=False,  # nothing was sent: a read that failed uses none of its attempts
        )

    def _dossier(
        self,
        entry: DueEntry,
        copy: Any,
        steps: list[DueEntry],
        settled: Settled,
        *,
        send: bool,
    ) -> None:
        counts = self.counts
        if copy is None:
            counts.missing_on_portal += 1
            counts.history_missing += sum(len(s.history[0]) for s in steps)
            counts.dossiers_history_missing += 1 if steps else 0
            # nothing of it on the portal: its history goes whole, without another read-back
            settled.outcomes.extend(_plain(s, verify_first=False) for s in steps)
            self._go(entry, on_portal=False, settled=settled, send=send)
            return
        differs = differing_fields(entry.payload, copy)
        self._settle_history(entry.record_key, steps, copy.get(HISTORY_FIELD) or [], settled)
        if not differs:
            counts.identical += 1
            settled.outcomes.append(
                Outcome(
                    entry.id,
                    entry.record_key,
                    entry.kind,
                    "done",
                    payload_hash=entry.payload_hash,
                    count_attempt=False,
                )
            )
            return
        counts.differing += 1
        counts.differing_fields.update(differs)
        self._go(entry, on_portal=True, settled=settled, send=send)

    def _status(self, entry: DueEntry, copy: Any, settled: Settled, *, send: bool) -> None:
        wanted = str(entry.payload.get("TrangThai", ""))
        held = str(copy.get("TrangThaiHoSo", copy.get("TrangThai", ""))) if isinstance(copy, dict) else ""
        if held and held == wanted:
            self.counts.status_same += 1
            settled.outcomes.append(
                Outcome(
                    entry.id,
                    entry.record_key,
                    "status",
                    "done",
                    payload_hash=entry.payload_hash,
                    count_attempt=False,
                )
            )
            return
        self.counts.status_differs += 1
        self._go(entry, on_portal=None, settled=settled, send=send)

    def _go(self, entry: DueEntry, *, on_portal: bool | None, settled: Settled, send: bool) -> None:
        """The entry is to be sent: now (``send``), or by the next push. Either way the state
        records what was read (``on_portal``) and that it needs no read-back again."""
        settled.outcomes.append(_plain(entry, verify_first=False, on_portal=on_portal))
        if send:
            settled.to_send.append(
                replace(
                    entry, on_portal=entry.on_portal if on_portal is None else on_portal, verify_first=False
                )
            )

    def _settle_history(
        self, record_key: str, steps: list[DueEntry], portal_history: list[Any], settled: Settled
    ) -> None:
        items = [list(s.payload.get("entries", [])) for s in steps]
        result = settle_history(items, [e for e in portal_history if isinstance(e, dict)])
        self.counts.history_present += result.present
        self.counts.history_missing += result.missing_count
        if result.missing_count:
            self.counts.dossiers_history_missing += 1
        for step, missing in zip(steps, result.missing, strict=True):
            keys = list(step.payload.get("keys", []))
            if not missing:
                settled.outcomes.append(
                    Outcome(step.id, record_key, "steps", "done", step_keys=keys, count_attempt=False)
                )
                continue
            payload = {
                "keys": [keys[i] for i in missing],
                "entries": [step.payload["entries"][i] for i in missing],
            }
            settled.outcomes.append(
                Outcome(
                    step.id,
                    record_key,
                    "steps",
                    "resend",
                    new_payload=payload if len(missing) < len(keys) else None,
                    verify_first=False,
                    count_attempt=False,
                )
            )
        for entry in result.portal_only:
            self.counts.portal_only += 1
            settled.conflicts.append((record_key, describe_entry(entry)))

    def _commit(self, settled: Settled) -> None:
        # conflicts first (kept once each): a process dying in between reads the dossier back
        # again and finds them recorded, instead of settled entries whose conflicts are lost
        for record_key, described in settled.conflicts:
            self.store.record_conflict(record_key, HISTORY_FIELD, None, described, PORTAL_ONLY_NOTE)
        self.store.record_outcomes(settled.outcomes, now=self.clock())


_FAILED = object()

# Dossiers read back at a time: 32 waves of the default 8 calls in flight, so the reads left
# idle while a chunk's last ones come back cost ~3 %, and a chunk's copies (~5-10 KB each with
# their history) stay a few MB.
READ_CHUNK = 256


def _by_key_chunks(entries: list[DueEntry], size: int) -> list[list[DueEntry]]:
    """``entries`` in chunks of at most ``size`` dossiers, every entry of one dossier in the
    chunk where the dossier first appears (its copy is read once), the order kept otherwise."""
    chunk_of: dict[str, int] = {}
    chunks: list[list[DueEntry]] = []
    keys_in_last = size  # a first dossier opens the first chunk
    for entry in entries:
        index = chunk_of.get(entry.record_key)
        if index is None:
            if keys_in_last >= size:
                chunks.append([])
                keys_in_last = 0
            keys_in_last += 1
            index = chunk_of[entry.record_key] = len(chunks) - 1
        chunks[index].append(entry)
    return chunks


def _plain(entry: DueEntry, *, verify_first: bool, on_portal: bool | None = None) -> Outcome:
    """Left pending as it is, due at once, no attempt used: only its read-back flag (and what the
    state knows of the portal's copy) change."""
    return Outcome(
        entry.id,
        entry.record_key,
        entry.kind,
        "resend",
        on_portal=on_portal,
        verify_first=verify_first,
        count_attempt=False,
    )


__all__ = ["FirstContact", "FirstContactCounts"]
