"""The state store: every state change the sync makes goes through here, in one transaction per
unit of work, so a crash at any instant leaves either all of a unit or none of it.

``StateStore`` is the one public facade; its named operations live in modules named for what
they do (``enqueue``, ``repair``, ``claims``, ``outcomes``, ``runs``, ``prune``, ``letters``,
``conflicts``), over the tables of ``tables``. The names below are re-exported for the callers
that import them from here."""

from __future__ import annotations

from ._base import CLAIM_LEASE_S, StoreBase
from .claims import ClaimOps
from .conflicts import ConflictOps
from .engine import make_state_engine
from .errors import SchemaOutOfDate, newer_message, shown_url
from .letters import LetterOps
from .outcomes import DEADLOCK_RETRIES, OutcomeOps
from .page import is_first_contact
from .prune import PRUNE_BATCH, STUB_KEYS, PruneOps, pruned_stub
from .records import STEPS_PER_CALL, DueEntry, EnqueueCounts, MappedRecord, Outcome, dumps, payload_hash
from .repair import RepairOps
from .runs import RunOps
from .tables import (
    CATALOGUE_TABLES,
    CONFLICT_T,
    CURSOR_T,
    DOSSIER_T,
    IDENTITY_T,
    INBOX_T,
    LEASE_T,
    OUTBOX_T,
    QUARANTINE_T,
    REFUSAL_T,
    RUN_T,
    STATE_TABLES,
    STEP_T,
)


class StateStore(RepairOps, ClaimOps, OutcomeOps, RunOps, PruneOps, LetterOps, ConflictOps, StoreBase):
    """The state of one deployment (or tenant): its schema, and every named operation on it."""

    # ------------------------------------------------------------------ schema

    def upgrade(self) -> tuple[str | None, str]:
        """Create the tables, or migrate them to this dvcsync's revision (``alembic upgrade
        head``), in one transaction that holds the migration lock: two processes doing it at
        once on a fresh database make one set of tables. A database of the releases before
        migrations is recognised and stamped as revision 0001 first. Returns ``(revision it was
        at, head)``; the first is None for an empty database."""
        from .migrations import head_revision, upgrade_to_head

        with self.engine.begin() as conn:
            before = upgrade_to_head(conn)
        return before, head_revision()

    def schema_status(self) -> tuple[str | None, str]:
        """``(current revision, head)``: current is None for an empty database, 0001 for one of
        the releases before migrations."""
        from .migrations import head_revision, revision_of

        with self.engine.connect() as conn:
            current, _stamped = revision_of(conn)
        return current, head_revision()

    def prepare(self) -> None:
        """What every run does before it touches the state: an empty database is created at
        head, one at head is used as it is, and any other is refused (``SchemaOutOfDate``), never
        migrated behind the operator's back."""
        from .migrations import is_known

        current, head = self.schema_status()
        if current == head:
            return
        if current is None:
            self.upgrade()  # rechecks under the lock: another process may have just made it
        elif is_known(current):
            raise SchemaOutOfDate(
                f"the state database {shown_url(self.url)} is at revision {current}; this dvcsync"
                f" needs {head}: run `dvcsync db upgrade`"
            )
        else:
            raise SchemaOutOfDate(newer_message(self.url, current))


__all__ = [
    "CATALOGUE_TABLES",
    "CLAIM_LEASE_S",
    "CONFLICT_T",
    "CURSOR_T",
    "DEADLOCK_RETRIES",
    "DOSSIER_T",
    "IDENTITY_T",
    "INBOX_T",
    "LEASE_T",
    "OUTBOX_T",
    "PRUNE_BATCH",
    "QUARANTINE_T",
    "REFUSAL_T",
    "RUN_T",
    "STATE_TABLES",
    "STEPS_PER_CALL",
    "STEP_T",
    "STUB_KEYS",
    "DueEntry",
    "EnqueueCounts",
    "MappedRecord",
    "Outcome",
    "SchemaOutOfDate",
    "StateStore",
    "StoreBase",
    "dumps",
    "is_first_contact",
    "make_state_engine",
    "newer_message",
    "payload_hash",
    "pruned_stub",
    "shown_url",
]
