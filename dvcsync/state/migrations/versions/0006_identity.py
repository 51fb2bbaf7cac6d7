"""The state's identity: the province source, portal, madonvi, dstcode and tenant it serves;
and when an outbox entry first failed (``[portal] give_up_after`` counts from there, not from its
enqueueing: ``dvcsync adopt`` enqueues days before the first push); refused inbound bodies as
bounded aggregates per kind, caller and reason (``inbound_refusal``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "state_identity",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("recorded_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("failing_since", sa.Float(), nullable=True))
    # refused inbound bodies as bounded aggregates: one row per kind, caller and reason
    op.create_table(
        "inbound_refusal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("caller", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("samples", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "caller", "reason", name="uq_inbound_refusal"),
    )
    op.create_index("ix_inbound_refusal_last_seen", "inbound_refusal", ["last_seen"])


def downgrade() -> None:
    op.drop_index("ix_inbound_refusal_last_seen", table_name="inbound_refusal")
    op.drop_table("inbound_refusal")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("failing_since")
    op.drop_table("state_identity")
