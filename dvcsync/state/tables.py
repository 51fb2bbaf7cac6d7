"""The state's tables as SQLAlchemy ``Table`` objects, for the modules of this package only:
nothing outside ``dvcsync.state`` imports them (it calls the ``StateStore``'s named operations or
the read functions of ``dvcsync.state.reads``)."""

from __future__ import annotations

from sqlalchemy import Table

from .models import (
    CatalogueAgency,
    CatalogueProcedure,
    CataloguePull,
    CatalogueSector,
    Conflict,
    Cursor,
    DossierState,
    InboundRefusal,
    InboxEvent,
    OutboxEntry,
    Quarantine,
    ReplicaLease,
    Run,
    SatisfactionSent,
    StateIdentity,
    StepState,
)


def _table(model: type) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


DOSSIER_T = _table(DossierState)
STEP_T = _table(StepState)
OUTBOX_T = _table(OutboxEntry)
CURSOR_T = _table(Cursor)
QUARANTINE_T = _table(Quarantine)
RUN_T = _table(Run)
INBOX_T = _table(InboxEvent)
CONFLICT_T = _table(Conflict)
LEASE_T = _table(ReplicaLease)
IDENTITY_T = _table(StateIdentity)
REFUSAL_T = _table(InboundRefusal)
SENT_T = _table(SatisfactionSent)
CATALOGUE_TABLES = (
    _table(CataloguePull),
    _table(CatalogueProcedure),
    _table(CatalogueAgency),
    _table(CatalogueSector),
)
STATE_TABLES = (
    DOSSIER_T,
    STEP_T,
    OUTBOX_T,
    CURSOR_T,
    QUARANTINE_T,
    RUN_T,
    INBOX_T,
    CONFLICT_T,
    *CATALOGUE_TABLES,
    SENT_T,
    LEASE_T,
    IDENTITY_T,
    REFUSAL_T,
)
