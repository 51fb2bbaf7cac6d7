"""``dvcsync_inbound_refused_bodies``: the refused inbound bodies each state keeps counted.

Read from the ``inbound_refusal`` aggregates when scraped (not counted in memory), so every replica
and a restarted process show the same numbers, and ``db prune`` lowers them as it deletes rows not
seen for ``keep_days``: a gauge, by kind, reason and tenant.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from dvcsync.metrics import TENANT
from dvcsync.state.reads import refusal_totals

log = logging.getLogger(__name__)

FAMILY = "dvcsync_inbound_refused_bodies"


class RefusalCollector(Collector):
    """One gauge series per (kind, reason) of each state; ``{code: engine}``, ``""`` for the one
    state of a deployment without tenants (no tenant label then)."""

    def __init__(self, states: Mapping[str, Engine]) -> None:
        self.states = dict(states)

    def collect(self) -> Iterator[Metric]:
        family = Metric(
            FAMILY,
            "Refused inbound bodies (bad signature, unknown reference, malformed, ...) the state keeps"
            " counted, by kind and reason; db prune drops those not seen for keep_days.",
            "gauge",
        )
        for tenant, engine in self.states.items():
            try:
                totals = refusal_totals(engine)
            except Exception:  # one unreadable state leaves out its own series, not the others'
                log.warning(
                    "metrics: the refusals of tenant %s could not be read", tenant or "-", exc_info=True
                )
                continue
            for (kind, reason), n in totals.items():
                labels = {"kind": kind, "reason": reason}
                if tenant:
                    labels[TENANT] = tenant
                family.add_sample(FAMILY, labels, float(n))
        yield family
