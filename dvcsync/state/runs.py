"""The job runs kept for `dvcsync status` and the operators' history."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import (
    insert,
    select,
    update,
)

from ._base import StoreBase
from .kinds import RunStatus
from .tables import RUN_T


class RunOps(StoreBase):
    """Job runs: started, finished with a status and counts, listed newest first."""

    def start_run(self, job: str, now: float | None = None) -> int:
        from .replica import replica_id

        with self.engine.begin() as conn:
            inserted = conn.execute(
                insert(RUN_T).values(
                    job=job,
                    started_at=time.time() if now is None else now,
                    status=RunStatus.RUNNING,
                    counts="{}",
                    owner=replica_id(),
                )
            ).inserted_primary_key
        assert inserted is not None
        return int(inserted[0])

    def finish_run(
        self, run_id: int, status: str, counts: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        values: dict[str, Any] = {"finished_at": time.time(), "status": status, "error": error}
        if counts is not None:
            values["counts"] = json.dumps(counts, ensure_ascii=False)
        with self.engine.begin() as conn:
            conn.execute(update(RUN_T).where(RUN_T.c.id == run_id).values(**values))

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = [
                dict(r._mapping) for r in conn.execute(select(RUN_T).order_by(RUN_T.c.id.desc()).limit(limit))
            ]
        for row in rows:
            row["counts"] = json.loads(row["counts"] or "{}")
        return rows
