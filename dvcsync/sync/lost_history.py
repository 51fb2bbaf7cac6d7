"""History whose answer was lost: settled by reading the portal back before anything is re-sent.

``CapNhatTienDoHoSoMC`` appends; sent twice, an entry is on the portal twice for ever. So an
outbox entry of history marked ``verify_first`` (its call went out and no answer came back, or
the run died with it in flight) is settled by one ``TraCuuHoSo`` of its dossier: the entries the
portal shows are done, only the missing ones stay to be sent (a smaller payload), and an entry
whose read-back fails waits for a later round with its backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from dvcsync.contract import HoSoDaLuu
from dvcsync.portal import AuthError, Backoff, PortalClient, PortalError, UnreachableError
from dvcsync.state import DueEntry, Outcome, StateStore
from dvcsync.state.store import dumps

from .readback import Fingerprint, history_fingerprint

log = logging.getLogger(__name__)


class LostHistory:
    """Settles ``verify_first`` history entries against the portal's copy of their dossiers."""

    def __init__(
        self,
        store: StateStore,
        client: PortalClient,
        semaphore: asyncio.Semaphore,
        clock: Callable[[], float],
        backoff: Backoff,
    ) -> None:
        self.store = store
        self.client = client
        self.semaphore = semaphore
        self.clock = clock
        self.backoff = backoff

    async def settle(self, entries: list[DueEntry]) -> tuple[list[DueEntry], int]:
        """Read back the dossiers of entries that may already be on the portal; mark what is there
        done and keep only what is missing. Returns the entries to send now and how many were
        settled by a read-back. Entries whose read-back fails wait for a later round."""
        keep: list[DueEntry] = []
        outcomes: list[Outcome] = []
        keys = sorted({e.record_key for e in entries if e.verify_first})
        stored = dict(zip(keys, await asyncio.gather(*(self._read(k) for k in keys)), strict=True))
        resolved = 0
        for entry in entries:
            if not entry.verify_first:
                keep.append(entry)
                continue
            history = stored[entry.record_key]
            if history is None:
                outcomes.append(self._later(entry))
                continue
            resolved += 1
            outcome, rest = self._missing(entry, history)
            outcomes.append(outcome)
            if rest is not None:
                keep.append(rest)
        await asyncio.to_thread(self.store.record_outcomes, outcomes, now=self.clock())
        return keep, resolved

    def _later(self, entry: DueEntry) -> Outcome:
        return Outcome(
            entry.id,
            entry.record_key,
            "steps",
            "retry",
            error="read-back failed",
            next_attempt_at=self.clock() + self.backoff.delay(entry.attempts + 1),
        )

    @staticmethod
    def _missing(entry: DueEntry, history: Counter[Fingerprint]) -> tuple[Outcome, DueEntry | None]:
        """The entry's outcome once compared with the portal's history (consumed as matched), and
        what is left of it to send (None when the portal has every entry)."""
        missing_keys, missing_entries = [], []
        for key, item in zip(entry.payload["keys"], entry.payload["entries"], strict=True):
            mark = history_fingerprint(item)
            if history[mark] > 0:
                history[mark] -= 1  # this one is on the portal
            else:
                missing_keys.append(key)
                missing_entries.append(item)
        if not missing_entries:
            done = Outcome(
                entry.id,
                entry.record_key,
                "steps",
                "done",
                step_keys=entry.payload["keys"],
                count_attempt=False,
            )
            return done, None
        payload = {"keys": missing_keys, "entries": missing_entries}
        resend = Outcome(
            entry.id,
            entry.record_key,
            "steps",
            "resend",
            new_payload=payload,
            verify_first=False,
            count_attempt=False,
        )
        rest = DueEntry(
            entry.id, "steps", entry.record_key, dumps(payload), entry.payload_hash, entry.attempts, True
        )
        return resend, rest

    async def _read(self, record_key: str) -> Counter[Fingerprint] | None:
        async with self.semaphore:
            try:
                reply = await self.client.call("TraCuuHoSo", {"mahoso": record_key})
            except (AuthError, UnreachableError):
                raise  # the cycle stops: no record's attempt is used
            except PortalError as exc:
                log.warning("read-back of %s failed: %s", record_key, exc)
                return None
        items = reply.result or []
        if not items:
            return Counter()
        first = items[0]
        stored = first if isinstance(first, HoSoDaLuu) else HoSoDaLuu.model_validate(first)
        return Counter(history_fingerprint(entry.to_wire()) for entry in stored.QuaTrinhXuLy)


__all__ = ["LostHistory"]
