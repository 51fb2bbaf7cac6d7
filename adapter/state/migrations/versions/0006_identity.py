"""The state's identity: the province source, portal, madonvi, dstcode and tenant it serves;
and when an outbox entry first failed (``[portal] give_up_after`` counts from there, not from its
enqueueing: ``dvcsync adopt`` enqueues days before the first push).

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


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("failing_since")
    op.drop_table("state_identity")
