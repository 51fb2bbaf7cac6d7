"""The state store as the releases before migrations made it.

What ``create_all`` of the models made; such a database is stamped with this revision.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    _sync_tables()
    _bookkeeping_tables()


def _sync_tables() -> None:
    """The per-dossier records and the outbox."""
    op.create_table(
        "dossier_state",
        sa.Column("record_key", sa.String(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("source_updated_at", sa.String(), nullable=True),
        sa.Column("payload_hash", sa.String(), nullable=True),
        sa.Column("acked_hash", sa.String(), nullable=True),
        sa.Column("on_portal", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("record_key"),
    )
    op.create_table(
        "step_state",
        sa.Column("record_key", sa.String(), nullable=False),
        sa.Column("step_key", sa.String(), nullable=False),
        sa.Column("entry_hash", sa.String(), nullable=False),
        sa.Column("acked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("record_key", "step_key"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idem_key", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("record_key", sa.String(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("payload_hash", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("verify_first", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idem_key", name="uq_outbox_idem_key"),
    )
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"])
    op.create_index("ix_outbox_record", "outbox", ["record_key"])


def _bookkeeping_tables() -> None:
    """Cursors, quarantine, runs, the inbox and conflicts."""
    op.create_table(
        "cursor",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("watermark", sa.String(), nullable=False),
        sa.Column("last_key", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "quarantine",
        sa.Column("mapping", sa.String(), nullable=False),
        sa.Column("record_key", sa.String(), nullable=False),
        sa.Column("errors", sa.Text(), nullable=False),
        sa.Column("source_updated_at", sa.String(), nullable=True),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("mapping", "record_key"),
    )
    op.create_table(
        "run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("natural_key", sa.String(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("local_key", sa.String(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "natural_key", name="uq_inbox_natural_key"),
    )
    op.create_table(
        "conflict",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_key", sa.String(), nullable=False),
        sa.Column("field", sa.String(), nullable=False),
        sa.Column("province_value", sa.String(), nullable=True),
        sa.Column("portal_value", sa.String(), nullable=True),
        sa.Column("note", sa.String(), nullable=False),
        sa.Column("detected_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("record_key", "field", "portal_value", name="uq_conflict"),
    )


def downgrade() -> None:
    for table in ("conflict", "inbox", "run", "quarantine", "cursor"):
        op.drop_table(table)
    op.drop_index("ix_outbox_record", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    for table in ("outbox", "step_state", "dossier_state"):
        op.drop_table(table)
