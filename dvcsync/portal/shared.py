"""One rate budget and one portal session per tenant and portal, shared by every job of a process.

``[portal] rate_limit`` is the province's budget at the portal, not a job's: push, pull, the
catalogue, reconcile's read-back and satisfaction each built their own client, each with the full
budget and its own login, so together they could send several times the rate. Every client a
runtime builds now takes its budget and session from here, keyed by the tenant and the portal
(address, account, destination code) and by the running event loop (the budget's lock and the
session's lock belong to one loop; `dvcsync run` keeps one loop per tenant, so its jobs share).

Replicas on PostgreSQL divide the budget: each takes ``rate_limit / n`` where ``n`` is the number of
replicas alive (``StateStore.live_replicas``), re-read at each cycle (``share_rate``).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from dataclasses import dataclass

from dvcsync.config import PortalSettings

from .rate import RateBudget
from .session import SessionCache


@dataclass
class Shared:
    rate: RateBudget
    sessions: SessionCache


_lock = threading.Lock()
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, ...], Shared]] = (
    weakref.WeakKeyDictionary()
)


def _key(settings: PortalSettings, tenant: str) -> tuple[str, ...]:
    return (tenant, settings.adapter_url.rstrip("/"), settings.username, settings.dstcode, settings.madonvi)


def shared_for(settings: PortalSettings, tenant: str = "") -> Shared:
    """This loop's budget and session for the tenant's portal (made on first use)."""
    loop = asyncio.get_running_loop()
    with _lock:
        per_loop = _by_loop.setdefault(loop, {})
        key = _key(settings, tenant)
        found = per_loop.get(key)
        if found is None:

            async def no_login() -> str:  # every client passes its own login to get()
                raise RuntimeError("a shared session is logged in through a client")

            found = per_loop[key] = Shared(
                RateBudget(settings.rate_limit, burst=max(1.0, float(settings.concurrency))),
                SessionCache(no_login, settings.session_ttl_s),
            )
        return found


def share_rate(shared: Shared, rate_limit: float, replicas: int) -> float:
    """Set this process's share of the province's budget: ``rate_limit`` divided among the
    replicas alive (at least one); returns the share."""
    share = rate_limit / max(1, replicas)
    shared.rate.rate = share
    return share


__all__ = ["Shared", "share_rate", "shared_for"]
