"""Wiring: from the configuration to a ready store, mappings, source and portal client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine

from dvcsync.config import Settings
from dvcsync.mapping import MappingSet, load_mappings
from dvcsync.portal import PortalClient, make_http_client
from dvcsync.portal.shared import share_rate, shared_for
from dvcsync.province.source import make_engine
from dvcsync.state import StateStore
from dvcsync.tenants import ensure_schema


@dataclass
class Runtime:
    settings: Settings
    mappings: MappingSet
    store: StateStore
    source: Engine
    client: PortalClient
    payment_http: httpx.AsyncClient
    """Towards the payment platform, with ``[payment]``'s TLS: a different endpoint, maybe another CA."""


@asynccontextmanager
async def open_runtime(settings: Settings, mappings: MappingSet | None = None) -> AsyncIterator[Runtime]:
    mset = mappings or load_mappings(settings.province.mappings)
    async with AsyncExitStack() as stack:
        # TLS first: a missing CA bundle or certificate is a configuration error before anything opens.
        portal_http = make_http_client(settings.portal)
        stack.push_async_callback(portal_http.aclose)
        payment_http = make_http_client(settings.payment, concurrency=1, timeout=settings.portal.timeout)
        stack.push_async_callback(payment_http.aclose)
        store = StateStore(settings.state.url, claim_lease_s=settings.state.claim_lease_s)
        stack.callback(store.close)
        ensure_schema(settings.state.url)  # a tenant's PostgreSQL schema, before its tables are made
        store.prepare()
        # one budget and one login for every job of this tenant's portal in this process, and on
        # PostgreSQL this replica's share of it (dvcsync.portal.shared)
        shared = shared_for(settings.portal, settings.tenant)
        if store.claims:
            share_rate(shared, settings.portal.rate_limit, store.live_replicas())
        client = PortalClient(settings.portal, portal_http, rate=shared.rate, sessions=shared.sessions)
        source = make_engine(settings.province.source_url)
        stack.callback(source.dispose)
        yield Runtime(settings, mset, store, source, client, payment_http)
