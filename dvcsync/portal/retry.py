"""Retry timing: exponential backoff with full jitter, and ``Retry-After`` honoured when given."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from time import time


@dataclass
class Backoff:
    """Full jitter (sleep uniformly in [0, min(cap, base·2^attempt)]): spreads retries of many
    clients hitting one overloaded portal instead of synchronising them."""

    base: float = 0.2
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * (2 ** max(0, attempt)))
        jittered = self.rng.uniform(0, ceiling)
        if retry_after is not None:
            return max(min(retry_after, self.cap * 4), jittered)
        return jittered


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time() if now is None else now))
