"""The national catalogue: procedures, agencies and sectors as last pulled, and one row per pull.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalogue_pull",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pulled_at", sa.Float(), nullable=False),
        sa.Column("catalogue_date", sa.String(), nullable=False),
        sa.Column("procedures", sa.Integer(), nullable=False),
        sa.Column("agencies", sa.Integer(), nullable=False),
        sa.Column("sectors", sa.Integer(), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "catalogue_procedure",
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(), nullable=True),
        sa.Column("sector_code", sa.String(), nullable=True),
        sa.Column("sector_name", sa.String(), nullable=True),
        sa.Column("fees", sa.Text(), nullable=False),
        sa.Column("days", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("first_pull", sa.Integer(), nullable=False),
        sa.Column("last_pull", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "catalogue_agency",
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("level", sa.String(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("valid_to", sa.String(), nullable=True),
        sa.Column("first_pull", sa.Integer(), nullable=False),
        sa.Column("last_pull", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "catalogue_sector",
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("industry", sa.String(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_pull", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )


def downgrade() -> None:
    op.drop_table("catalogue_sector")
    op.drop_table("catalogue_agency")
    op.drop_table("catalogue_procedure")
    op.drop_table("catalogue_pull")
