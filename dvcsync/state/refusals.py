"""Refused inbound bodies, kept as bounded aggregates instead of one row each.

A forged or malformed callback is the caller's data, not the province's: what an operator needs is
who keeps sending what kind of refusal, how often and since when, plus a few examples to compare
with the sender's logs. So each (kind, caller, reason) is one row with a count, first and last
seen, the latest reason, and digests of the first ``SAMPLE_CAP`` bodies (codes kept, other values
masked). Callers are bounded too: an IPv6 caller counts by its /64, and past ``CALLER_CAP`` rows
a new caller is counted under ``*``. ``StateStore.prune`` deletes the rows not seen for
``keep_days``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dvcsync.mapping import mask

from .prune import STUB_KEYS
from .reads import refusal_totals
from .store import StateStore
from .tables import REFUSAL_T

SAMPLE_CAP = 5
CALLER_CAP = 1000
ANY_CALLER = "*"
_SAMPLE_KEYS = 30  # keys one sample keeps at most
_VALUE_CHARS = 64  # characters a kept code keeps at most


@dataclass(frozen=True)
class Refusal:
    kind: str
    caller: str
    reason: str
    count: int
    first_seen: float
    last_seen: float
    last_error: str | None
    samples: list[dict[str, Any]]


def caller_key(address: str | None) -> str:
    """What refusals are counted by: the address, an IPv6 one by its /64 (one host holds many)."""
    if not address:
        return "?"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def sample_of(raw: bytes, body: Any, now: float) -> dict[str, Any]:
    """A refused body as kept: its size and hash, the allow-listed codes (``STUB_KEYS``, cut to
    ``_VALUE_CHARS``) and every other top-level value masked, never a name or number in clear."""
    sample: dict[str, Any] = {"at": now, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    if isinstance(body, dict):
        fields: dict[str, Any] = {}
        for key, value in list(body.items())[:_SAMPLE_KEYS]:
            name = str(key)[:_VALUE_CHARS]
            if name in STUB_KEYS and isinstance(value, str | int | float | bool):
                fields[name] = value[:_VALUE_CHARS] if isinstance(value, str) else value
            elif isinstance(value, str | int | float):
                fields[name] = mask(str(value)[:_VALUE_CHARS])
            else:
                fields[name] = f"<{type(value).__name__}>"
        sample["fields"] = fields
    elif body is not None:
        sample["type"] = type(body).__name__
    return sample


class Refusals:
    """The ``inbound_refusal`` table of one state."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def record(
        self,
        kind: str,
        caller: str,
        reason: str,
        error: str,
        sample: dict[str, Any],
        now: float | None = None,
    ) -> int:
        """Count one refusal; the new count of its (kind, caller, reason). Concurrent replicas
        and threads each add one (an upsert on the unique key, the row locked until commit)."""
        now = time.time() if now is None else now
        error = error[:500]
        sqlite = self.store.engine.dialect.name == "sqlite"
        # two-argument min/max on SQLite, least/greatest on PostgreSQL: replicas' clocks differ
        earliest, latest = (func.min, func.max) if sqlite else (func.least, func.greatest)
        with self.store.begin() as conn:
            caller = self._bounded(conn, kind, caller, reason)
            insert_ = sqlite_insert if sqlite else pg_insert
            statement = insert_(REFUSAL_T).values(
                kind=kind,
                caller=caller,
                reason=reason,
                count=1,
                first_seen=now,
                last_seen=now,
                last_error=error,
                samples="[]",
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["kind", "caller", "reason"],
                    set_={
                        "count": REFUSAL_T.c["count"] + 1,
                        "first_seen": earliest(REFUSAL_T.c.first_seen, now),
                        "last_seen": latest(REFUSAL_T.c.last_seen, now),
                        "last_error": error,
                    },
                )
            )
            key = and_(REFUSAL_T.c.kind == kind, REFUSAL_T.c.caller == caller, REFUSAL_T.c.reason == reason)
            count, samples = conn.execute(select(REFUSAL_T.c["count"], REFUSAL_T.c.samples).where(key)).one()
            kept = json.loads(samples)
            if len(kept) < SAMPLE_CAP:
                kept.append(sample)
                conn.execute(
                    update(REFUSAL_T).where(key).values(samples=json.dumps(kept, ensure_ascii=False))
                )
        return int(count)

    def _bounded(self, conn: Any, kind: str, caller: str, reason: str) -> str:
        """``caller``, or ``*`` when it has no row yet and the table already holds ``CALLER_CAP``."""
        known = conn.execute(
            select(REFUSAL_T.c.id).where(
                and_(REFUSAL_T.c.kind == kind, REFUSAL_T.c.caller == caller, REFUSAL_T.c.reason == reason)
            )
        ).first()
        if known is not None:
            return caller
        rows = conn.execute(select(func.count()).select_from(REFUSAL_T)).scalar_one()
        return caller if rows < CALLER_CAP else ANY_CALLER

    def list(self, limit: int = 200) -> list[Refusal]:
        """The aggregates, the most recently seen first."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(REFUSAL_T).order_by(REFUSAL_T.c.last_seen.desc()).limit(limit)).all()
        return [
            Refusal(
                r.kind,
                r.caller,
                r.reason,
                int(r._mapping["count"]),
                float(r.first_seen),
                float(r.last_seen),
                r.last_error,
                json.loads(r.samples),
            )
            for r in rows
        ]

    def totals(self) -> dict[tuple[str, str], int]:
        """Refusals kept, by (kind, reason), over every caller."""
        return refusal_totals(self.store.engine)
