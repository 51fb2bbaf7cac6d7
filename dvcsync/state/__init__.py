"""The adapter's own durable state: outbox, per-dossier sync records, cursors, quarantine, runs.

Callers use ``StateStore``'s named operations, ``Inbox``, ``Refusals`` and the reads of
``dvcsync.state.reads``; the tables themselves (``dvcsync.state.tables``) stay inside."""

from .inbox import Inbox, InboxItem
from .kinds import InboxKind, InboxState, OutboxKind, OutboxState, OutcomeResult, RunStatus
from .models import Conflict, Cursor, DossierState, InboxEvent, OutboxEntry, Quarantine, Run, StepState
from .page import PageDecision, decide_page
from .store import (
    DueEntry,
    EnqueueCounts,
    MappedRecord,
    Outcome,
    SchemaOutOfDate,
    StateStore,
    dumps,
    make_state_engine,
    payload_hash,
)

__all__ = [
    "Conflict",
    "Cursor",
    "DossierState",
    "DueEntry",
    "EnqueueCounts",
    "Inbox",
    "InboxEvent",
    "InboxItem",
    "InboxKind",
    "InboxState",
    "MappedRecord",
    "OutboxEntry",
    "OutboxKind",
    "OutboxState",
    "Outcome",
    "OutcomeResult",
    "PageDecision",
    "Quarantine",
    "Run",
    "RunStatus",
    "SchemaOutOfDate",
    "StateStore",
    "StepState",
    "decide_page",
    "dumps",
    "make_state_engine",
    "payload_hash",
]
