"""The values the state persists in its ``state`` and ``kind`` columns, as ``StrEnum``s. The
schema holds each column to its enum with a CHECK constraint (rev. 0007; a test compares them),
so a typo in a caller fails at once instead of leaving a row no query ever selects again.
``StrEnum`` members are ``str``: they compare equal to the strings stored and read back."""

from __future__ import annotations

from enum import StrEnum


class OutboxState(StrEnum):
    """Where an outbox entry is in its life: ``pending`` until delivered (``done``), given up
    (``dead``), replaced by a newer version before it went (``superseded``) or a dead letter an
    operator threw away (``discarded``)."""

    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"
    SUPERSEDED = "superseded"
    DISCARDED = "discarded"


class OutboxKind(StrEnum):
    """What an outbox entry sends: a whole dossier (``DongBoHoSoMC``), history entries
    (``DongBoTienDoHoSoMC``) or the status of a portal-submitted dossier
    (``DongBoTrangThaiHoSo``)."""

    DOSSIER = "dossier"
    STEPS = "steps"
    STATUS = "status"


class InboxState(StrEnum):
    """Where an inbox event is: ``received`` (kept, not applied yet), ``applied`` to the
    province, ``acknowledged`` to the portal, ``rejected`` (never to be applied) or
    ``conflict`` (it contradicts the field's owner: kept for the reconciler)."""

    RECEIVED = "received"
    APPLIED = "applied"
    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    CONFLICT = "conflict"


class InboxKind(StrEnum):
    """What an inbox event is: a dossier submitted on the portal, a promotion of one, a payment
    result, a portal withdrawal, or an attachment refused on its way in (kept rejected, once)."""

    PORTAL_DOSSIER = "portal_dossier"
    PROMOTION = "promotion"
    PAYMENT_RESULT = "payment_result"
    WITHDRAWAL = "withdrawal"
    ATTACHMENT = "attachment"


# the delivery outcomes an ``Outcome`` carries (not persisted: turned into an OutboxState)
class OutcomeResult(StrEnum):
    DONE = "done"
    RETRY = "retry"
    DEAD = "dead"
    RESEND = "resend"


OUTBOX_SETTLED = (OutboxState.DONE, OutboxState.SUPERSEDED)  # what prune strips
OUTBOX_OPEN = (OutboxState.PENDING, OutboxState.DEAD)  # every other state is settled
INBOX_SETTLED = (InboxState.APPLIED, InboxState.ACKNOWLEDGED, InboxState.REJECTED)
INBOX_OPEN = (InboxState.RECEIVED, InboxState.CONFLICT)
REPLACING_KINDS = (OutboxKind.DOSSIER, OutboxKind.STATUS)  # a newer version supersedes the older

# column -> the enum its CHECK constraint holds it to (rev. 0007)
CHECKED_COLUMNS: dict[tuple[str, str], type[StrEnum]] = {
    ("outbox", "state"): OutboxState,
    ("outbox", "kind"): OutboxKind,
    ("inbox", "state"): InboxState,
    ("inbox", "kind"): InboxKind,
}


def check_name(table: str, column: str) -> str:
    return f"ck_{table}_{column}"


def check_sql(column: str, enum: type[StrEnum]) -> str:
    """The CHECK constraint's condition: the column is one of the enum's values."""
    return f"{column} IN ({', '.join(repr(str(m.value)) for m in enum)})"


class RunStatus(StrEnum):
    """The statuses of a run every job shares; a job may finish with its own besides (a
    reconciliation's ``mismatches``), so this column has no CHECK constraint."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
