"""Keeps a replica's claims alive while it delivers, from a thread of its own.

A task on the event loop would renew only when the loop gets to it: a loop busy with a first
pull taking in thousands of dossiers, or mapping a page, or a machine starved of CPU, can hold it
past the lease, and another replica would then take over dossiers whose calls are still in
flight. A thread is scheduled by the interpreter every few milliseconds whatever the loop does.
"""

from __future__ import annotations

import logging
import threading
import time

from dvcsync.state import StateStore

log = logging.getLogger(__name__)


class ClaimKeeper:
    """``with ClaimKeeper(store):`` renews this replica's claims every third of a lease, and
    gives them all back when the block ends, however it ends."""

    def __init__(self, store: StateStore) -> None:
        from dvcsync.state.replica import replica_id

        self.store = store
        self.owner = replica_id()  # taken here: the thread renews for whoever started it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dvcsync-claims", daemon=True)
        self.renewals = 0
        self.valid_until = 0.0
        # times a renewal found the lease already over (a pause, the state unreachable): claims
        # taken before then are re-proven before anything is sent for them (``reprove``)
        self.lapses = 0

    def __enter__(self) -> ClaimKeeper:
        self._renew()
        self._thread.start()
        return self

    def holding(self) -> bool:
        """Whether this replica's claims are surely still its own for the next calls: a third of
        a lease or more left since the last renewal that worked. When not (the state unreachable
        for two thirds of a lease), the deliverer stops rather than send what another replica may
        be taking over."""
        return time.time() < self.valid_until - self.store.claim_lease_s / 3

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        try:
            self.store.release_claims(owner=self.owner)
        except Exception as error:  # the state unreachable: the claims end with their lease
            log.warning("could not give back this replica's claims (they end with their lease): %s", error)

    def reprove(self, record_keys: set[str]) -> set[str]:
        """Which of these dossiers are still this replica's, their claims extended (the fence
        before a send after a lapse; ``StateStore.reprove_claims``)."""
        asked = time.time()
        if asked > self.valid_until:
            self.lapses += 1
        mine = self.store.reprove_claims(record_keys, now=asked, owner=self.owner)
        self.valid_until = max(self.valid_until, asked + self.store.claim_lease_s)
        return mine

    def _renew(self) -> None:
        asked = time.time()
        self.store.renew_claims(now=asked, owner=self.owner)
        if self.valid_until and asked > self.valid_until:
            self.lapses += 1  # another replica may have taken dossiers over meanwhile
        self.valid_until = asked + self.store.claim_lease_s
        self.renewals += 1

    def _run(self) -> None:
        every = self.store.claim_lease_s / 3
        while not self._stop.wait(every):
            started = time.monotonic()
            try:
                self._renew()
            except Exception as error:  # the state unreachable a moment: the next renewal may work
                log.warning("could not renew this replica's claims: %s", error)
            if time.monotonic() - started > every:
                log.warning("renewing this replica's claims took %.1f s", time.monotonic() - started)
