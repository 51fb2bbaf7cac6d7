"""A requests-per-second budget shared by every request in flight (token bucket)."""

from __future__ import annotations

import asyncio
import time


class RateBudget:
    """At most ``rate`` requests per second on average, bursts up to ``burst``.

    The portal throttles provinces that flood it; staying under its budget costs less than
    eating 429s and backing off.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)
