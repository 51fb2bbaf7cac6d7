"""Indexes on (state, updated_at) of the outbox and the inbox.

The daily prune selects settled rows older than the retention, and monitoring counts by state:
both used to scan the whole tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_settled", "outbox", ["state", "updated_at"])
    op.create_index("ix_inbox_settled", "inbox", ["state", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_inbox_settled", table_name="inbox")
    op.drop_index("ix_outbox_settled", table_name="outbox")
