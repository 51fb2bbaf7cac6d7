"""What the portal's side changed: dossiers it holds by status, conflicts kept for the
reconciler, and whom the state serves."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    and_,
    delete,
    insert,
    select,
)

from ._base import StoreBase
from .tables import CONFLICT_T, DOSSIER_T, IDENTITY_T


class ConflictOps(StoreBase):
    """The state's identity, the portal's side of dossiers and the conflicts kept."""

    def identity(self) -> dict[str, str]:
        """Whom this state serves, as recorded (empty for a state made before rev. 0006)."""
        with self.engine.connect() as conn:
            return {row.key: row.value for row in conn.execute(select(IDENTITY_T.c.key, IDENTITY_T.c.value))}

    def record_identity(self, values: dict[str, str], *, replace: bool = False) -> dict[str, str]:
        """Record the keys not recorded yet (all of them with ``replace``, `dvcsync db rebind`);
        returns the identity as it stands. Two processes binding at once keep the first."""
        now = time.time()
        with self.engine.begin() as conn:
            held = {row.key: row.value for row in conn.execute(select(IDENTITY_T.c.key, IDENTITY_T.c.value))}
            if replace:
                conn.execute(delete(IDENTITY_T))
                held = {}
            fresh = [{"key": k, "value": v, "recorded_at": now} for k, v in values.items() if k not in held]
            if fresh:
                conn.execute(insert(IDENTITY_T), fresh)
            return held | {row["key"]: row["value"] for row in fresh}

    # ------------------------------------------------------------------ cursor

    def on_portal_in(self, statuses: Iterable[str], after: str = "", limit: int = 10_000) -> list[str]:
        """Dossiers the portal holds whose last status sent is one of ``statuses``, by key after
        ``after`` (a rotating check reads a slice a cycle)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(DOSSIER_T.c.record_key)
                .where(
                    and_(
                        DOSSIER_T.c.on_portal.is_(True),
                        DOSSIER_T.c.status.in_(list(statuses)),
                        DOSSIER_T.c.record_key > after,
                    )
                )
                .order_by(DOSSIER_T.c.record_key)
                .limit(limit)
            )
            return [row[0] for row in rows]

    def record_conflict(
        self, record_key: str, field: str, province_value: str | None, portal_value: str | None, note: str
    ) -> bool:
        """Keep a conflict once (by record, field and the portal's value); True when new."""
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(CONFLICT_T.c.id).where(
                    and_(
                        CONFLICT_T.c.record_key == record_key,
                        CONFLICT_T.c.field == field,
                        CONFLICT_T.c.portal_value == portal_value,
                    )
                )
            ).first()
            if exists is not None:
                return False
            conn.execute(
                insert(CONFLICT_T).values(
                    record_key=record_key,
                    field=field,
                    province_value=province_value,
                    portal_value=portal_value,
                    note=note,
                    detected_at=time.time(),
                )
            )
            return True

    def conflicts(self, limit: int = 1000) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(CONFLICT_T).order_by(CONFLICT_T.c.id).limit(limit))
            return [dict(row._mapping) for row in rows]

    # ------------------------------------------------------------------ runs
