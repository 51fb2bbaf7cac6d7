"""CHECK constraints on the persisted states and kinds of the outbox and the inbox: a value
outside ``dvcsync.state.kinds`` is refused by the database instead of leaving a row that no
query selects again. The values are written out here, as of this revision (a later change of
the enums needs a revision of its own); a test compares them with the enums.

SQLite cannot add a constraint to a table: batch mode copies each table into a new one with
it. A state holding a value outside these lists is refused (the copy fails, the transaction
is rolled back and the state is left as it was).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    "outbox": {
        "state": ("pending", "done", "dead", "superseded", "discarded"),
        "kind": ("dossier", "steps", "status"),
    },
    "inbox": {
        "state": ("received", "applied", "acknowledged", "rejected", "conflict"),
        "kind": (
            "portal_dossier",
            "promotion",
            "payment_result",
            "withdrawal",
            "attachment",
        ),
    },
}


def _condition(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for column, values in columns.items():
                batch.create_check_constraint(f"ck_{table}_{column}", _condition(column, values))


def downgrade() -> None:
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_constraint(f"ck_{table}_{column}", type_="check")
