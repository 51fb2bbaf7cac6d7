"""The satisfaction figures the portal accepted (``satisfaction_sent``), by month, procedure and
agency: what ``dvcsync.sync.satisfaction`` compares with before sending again."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from .store import StateStore
from .tables import SENT_T


def sent_hashes(store: StateStore, months: Collection[str]) -> dict[tuple[str, str, str], str]:
    """The hash of the figures last accepted, by (month, procedure, agency), of these months."""
    with store.begin() as conn:
        rows = conn.execute(
            select(SENT_T.c.month, SENT_T.c.procedure, SENT_T.c.agency, SENT_T.c.figures_hash).where(
                SENT_T.c.month.in_(list(months))
            )
        ).all()
    return {(m, p, a): h for m, p, a, h in rows}


def upsert_sent(store: StateStore, rows: list[dict[str, Any]]) -> None:
    """Keep these accepted figures in one transaction: a key sent before counts one more send
    and keeps the new figures."""
    if not rows:
        return
    with store.begin() as conn:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(SENT_T)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["month", "procedure", "agency"],
                set_={
                    "figures_hash": stmt.excluded.figures_hash,
                    "figures": stmt.excluded.figures,
                    "sends": SENT_T.c.sends + 1,
                    "sent_at": stmt.excluded.sent_at,
                },
            ),
            rows,
        )
