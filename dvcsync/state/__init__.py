"""The adapter's own durable state: outbox, per-dossier sync records, cursors, quarantine, runs."""

from .inbox import Inbox, InboxItem
from .models import Conflict, Cursor, DossierState, InboxEvent, OutboxEntry, Quarantine, Run, StepState
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
    "MappedRecord",
    "OutboxEntry",
    "Outcome",
    "Quarantine",
    "Run",
    "SchemaOutOfDate",
    "StateStore",
    "StepState",
    "dumps",
    "make_state_engine",
    "payload_hash",
]
