"""Satisfaction figures: what ``DongBoDanhGia`` last delivered per month, procedure and agency.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "satisfaction_sent",
        sa.Column("month", sa.String(), nullable=False),
        sa.Column("procedure", sa.String(), nullable=False),
        sa.Column("agency", sa.String(), nullable=False),
        sa.Column("figures_hash", sa.String(), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("month", "procedure", "agency"),
    )


def downgrade() -> None:
    op.drop_table("satisfaction_sent")
