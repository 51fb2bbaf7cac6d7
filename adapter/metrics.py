"""Prometheus metrics of the process: what the jobs did (counters, histograms, last success) and,
read at scrape time, what is left to do (backlog gauges).

Everything lives in one ``REGISTRY`` with the process collector (CPU, memory, open files), so a
scrape of ``/metrics`` on `dvcsync run` shows the portal requests, retries and dead letters of
the scheduled cycles beside the inbound server's own counters.

The backlog gauges are read at scrape time but only over rows still to settle (outbox ``pending``
and ``dead``, inbox ``received`` and ``conflict``), through the ``state`` indexes: a state with
millions of ``done`` rows costs a scrape no more than an empty one (``bench/metrics.py``).
Settled work is counted by the counters as it happens, never by counting rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text

disable_created_metrics()  # a ``_created`` series per label set doubles the scrape for nothing here

CONTENT_TYPE = CONTENT_TYPE_LATEST
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

# Portal calls take tens of milliseconds on a LAN to tens of seconds through a slow LGSP.
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# A cycle is seconds when idle, minutes for a first push of a large province.
_CYCLE_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0)

PORTAL_REQUESTS = Counter(
    "dvcsync_portal_requests",
    "Requests to the portal by service and outcome: ok, refused (a business error_code), transient"
    " (not applied: 429, 503, pool), ambiguous (sent, no usable answer), unreachable, auth, protocol.",
    ["service", "outcome"],
    registry=REGISTRY,
)
PORTAL_RETRIES = Counter(
    "dvcsync_portal_retries",
    "Portal requests sent again by the client, by cause (transient, ambiguous, unreachable, session).",
    ["cause"],
    registry=REGISTRY,
)
PORTAL_LATENCY = Histogram(
    "dvcsync_portal_latency_seconds",
    "Time of one HTTP exchange with the portal (rate-budget wait excluded), by service.",
    ["service"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
RECORDS_PUSHED = Counter(
    "dvcsync_records_pushed",
    "Records the portal accepted, by kind: dossier (DongBoHoSoMC), steps (history entries of"
    " CapNhatTienDoHoSoMC), status (DongBoTrangThaiHoSo).",
    ["kind"],
    registry=REGISTRY,
)
RECORDS_PULLED = Counter(
    "dvcsync_records_pulled",
    "Portal-submitted dossiers created in the province by the pull job.",
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "dvcsync_dead_letters",
    "Outbox entries that became dead letters (refused, or out of attempts), by kind.",
    ["kind"],
    registry=REGISTRY,
)
QUARANTINED = Counter(
    "dvcsync_quarantined",
    "Source records put in quarantine because they could not be mapped.",
    registry=REGISTRY,
)
CITIZEN_CHECKS = Counter(
    "dvcsync_citizen_checks",
    "Citizen owners checked against the population database before a push, by outcome: match,"
    " mismatch (quarantined), skipped (the service was down: pushed unchecked), uncheckable (no"
    " 12-digit citizen ID).",
    ["outcome"],
    registry=REGISTRY,
)
CYCLE_DURATION = Histogram(
    "dvcsync_cycle_duration_seconds",
    "Duration of one job cycle, failed ones included, by job.",
    ["job"],
    buckets=_CYCLE_BUCKETS,
    registry=REGISTRY,
)
CYCLE_LAST_SUCCESS = Gauge(
    "dvcsync_cycle_last_success_timestamp_seconds",
    "When a cycle of the job last finished without failing (Unix time); alert on its age.",
    ["job"],
    registry=REGISTRY,
)
CYCLES = Counter(
    "dvcsync_cycles",
    "Job cycles by job and recorded status (ok, dead-letters, province-refused, errors, failed).",
    ["job", "status"],
    registry=REGISTRY,
)


def portal_request(service: str, outcome: str) -> None:
    PORTAL_REQUESTS.labels(service, outcome).inc()


def cycle_finished(job: str, status: str, seconds: float) -> None:
    """One cycle's figures; ``status`` "failed" leaves the last success time where it was."""
    CYCLE_DURATION.labels(job).observe(seconds)
    CYCLES.labels(job, status).inc()
    if status != "failed":
        CYCLE_LAST_SUCCESS.labels(job).set(time.time())


# ---------------------------------------------------------------------- read at scrape time

OUTBOX_OPEN = ("pending", "dead")  # every other state (done, superseded, discarded) is settled
INBOX_OPEN = ("received", "conflict")
INBOX_RECENT = ("applied", "acknowledged", "rejected")
RECENT_S = 86_400.0

# Plain SQL, the same on SQLite and PostgreSQL but for the index hint. SQLite needs it: once
# ANALYZE has run, its statistics (no skew) make ``state IN ('pending', 'dead')`` look like half
# the table and it scans every row; PostgreSQL's histograms see the skew and use the index.
_OUTBOX_SQL = (
    "SELECT CASE WHEN state = 'pending' AND verify_first THEN 'in_flight'"
    " WHEN state = 'pending' AND attempts > 0 THEN 'retry' ELSE state END, kind, count(*)"
    " FROM outbox{outbox_hint} WHERE state IN ({outbox_open}) GROUP BY 1, 2"
)
_INBOX_SQL = (  # two branches: an OR of both would not use one index under SQLite's statistics
    "SELECT kind, state, count(*) FROM inbox{inbox_hint} WHERE state IN ({inbox_open}) GROUP BY 1, 2"
    " UNION ALL SELECT kind, state, count(*) FROM inbox{inbox_hint}"
    " WHERE state IN ({inbox_recent}) AND updated_at >= :since GROUP BY 1, 2"
)
# the quarantine holds only the records failing now (cleared when they map again): small
_QUARANTINE_SQL = "SELECT count(*) FROM quarantine"


def _listed(states: tuple[str, ...]) -> str:
    return ", ".join(f"'{s}'" for s in states)  # constants of this module, never input


def backlog_sql(dialect: str) -> dict[str, str]:
    """The scrape's statements (``:since`` is a parameter), each restricted by ``state IN
    (...)`` so an index on ``(state, ...)`` answers it; a test checks their plans. ``pending`` is
    split the way an operator reads it: ``in_flight`` (sent, answer not recorded: read back
    first), ``retry`` (failed before), ``pending`` (never tried)."""
    sqlite = dialect == "sqlite"
    names = {
        "outbox_hint": " INDEXED BY ix_outbox_due" if sqlite else "",
        "inbox_hint": " INDEXED BY ix_inbox_settled" if sqlite else "",
        "outbox_open": _listed(OUTBOX_OPEN),
        "inbox_open": _listed(INBOX_OPEN),
        "inbox_recent": _listed(INBOX_RECENT),
    }
    return {
        "outbox": _OUTBOX_SQL.format(**names),
        "inbox": _INBOX_SQL.format(**names),
        "quarantine": _QUARANTINE_SQL,
    }


class StateCollector(Collector):
    """Backlog gauges of one state store, read when scraped."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sql = backlog_sql(engine.dialect.name)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        outbox = GaugeMetricFamily(
            "dvcsync_outbox_entries",
            "Outbox entries still to settle, by state (pending: never tried; retry: failed before;"
            " in_flight: sent, answer not recorded; dead: a dead letter) and kind.",
            labels=["state", "kind"],
        )
        inbox = GaugeMetricFamily(
            "dvcsync_inbox_events",
            "Inbox events by kind and state: all still to settle (received, conflict), and those"
            f" settled (applied, acknowledged, rejected) in the last {RECENT_S / 3600:.0f} hours.",
            labels=["kind", "state"],
        )
        quarantined = GaugeMetricFamily(
            "dvcsync_quarantined_records", "Source records that cannot be mapped now (dvcsync status)."
        )
        sql = self._sql
        with self.engine.connect() as conn:
            for state, kind, n in conn.execute(text(sql["outbox"])):
                outbox.add_metric([str(state), str(kind)], int(n))
            since = {"since": time.time() - RECENT_S}
            for kind, state, n in conn.execute(text(sql["inbox"]), since):
                inbox.add_metric([str(kind), str(state)], int(n))
            quarantined.add_metric([], int(conn.execute(text(sql["quarantine"])).scalar_one()))
        yield outbox
        yield inbox
        yield quarantined


class TallyCollector(Collector):
    """A ``collections.Counter`` kept by code that must not depend on prometheus (the access
    guard, the HTTP protocol), exposed as a counter family."""

    def __init__(
        self, name: str, documentation: str, labels: Iterable[str], tally: Mapping[Any, int]
    ) -> None:
        self.name, self.documentation, self.labels, self.tally = name, documentation, list(labels), tally

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, count in sorted(dict(self.tally).items()):
            values = key if isinstance(key, tuple) else (key,)
            family.add_metric([str(v) for v in values], count)
        yield family


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Any]:
        return self.registry.collect()


def exposition_registry(*collectors: Collector) -> CollectorRegistry:
    """The process's metrics and an app's own collectors (its state store, its counters) as one
    registry to scrape: several apps in one process (tests) each show their own state."""
    view = CollectorRegistry()
    view.register(_Forward(REGISTRY))
    for collector in collectors:
        view.register(collector)
    return view


def exposition(registry: CollectorRegistry = REGISTRY) -> bytes:
    return generate_latest(registry)


__all__ = [
    "CONTENT_TYPE",
    "REGISTRY",
    "StateCollector",
    "TallyCollector",
    "backlog_sql",
    "cycle_finished",
    "exposition",
    "exposition_registry",
    "portal_request",
]
