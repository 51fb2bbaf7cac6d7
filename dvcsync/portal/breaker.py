"""A circuit breaker for a portal that is down: the service stops calling it for a while instead
of starting every scheduled cycle against a dead address, and tries again after a cool-down that
doubles (30 s, 1 min, 2 min … 15 min) while the outage lasts. One success closes it."""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(
        self, base_s: float = 30.0, max_s: float = 900.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.base_s, self.max_s, self._clock = base_s, max_s, clock
        self.failures = 0
        self.open_until = 0.0

    def allow(self) -> bool:
        """Whether a cycle may call now (closed, or the cool-down is over: one trial)."""
        return self._clock() >= self.open_until

    def retry_in(self) -> float:
        return max(0.0, self.open_until - self._clock())

    def failed(self) -> float:
        """Record an unreachable portal; returns the cool-down before the next trial."""
        self.failures += 1
        wait = min(self.max_s, self.base_s * 2 ** (self.failures - 1))
        self.open_until = self._clock() + wait
        return wait

    def succeeded(self) -> None:
        self.failures = 0
        self.open_until = 0.0
