"""Small value objects a job or client can take instead of the whole ``Settings`` (as httpx
takes a ``Timeout`` and ``Limits``): what it needs, frozen, and nothing else. Built from a
section by its properties (``PortalSettings.limits`` …); the jobs' configs
(``dvcsync.sync.job_config``: ``PushConfig``, ``PullConfig``) carry them, so a job reads the
portal's ``concurrency`` or ``max_attempts`` as ``limits.concurrency`` or ``retry.max_attempts``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """How much a client may ask of one service at once."""

    concurrency: int  # calls in flight at most
    rate_per_s: float  # calls started per second at most
    batch_size: int  # records per call


@dataclass(frozen=True)
class Timeouts:
    """How long a client waits: for one call, and before it logs in again."""

    request_s: float
    session_ttl_s: float


@dataclass(frozen=True)
class Retry:
    """When a record that keeps failing becomes a dead letter: after this many refusals, or after
    failing this long, whichever comes first."""

    max_attempts: int
    give_up_after_s: float
