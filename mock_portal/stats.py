"""Request counters per service and outcome, for ``GET /_admin/stats``.

Kept in memory (a dict increment per request): the figures describe this run, and counting must
cost nothing next to the request itself.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any


class Stats:
    def __init__(self) -> None:
        self._counts: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))

    def count(self, service: str, outcome: str, n: int = 1) -> None:
        """``outcome`` is ``ok``, ``error:<code>`` or ``fault:<kind>``."""
        self._counts[service][outcome] += n

    def get(self, service: str, outcome: str) -> int:
        outcomes = self._counts.get(service)
        return outcomes.get(outcome, 0) if outcomes is not None else 0

    def snapshot(self) -> dict[str, Any]:
        services = {name: dict(sorted(outcomes.items())) for name, outcomes in sorted(self._counts.items())}
        total = sum(sum(outcomes.values()) for outcomes in services.values())
        return {"total": total, "services": services}

    def reset(self) -> None:
        self._counts.clear()
