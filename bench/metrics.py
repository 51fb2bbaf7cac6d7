"""What a scrape of /metrics costs on a large state: the backlog gauges against the old GROUP BY.

Builds a SQLite state (the migrated schema) with 1,000,000 outbox entries, almost all ``done``, a
few thousand ``pending`` / in flight / retrying / ``dead``; 100,000 inbox events (a few hundred
unsettled) and 500 quarantined records. Then times, median of 20, in the same process:
  (a) the old scrape: ``GROUP BY state, kind`` over the whole outbox, the inbox by kind and state,
      the quarantine count (the baseline);
  (b) the new scrape: the whole ``/metrics`` body (``generate_latest``: process metrics, counters
      and the backlog gauges read through the indexes);
both before and after ANALYZE (SQLite's statistics change its plans), and (c) the new queries
without their index hint after ANALYZE, to show why the hint is there.
Run: `.venv/bin/python -P bench/metrics.py [OUTBOX_ROWS] [--runs 20]` (timed runs of each, the
median kept); the load average is printed at the start and end. The issue's target: under 50 ms.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import text

from dvcsync.metrics import StateCollector, backlog_sql, exposition, exposition_registry
from dvcsync.state import Inbox, StateStore

sys.path.append(str(Path(__file__).resolve().parents[1]))  # `-P` leaves the repository off the path
from bench._runs import Load, add_runs_option

RUNS = 20


def build(path: Path, outbox_rows: int) -> dict[str, int]:
    store = StateStore(f"sqlite:///{path}")
    store.prepare()
    store.close()
    now = time.time()
    kinds = ("dossier", "steps", "steps", "status")
    counts = {"done": 0, "pending": 0, "in_flight": 0, "retry": 0, "dead": 0}

    def outbox_row(i: int) -> tuple[object, ...]:
        state, attempts, verify = "done", 1, 0
        if i % 1000 == 0:
            state, attempts = "dead", 8
        elif i % 500 == 0:
            state, attempts = "pending", 0
        elif i % 997 == 0:
            state, attempts, verify = "pending", 1, 1
        elif i % 991 == 0:
            state, attempts = "pending", 3
        label = "in_flight" if verify else "retry" if state == "pending" and attempts else state
        counts[label] += 1
        return (f"k{i}", kinds[i % 4], f"H40-{i // 4:08d}", "{}", "h", state, attempts, now, verify, now, now)

    with sqlite3.connect(path) as conn:  # one transaction: seconds, not minutes
        conn.executemany(
            "INSERT INTO outbox (idem_key, kind, record_key, payload, payload_hash, state, attempts,"
            " next_attempt_at, verify_first, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (outbox_row(i) for i in range(outbox_rows)),
        )
        conn.executemany(
            "INSERT INTO inbox (kind, natural_key, payload, state, received_at, updated_at)"
            " VALUES (?, ?, '{}', ?, ?, ?)",
            (
                (
                    ("portal_dossier", "payment_result")[i % 2],
                    f"N{i}",
                    "received" if i % 500 == 0 else "acknowledged",
                    now - 86_400 * 30,
                    now - 86_400 * 30 if i % 100 else now,
                )
                for i in range(100_000)
            ),
        )
        conn.executemany(
            "INSERT INTO quarantine (mapping, record_key, errors, first_seen, last_seen)"
            " VALUES ('dossier', ?, '[]', ?, ?)",
            ((f"Q{i}", now, now) for i in range(500)),
        )
    return counts


def median_ms(fn: Callable[[], object]) -> float:
    fn()  # warm: the first read pulls pages into the cache for every variant alike
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    global RUNS
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000, help="outbox entries")
    add_runs_option(parser, default=RUNS)
    args = parser.parse_args()
    rows, RUNS = args.rows, max(1, args.runs)
    load = Load("bench/metrics.py")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        started = time.perf_counter()
        counts = build(path, rows)
        print(f"built {rows:,} outbox entries {counts} in {time.perf_counter() - started:.1f} s")
        store = StateStore(f"sqlite:///{path}")
        inbox = Inbox(store)
        collector = StateCollector(store.engine)
        scraped: CollectorRegistry = exposition_registry(collector)
        unhinted = {
            k: v.replace(" INDEXED BY ix_outbox_due", "").replace(" INDEXED BY ix_inbox_settled", "")
            for k, v in backlog_sql("sqlite").items()
        }

        def old() -> object:
            return store.backlog(), inbox.counts(), store.count("quarantine")

        def new() -> bytes:
            return exposition(scraped)

        def backlog() -> object:
            return list(collector.collect())

        def new_unhinted() -> object:
            with store.engine.connect() as conn:
                return [
                    conn.execute(text(sql), {"since": time.time() - 86_400}).all()
                    for sql in unhinted.values()
                ]

        body = generate_latest(scraped).decode()
        assert "dvcsync_outbox_entries" in body and "process_cpu_seconds_total" in body
        results: list[tuple[str, float]] = []
        for phase in ("no statistics", "after ANALYZE"):
            if phase == "after ANALYZE":
                with store.engine.begin() as conn:
                    conn.execute(text("ANALYZE"))
            results.append((f"old GROUP BY scrape, {phase} (baseline)", median_ms(old)))
            results.append((f"new /metrics body, {phase}", median_ms(new)))
            results.append((f"  of which the backlog queries, {phase}", median_ms(backlog)))
        results.append(("new queries without the index hint, after ANALYZE", median_ms(new_unhinted)))
        store.close()
    baseline = results[0][1]
    print(f"median of {RUNS} runs:")
    for name, ms in results:
        print(f"  {name:58s} {ms:9.2f} ms   {baseline / ms:7.1f}x faster than the first baseline")
    worst = max(ms for name, ms in results if name.startswith("new /"))
    print(f"target: under 50 ms; new /metrics body, slowest phase: {worst:.2f} ms")
    load.finish()


if __name__ == "__main__":
    main()
