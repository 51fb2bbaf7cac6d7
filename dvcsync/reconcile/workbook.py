"""The run's working database: findings and read-back results on disk, not in memory.

A first reconciliation after a long outage may find most of a province's dossiers stale; the
items, the dossiers to read back and the portal's answers live in a private SQLite file beside
the reports. It also makes the portal read-back resumable: an interrupted run leaves the file
with the answers it got, and the next run with the same period and filters asks only for the
rest. A finished run removes it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .categories import CATEGORIES, KEYS
from .report import AGE_BUCKETS, Item, age_bucket

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS item (
    category TEXT NOT NULL,
    ma_ho_so TEXT NOT NULL,
    ord INTEGER NOT NULL,
    province TEXT, state TEXT, portal TEXT,
    since TEXT, repair TEXT, agency TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (category, ma_ho_so)
);
CREATE TABLE IF NOT EXISTS candidate (
    ma_ho_so TEXT PRIMARY KEY,
    in_province INTEGER NOT NULL,
    info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS previous (
    category TEXT NOT NULL,
    ma_ho_so TEXT NOT NULL,
    since TEXT,
    PRIMARY KEY (category, ma_ho_so)
);
CREATE TABLE IF NOT EXISTS readback (
    ma_ho_so TEXT PRIMARY KEY,
    found INTEGER NOT NULL,
    body TEXT
);
"""

_ORDER = {key: n for n, key in enumerate(KEYS)}


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _load(value: str | None) -> Any:
    return None if value is None else json.loads(value)


class WorkBook:
    def __init__(self, path: Path, signature: str) -> None:
        """Open the working file; one left by a run with another ``signature`` (period, filters,
        sample) is started afresh, one left by an interrupted run like this one is resumed."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        if not path.exists():  # owner-only: its findings may hold names in clear (--show-personal)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # SQLite's -wal follows its mode
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'signature'").fetchone()
        self.resumed = row is not None and row[0] == signature
        if not self.resumed:
            self.db.executescript("DELETE FROM candidate; DELETE FROM readback; DELETE FROM meta;")
            self.db.execute("INSERT INTO meta VALUES ('signature', ?)", (signature,))
        # findings are always recomputed: only the portal's answers are worth keeping
        self.db.execute("DELETE FROM item")
        self.db.execute("DELETE FROM previous")
        self._pending: list[tuple[Any, ...]] = []

    # ------------------------------------------------------------------ items

    def add(self, item: Item) -> None:
        """One finding. The same dossier found twice in one category (two payments, say) keeps
        one item: the evidence lists of the second are appended to the first's."""
        self._pending.append(
            (
                item.category,
                item.ma_ho_so or "",
                _ORDER[item.category],
                _dump(item.province),
                _dump(item.state),
                _dump(item.portal),
                item.since,
                item.repair,
                item.agency,
            )
        )
        if len(self._pending) >= 2000:
            self.flush()

    def finding(
        self,
        category: str,
        key: str | None,
        province: dict[str, Any] | None = None,
        state: dict[str, Any] | None = None,
        portal: dict[str, Any] | None = None,
        since: str | None = None,
    ) -> None:
        """A finding of one comparison, with the category's repair command (if it has one)."""
        self.add(Item(category, key, province, state, portal, since, CATEGORIES[category].repair_command))

    def flush(self) -> None:
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        self.db.execute("BEGIN")
        for row in rows:
            existing = self.db.execute(
                "SELECT province, state, portal, since FROM item WHERE category = ? AND ma_ho_so = ?",
                row[:2],
            ).fetchone()
            if existing is None:
                self.db.execute("INSERT INTO item VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
                continue
            merged = [_merge(_load(old), _load(new)) for old, new in zip(existing[:3], row[3:6], strict=True)]
            since = min(s for s in (existing[3], row[6]) if s) if (existing[3] or row[6]) else None
            self.db.execute(
                "UPDATE item SET province = ?, state = ?, portal = ?, since = ?"
                " WHERE category = ? AND ma_ho_so = ?",
                (*(_dump(m) for m in merged), since, *row[:2]),
            )
        self.db.execute("COMMIT")

    def drop(self, category: str, keys: Iterable[str]) -> int:
        """Remove items implied by a more specific finding (e.g. stale under a dead letter)."""
        self.flush()
        dropped = 0
        self.db.execute("BEGIN")
        for key in keys:
            dropped += self.db.execute(
                "DELETE FROM item WHERE category = ? AND ma_ho_so = ?", (category, key)
            ).rowcount
        self.db.execute("COMMIT")
        return dropped

    def keys_of(self, category: str) -> Iterator[str]:
        self.flush()
        for (key,) in self.db.execute(
            "SELECT ma_ho_so FROM item WHERE category = ? ORDER BY ma_ho_so", (category,)
        ):
            yield key

    def items(self) -> Iterator[Item]:
        """Every item, by category order then dossier code (the renderers rely on the grouping);
        ``since`` is the earlier of the evidence's and the previous report's."""
        self.flush()
        cursor = self.db.execute(
            "SELECT i.category, i.ma_ho_so, i.province, i.state, i.portal,"
            " CASE WHEN p.since IS NOT NULL AND (i.since IS NULL OR p.since < i.since)"
            " THEN p.since ELSE i.since END, i.repair"
            " FROM item i LEFT JOIN previous p ON p.category = i.category AND p.ma_ho_so = i.ma_ho_so"
            " ORDER BY i.ord, i.ma_ho_so"
        )
        for category, key, province, state, portal, since, repair in cursor:
            yield Item(category, key or None, _load(province), _load(state), _load(portal), since, repair)

    # ------------------------------------------------------------------ the previous report

    def load_previous(self, items: Iterable[Item]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT OR REPLACE INTO previous VALUES (?, ?, ?)",
            ((i.category, i.ma_ho_so or "", i.since) for i in items),
        )
        self.db.execute("COMMIT")

    def new_since_last(self) -> list[dict[str, str | None]]:
        self.flush()
        rows = self.db.execute(
            "SELECT category, ma_ho_so FROM item i WHERE NOT EXISTS (SELECT 1 FROM previous p"
            " WHERE p.category = i.category AND p.ma_ho_so = i.ma_ho_so) ORDER BY ord, ma_ho_so"
        )
        return [{"category": c, "ma_ho_so": k or None} for c, k in rows]

    def resolved_since_last(self) -> list[dict[str, str | None]]:
        self.flush()
        rows = self.db.execute(
            "SELECT category, ma_ho_so FROM previous p WHERE NOT EXISTS (SELECT 1 FROM item i"
            " WHERE p.category = i.category AND p.ma_ho_so = i.ma_ho_so) ORDER BY category, ma_ho_so"
        )
        order = {key: n for n, key in enumerate(KEYS)}
        out = [{"category": c, "ma_ho_so": k or None} for c, k in rows]
        return sorted(out, key=lambda d: (order.get(str(d["category"]), 99), d["ma_ho_so"] or ""))

    def counts(self) -> dict[str, int]:
        self.flush()
        counts = dict.fromkeys(KEYS, 0)
        for category, n in self.db.execute("SELECT category, COUNT(*) FROM item GROUP BY category"):
            counts[category] = int(n)
        return counts

    def by_agency(self) -> dict[str, int]:
        self.flush()
        rows = self.db.execute(
            "SELECT agency, COUNT(*) AS n FROM item GROUP BY agency ORDER BY n DESC, agency"
        ).fetchall()
        return {str(agency or "(không rõ)"): int(n) for agency, n in rows}

    def by_age(self, now: Any) -> list[int]:
        self.flush()
        buckets = [0] * len(AGE_BUCKETS)
        for (since,) in self.db.execute("SELECT since FROM item"):
            buckets[age_bucket(Item("stale", None, since=since).age_days(now))] += 1
        return buckets

    # ------------------------------------------------------------------ read-back

    def add_candidates(self, rows: Iterable[tuple[str, bool, dict[str, Any]]]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT OR REPLACE INTO candidate VALUES (?, ?, ?)",
            ((key, int(present), _dump(info)) for key, present, info in rows),
        )
        self.db.execute("COMMIT")

    def candidate_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM candidate").fetchone()[0])

    def keep_sample(self, n: int, seed: int) -> None:
        """Keep a random ``n`` of the candidates (reproducible for a seed)."""
        keys = [k for (k,) in self.db.execute("SELECT ma_ho_so FROM candidate ORDER BY ma_ho_so")]
        if len(keys) <= n:
            return
        import random

        chosen = set(random.Random(seed).sample(keys, n))
        self.db.execute("BEGIN")
        self.db.executemany(
            "DELETE FROM candidate WHERE ma_ho_so = ?", ((k,) for k in keys if k not in chosen)
        )
        self.db.execute("COMMIT")

    def unread(self, limit: int, after: str = "") -> list[tuple[str, bool, dict[str, Any]]]:
        """The next ``limit`` candidates without an answer, by code after ``after``: keyset paging,
        so each call costs the same at the millionth candidate as at the first."""
        rows = self.db.execute(
            "SELECT c.ma_ho_so, c.in_province, c.info FROM candidate c WHERE c.ma_ho_so > ?"
            " AND NOT EXISTS (SELECT 1 FROM readback r WHERE r.ma_ho_so = c.ma_ho_so)"
            " ORDER BY c.ma_ho_so LIMIT ?",
            (after, limit),
        ).fetchall()
        return [(key, bool(present), _load(info)) for key, present, info in rows]

    def read_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM readback").fetchone()[0])

    def record_reads(self, answers: Iterable[tuple[str, dict[str, Any] | None]]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT OR REPLACE INTO readback VALUES (?, ?, ?)",
            ((key, int(body is not None), _dump(body)) for key, body in answers),
        )
        self.db.execute("COMMIT")

    def reads(
        self, batch: int = 500
    ) -> Iterator[list[tuple[str, bool, dict[str, Any], dict[str, Any] | None]]]:
        """The candidates with the portal's answer, ``batch`` at a time, in dossier order."""
        last = ""
        while True:
            rows = self.db.execute(
                "SELECT c.ma_ho_so, c.in_province, c.info, r.body FROM candidate c"
                " JOIN readback r ON r.ma_ho_so = c.ma_ho_so WHERE c.ma_ho_so > ?"
                " ORDER BY c.ma_ho_so LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            yield [(key, bool(present), _load(info), _load(body)) for key, present, info, body in rows]
            last = rows[-1][0]

    def close(self, *, finished: bool) -> None:
        self.flush()
        self.db.close()
        if finished:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def _merge(old: Any, new: Any) -> Any:
    """Evidence of two findings of one item: lists concatenate, dicts merge key by key."""
    if old is None:
        return new
    if new is None or old == new:
        return old
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for key, value in new.items():
            out[key] = _merge(out.get(key), value) if key in out else value
        return out
    if isinstance(old, list):
        return [*old, *(new if isinstance(new, list) else [new])]
    return [old, *(new if isinstance(new, list) else [new])]


__all__ = ["WorkBook"]
