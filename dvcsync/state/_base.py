"""What every group of the store's operations shares: the engine on the state, whether dossiers
are claimed (PostgreSQL replicas) and for how long. ``StateStore`` is these groups together."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from .engine import make_state_engine

# How long a replica's claim on a dossier lasts unless renewed ([state] claim_lease_s).
CLAIM_LEASE_S = 60.0


class StoreBase:
    def __init__(self, url: str, *, claim_lease_s: float = CLAIM_LEASE_S) -> None:
        self.url = url
        self.engine = make_state_engine(url)
        # Replicas (PostgreSQL): a dossier's entries are delivered by the one replica that claims
        # it, for ``claim_lease_s`` at a time, renewed while it lives (``renew_claims``).
        self.claims = self.engine.dialect.name == "postgresql"
        self.claim_lease_s = claim_lease_s

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @cached_property
    def reader(self) -> Engine:
        """An engine for long reads that must not hold the write lock (see ``make_state_engine``)."""
        if self.engine.dialect.name != "sqlite":
            return self.engine  # PostgreSQL: a read transaction takes no lock a writer waits for
        return make_state_engine(self.url, read_only=True)

    def close(self) -> None:
        self.engine.dispose()
        if "reader" in self.__dict__ and self.reader is not self.engine:
            self.reader.dispose()
