"""The adapter's own tables. State is committed together with the work it describes (one
transaction per page enqueued, one per batch acknowledged), so a crash never loses or repeats.

A change here needs a migration in ``migrations/versions`` too (deployed databases are only ever
changed by migrations); a test compares the two."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .kinds import (
    CHECKED_COLUMNS,
    InboxKind,
    InboxState,
    OutboxKind,
    OutboxState,
    RunStatus,
    check_name,
    check_sql,
)


def _one_of(enum: type[StrEnum]) -> str:
    """A column's description: the values it may hold (its CHECK constraint holds it to them)."""
    return " | ".join(member.value for member in enum)


def _checks(table: str) -> list[CheckConstraint]:
    return [
        CheckConstraint(check_sql(column, enum), name=check_name(table, column))
        for (name, column), enum in CHECKED_COLUMNS.items()
        if name == table
    ]


class DossierState(SQLModel, table=True):
    """What the portal holds of one dossier, as far as the adapter knows."""

    __tablename__ = "dossier_state"
    __table_args__ = (Index("ix_dossier_state_claimed_by", "claimed_by"),)  # rev. 0005

    record_key: str = Field(primary_key=True, description="MaHoSo")
    source_id: int | None = None
    source_updated_at: str | None = None
    payload_hash: str | None = Field(default=None, description="hash of the last payload enqueued")
    acked_hash: str | None = Field(default=None, description="hash of the last payload the portal accepted")
    on_portal: bool = Field(default=False, description="the portal has it: send isUpdating True")
    status: str | None = Field(default=None, description="TrangThaiHoSo of the last payload enqueued")
    updated_at: float = 0.0
    claimed_by: str | None = Field(default=None, description="the replica delivering its entries (rev. 0005)")
    claim_until: float | None = Field(
        default=None, description="the claim holds until then, and after it while its replica's lease does"
    )


class StepState(SQLModel, table=True):
    """One history entry (processing step): enqueued once, acknowledged once."""

    __tablename__ = "step_state"

    record_key: str = Field(primary_key=True)
    step_key: str = Field(primary_key=True, description="the step's identity in the source")
    entry_hash: str
    acked: bool = False


class OutboxEntry(SQLModel, table=True):
    """One effect to deliver. ``idem_key`` makes enqueueing the same effect twice a no-op."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("idem_key", name="uq_outbox_idem_key"),
        Index("ix_outbox_due", "state", "next_attempt_at"),
        Index("ix_outbox_record", "record_key"),
        Index("ix_outbox_settled", "state", "updated_at"),  # prune and counts by state (rev. 0002)
        *_checks("outbox"),  # rev. 0007
    )

    id: int | None = Field(default=None, primary_key=True)
    idem_key: str
    kind: str = Field(description=_one_of(OutboxKind))
    record_key: str
    payload: str = Field(sa_column=Column(Text, nullable=False), description="wire JSON")
    payload_hash: str
    state: str = Field(default=OutboxState.PENDING.value, description=_one_of(OutboxState))
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    verify_first: bool = Field(
        default=False, description="it may have reached the portal unanswered: read back before re-sending"
    )
    failing_since: float | None = Field(
        default=None, description="its first failed attempt (give_up_after counts from it; rev. 0006)"
    )
    created_at: float = 0.0
    updated_at: float = 0.0


class Cursor(SQLModel, table=True):
    """How far a source has been read: the (updated_at, id) of the last row taken."""

    __tablename__ = "cursor"

    name: str = Field(primary_key=True)
    watermark: str = ""
    last_key: int = 0
    updated_at: float = 0.0


class Quarantine(SQLModel, table=True):
    """A record that could not be mapped, with the reasons; cleared when it maps again."""

    __tablename__ = "quarantine"

    mapping: str = Field(primary_key=True)
    record_key: str = Field(primary_key=True)
    errors: str = Field(sa_column=Column(Text, nullable=False), description="JSON list of field errors")
    source_updated_at: str | None = None
    first_seen: float = 0.0
    last_seen: float = 0.0


class Run(SQLModel, table=True):
    """One job run, for `dvcsync status` and the operators' history."""

    __tablename__ = "run"

    id: int | None = Field(default=None, primary_key=True)
    job: str
    started_at: float
    finished_at: float | None = None
    status: str = Field(default=RunStatus.RUNNING.value, description="running | ok | failed | a job's own")
    counts: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    error: str | None = None
    owner: str | None = Field(default=None, description="the replica that ran it (rev. 0005)")


class ReplicaLease(SQLModel, table=True):
    """A replica that holds dossiers, alive while its lease is renewed (rev. 0005). One row a
    replica, so that renewing it never touches (or waits for) the dossiers' rows."""

    __tablename__ = "replica_lease"

    replica: str = Field(primary_key=True, description="host:pid:random (its sessions' application_name)")
    lease_until: float
    renewed_at: float


class InboxEvent(SQLModel, table=True):
    """One event received from the national side, kept once by its natural key (``MaHoSo`` of a
    portal dossier, ``MaThamChieu`` of a payment result): received twice is applied once."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("kind", "natural_key", name="uq_inbox_natural_key"),
        Index("ix_inbox_settled", "state", "updated_at"),  # prune and counts by state (rev. 0002)
        *_checks("inbox"),  # rev. 0007
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(description=_one_of(InboxKind))
    natural_key: str
    payload: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default=InboxState.RECEIVED.value, description=_one_of(InboxState))
    local_key: str | None = Field(default=None, description="the province's record it became")
    error: str | None = None
    received_at: float = 0.0
    updated_at: float = 0.0
    claimed_by: str | None = Field(default=None, description="the replica applying it (rev. 0005)")
    claim_until: float | None = None


class Conflict(SQLModel, table=True):
    """A change from one side that contradicts the field's owner: kept for the reconciler, never
    applied silently (e.g. a portal withdrawal of a dossier the province has already finished)."""

    __tablename__ = "conflict"
    __table_args__ = (UniqueConstraint("record_key", "field", "portal_value", name="uq_conflict"),)

    id: int | None = Field(default=None, primary_key=True)
    record_key: str
    field: str
    province_value: str | None = None
    portal_value: str | None = None
    note: str = ""
    detected_at: float = 0.0


# ---------------------------------------------------------------- the national catalogue (rev. 0003)


class CataloguePull(SQLModel, table=True):
    """One read of the national catalogue: when, how much, and what changed since the one before."""

    __tablename__ = "catalogue_pull"

    id: int | None = Field(default=None, primary_key=True)
    pulled_at: float
    catalogue_date: str = Field(description="the local date of the pull (ISO): the catalogue as of then")
    procedures: int = 0
    agencies: int = 0
    sectors: int = 0
    changes: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))


class CatalogueProcedure(SQLModel, table=True):
    """A national procedure as the last pull read it (``LayThuTuc``), kept when it leaves the list."""

    __tablename__ = "catalogue_procedure"

    code: str = Field(primary_key=True, description="MATTHC")
    name: str
    active: bool = Field(default=True, description="listed and TRANGTHAI 1; False once withdrawn")
    status: str | None = Field(default=None, description="TRANGTHAI as read")
    sector_code: str | None = None
    sector_name: str | None = None
    fees: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    days: float | None = None
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    first_pull: int = 0
    last_pull: int = 0
    changed_at: float = 0.0


class CatalogueAgency(SQLModel, table=True):
    """A national agency (``LayDanhMucCoQuan``), with its end date once abolished."""

    __tablename__ = "catalogue_agency"

    code: str = Field(primary_key=True, description="MADONVI")
    name: str
    level: str | None = Field(default=None, description="CAPDONVI")
    active: bool = True
    valid_to: str | None = Field(default=None, description="NGAYHETHIEULUC when abolished")
    first_pull: int = 0
    last_pull: int = 0
    changed_at: float = 0.0


class CatalogueSector(SQLModel, table=True):
    """A national sector (``LayDanhMucLinhVuc``)."""

    __tablename__ = "catalogue_sector"

    code: str = Field(primary_key=True, description="MALINHVUC")
    name: str
    industry: str | None = Field(default=None, description="MANGANH")
    active: bool = True
    last_pull: int = 0


# ---------------------------------------------------------------- satisfaction figures (rev. 0004)


class SatisfactionSent(SQLModel, table=True):
    """The ``DongBoDanhGia`` figures last accepted by the portal for one month, procedure and
    agency: a re-run compares the hash and sends nothing; other figures (a rating added or changed
    later) are re-sent, and the portal replaces what it held under the same key."""

    __tablename__ = "satisfaction_sent"

    month: str = Field(primary_key=True, description="the month rated, YYYY-MM")
    procedure: str = Field(primary_key=True, description="MaThuTuc")
    agency: str = Field(primary_key=True, description="Madonvi")
    figures_hash: str
    figures: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    sends: int = Field(default=1, description="how many times these keys were sent (1 + corrections)")
    sent_at: float = 0.0


# ---------------------------------------------------------------- the state's identity (rev. 0006)


class StateIdentity(SQLModel, table=True):
    """Whom this state serves (source, portal, madonvi, dstcode, tenant), written when it is
    created or first used: a state pointed at another province or portal by mistake is refused
    instead of taken for a first contact with everything."""

    __tablename__ = "state_identity"

    key: str = Field(primary_key=True)
    value: str
    recorded_at: float = 0.0


class InboundRefusal(SQLModel, table=True):
    """Inbound bodies refused before anything was applied (a bad signature, an unknown reference,
    a malformed body), kept as one row per kind, caller and reason (rev. 0006): how many, first and
    last seen, the latest reason in full and the first few bodies' digests with personal data
    masked. A flood of distinct forged callbacks grows a count, never the state; ``db prune``
    deletes the rows not seen for ``keep_days``."""

    __tablename__ = "inbound_refusal"
    __table_args__ = (
        UniqueConstraint("kind", "caller", "reason", name="uq_inbound_refusal"),
        Index("ix_inbound_refusal_last_seen", "last_seen"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(description="payment_result | ...: what was refused")
    caller: str = Field(description="the caller's address (an IPv6 caller's /64), or * past the cap")
    reason: str = Field(description="malformed | bad_signature | wrong_partner | unknown_reference | ...")
    count: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    last_error: str | None = Field(default=None, description="the latest refusal's reason, as answered")
    samples: str = Field(
        sa_column=Column(Text, nullable=False), description="JSON list: the first bodies' masked digests"
    )
