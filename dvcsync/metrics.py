"""Prometheus metrics of the process: what the jobs did (counters, histograms, last success) and,
read at scrape time, what is left to do (backlog gauges).

Everything lives in one ``REGISTRY`` with the process collector (CPU, memory, open files), so a
scrape of ``/metrics`` on `dvcsync run` shows the portal requests, retries and dead letters of
the scheduled cycles beside the inbound server's own counters.

The backlog gauges are read at scrape time but only over rows still to settle (outbox ``pending``
and ``dead``, inbox ``received`` and ``conflict``), through the ``state`` indexes: a state with
millions of ``done`` rows costs a scrape no more than an empty one (``bench/metrics.py``).
Settled work is counted by the counters as it happens, never by counting rows.

Tenants: every dvcsync metric carries a ``tenant`` label, taken from ``current_tenant`` (a
context variable each tenant's scheduler thread and each of its inbound requests set), so the
call sites name only their own labels (``RECORDS_PUSHED.labels(kind)``). An empty tenant (a
deployment without tenants) is left out of the exposition: to Prometheus an empty label is no
label, and such a deployment scrapes exactly as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

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
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from dvcsync.state import reads as _reads

log = logging.getLogger(__name__)

disable_created_metrics()  # a ``_created`` series per label set doubles the scrape for nothing here

CONTENT_TYPE = CONTENT_TYPE_LATEST
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

TENANT = "tenant"
current_tenant: ContextVar[str] = ContextVar("dvcsync_tenant", default="")
"""The tenant whose work this is: set in each tenant's scheduler thread and inbound requests."""

M = TypeVar("M", Counter, Gauge, Histogram)


class _TenantSeries(Collector):
    """The tenant-labelled metrics as the registry shows them: ``tenant=""`` left out."""

    def __init__(self) -> None:
        self.metrics: list[Counter | Gauge | Histogram] = []

    def collect(self) -> Iterator[Metric]:
        for metric in self.metrics:
            for family in metric.collect():
                yield _without_empty_tenant(family)


def _without_empty_tenant(family: Metric) -> Metric:
    out = Metric(family.name, family.documentation, family.type, family.unit)
    out.samples = [
        s._replace(labels={k: v for k, v in s.labels.items() if k != TENANT or v})
        if s.labels.get(TENANT) == ""
        else s
        for s in family.samples
    ]
    return out


_TENANT_SERIES = _TenantSeries()
REGISTRY.register(_TENANT_SERIES)


class _PerTenant(Generic[M]):
    """A metric whose last label is the current tenant: ``.labels(kind)`` as before."""

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        _TENANT_SERIES.metrics.append(metric)

    def labels(self, *values: str) -> M:
        return self.metric.labels(*values, current_tenant.get())


class TenantCounter(_PerTenant[Counter]):
    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = ()) -> None:
        labels = [*labelnames, TENANT]
        super().__init__(Counter(name, documentation, labels, registry=None))
        if labels == [TENANT]:
            self.metric.labels("")  # shown at 0 from the start, as a counter without labels is

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)


class TenantGauge(_PerTenant[Gauge]):
    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = ()) -> None:
        super().__init__(Gauge(name, documentation, [*labelnames, TENANT], registry=None))


class TenantHistogram(_PerTenant[Histogram]):
    def __init__(
        self, name: str, documentation: str, labelnames: Iterable[str], buckets: tuple[float, ...]
    ) -> None:
        super().__init__(
            Histogram(name, documentation, [*labelnames, TENANT], buckets=buckets, registry=None)
        )


# Portal calls take tens of milliseconds on a LAN to tens of seconds through a slow LGSP.
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# A cycle is seconds when idle, minutes for a first push of a large province.
_CYCLE_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0)

PORTAL_REQUESTS = TenantCounter(
    "dvcsync_portal_requests",
    "Requests to the portal by service and outcome: ok, refused (a business error_code), transient"
    " (not applied: 429, 503, pool), ambiguous (sent, no usable answer), unreachable, auth, protocol.",
    ["service", "outcome"],
)
PORTAL_RETRIES = TenantCounter(
    "dvcsync_portal_retries",
    "Portal requests sent again by the client, by cause (transient, ambiguous, unreachable, session).",
    ["cause"],
)
PORTAL_LATENCY = TenantHistogram(
    "dvcsync_portal_latency_seconds",
    "Time of one HTTP exchange with the portal (rate-budget wait excluded), by service.",
    ["service"],
    buckets=_LATENCY_BUCKETS,
)
RECORDS_PUSHED = TenantCounter(
    "dvcsync_records_pushed",
    "Records the portal accepted, by kind: dossier (DongBoHoSoMC), steps (history entries of"
    " CapNhatTienDoHoSoMC), status (DongBoTrangThaiHoSo).",
    ["kind"],
)
RECORDS_PULLED = TenantCounter(
    "dvcsync_records_pulled",
    "Portal-submitted dossiers created in the province by the pull job.",
)
DEAD_LETTERS = TenantCounter(
    "dvcsync_dead_letters",
    "Outbox entries that became dead letters (refused, or out of attempts), by kind.",
    ["kind"],
)
QUARANTINED = TenantCounter(
    "dvcsync_quarantined",
    "Source records put in quarantine because they could not be mapped.",
)
CITIZEN_CHECKS = TenantCounter(
    "dvcsync_citizen_checks",
    "Citizen owners checked against the population database before a push, by outcome: match,"
    " mismatch (quarantined), skipped (the service was down: pushed unchecked), uncheckable (no"
    " 12-digit citizen ID).",
    ["outcome"],
)
CYCLE_DURATION = TenantHistogram(
    "dvcsync_cycle_duration_seconds",
    "Duration of one job cycle, failed ones included, by job.",
    ["job"],
    buckets=_CYCLE_BUCKETS,
)
CYCLE_LAST_SUCCESS = TenantGauge(
    "dvcsync_cycle_last_success_timestamp_seconds",
    "When a cycle of the job last finished without failing (Unix time); alert on its age.",
    ["job"],
)
CYCLES = TenantCounter(
    "dvcsync_cycles",
    "Job cycles by job and recorded status (ok, dead-letters, province-refused, errors, failed).",
    ["job", "status"],
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

RECENT_S = 86_400.0
# the statements live with the tables (dvcsync.state.reads); named here too for the benchmarks and tests
OUTBOX_OPEN, INBOX_OPEN, INBOX_RECENT = _reads.OUTBOX_OPEN, _reads.INBOX_OPEN, _reads.INBOX_RECENT
backlog_sql = _reads.backlog_sql


class StateCollector(Collector):
    """Backlog gauges of the state stores, read when scraped: one engine, or one per tenant
    (``{code: engine}``), shown as one family each with the ``tenant`` label. With several, a
    tenant whose state cannot be read is left out of the scrape (logged), not the others."""

    def __init__(self, engines: Engine | Mapping[str, Engine]) -> None:
        self.engines: dict[str, Engine] = {"": engines} if isinstance(engines, Engine) else dict(engines)
        self._sql = {tenant: backlog_sql(e.dialect.name) for tenant, e in self.engines.items()}

    @property
    def engine(self) -> Engine:
        """The one state store (a collector of one engine)."""
        return next(iter(self.engines.values()))

    def collect(self) -> Iterator[Metric]:
        outbox = GaugeMetricFamily(
            "dvcsync_outbox_entries",
            "Outbox entries still to settle, by state (pending: never tried; retry: failed before;"
            " in_flight: sent, answer not recorded; dead: a dead letter) and kind.",
            labels=["state", "kind", TENANT],
        )
        inbox = GaugeMetricFamily(
            "dvcsync_inbox_events",
            "Inbox events by kind and state: all still to settle (received, conflict), and those"
            f" settled (applied, acknowledged, rejected) in the last {RECENT_S / 3600:.0f} hours.",
            labels=["kind", "state", TENANT],
        )
        quarantined = GaugeMetricFamily(
            "dvcsync_quarantined_records",
            "Source records that cannot be mapped now (dvcsync status).",
            labels=[TENANT],
        )
        for tenant, engine in self.engines.items():
            try:
                rows = self._read(engine, self._sql[tenant])
            except Exception:
                if len(self.engines) == 1:
                    raise
                log.warning("metrics: the state of tenant %s could not be read", tenant, exc_info=True)
                continue
            for state, kind, n in rows["outbox"]:
                outbox.add_metric([str(state), str(kind), tenant], int(n))
            for kind, state, n in rows["inbox"]:
                inbox.add_metric([str(kind), str(state), tenant], int(n))
            quarantined.add_metric([tenant], int(rows["quarantine"][0][0]))
        yield _without_empty_tenant(outbox)
        yield _without_empty_tenant(inbox)
        yield _without_empty_tenant(quarantined)

    @staticmethod
    def _read(engine: Engine, sql: dict[str, str]) -> dict[str, list[Any]]:
        return _reads.read_backlog(engine, sql, time.time() - RECENT_S)


STATE_FAMILIES = frozenset(
    {
        "dvcsync_outbox_entries",
        "dvcsync_inbox_events",
        "dvcsync_quarantined_records",
        "dvcsync_inbound_refused_bodies",  # dvcsync.server._refusals
    }
)


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


class _OneTenant(Collector):
    """A registry's families with the series of other tenants left out; families without a
    tenant dimension (the process, the inbound server's counters) are kept whole."""

    def __init__(self, registry: CollectorRegistry, tenant: str) -> None:
        self.registry, self.tenant = registry, tenant

    def collect(self) -> Iterator[Metric]:
        tenanted = STATE_FAMILIES | {f.name for m in _TENANT_SERIES.metrics for f in m.describe()}
        for family in self.registry.collect():
            if family.name not in tenanted:
                yield family
                continue
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            kept.samples = [s for s in family.samples if s.labels.get(TENANT, "") == self.tenant]
            yield kept


def exposition(registry: CollectorRegistry = REGISTRY, tenant: str | None = None) -> bytes:
    """The text exposition; with ``tenant``, that tenant's series only (and the process's)."""
    if tenant is None:
        return generate_latest(registry)
    view = CollectorRegistry()
    view.register(_OneTenant(registry, tenant))
    return generate_latest(view)


__all__ = [
    "CONTENT_TYPE",
    "REGISTRY",
    "STATE_FAMILIES",
    "StateCollector",
    "TallyCollector",
    "TenantCounter",
    "TenantGauge",
    "TenantHistogram",
    "backlog_sql",
    "current_tenant",
    "cycle_finished",
    "exposition",
    "exposition_registry",
    "portal_request",
]
