"""Claims and owners, for replicas sharing one PostgreSQL state.

A dossier is claimed by one replica at a time (``claimed_by``; valid until ``claim_until``, then
as long as the replica's row in ``replica_lease`` is renewed), so its entries go out from one
process and in order; an inbox event is claimed while it is applied; a run records the replica
that runs it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("dossier_state", "inbox"):
        op.add_column(table, sa.Column("claimed_by", sa.String(), nullable=True))
        op.add_column(table, sa.Column("claim_until", sa.Float(), nullable=True))
    op.create_index("ix_dossier_state_claimed_by", "dossier_state", ["claimed_by"])
    op.add_column("run", sa.Column("owner", sa.String(), nullable=True))
    op.create_table(
        "replica_lease",
        sa.Column("replica", sa.String(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("renewed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("replica"),
    )


def downgrade() -> None:
    op.drop_table("replica_lease")
    op.drop_column("run", "owner")
    op.drop_index("ix_dossier_state_claimed_by", table_name="dossier_state")
    for table in ("inbox", "dossier_state"):
        op.drop_column(table, "claim_until")
        op.drop_column(table, "claimed_by")
