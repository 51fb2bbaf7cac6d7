"""Wiring: from the configuration to a ready store, mappings, source and portal client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import Engine

from adapter.config import Settings
from adapter.mapping import MappingSet, load_mappings
from adapter.portal import RestPortalClient, make_http_client
from adapter.province.source import make_engine
from adapter.state import StateStore


@dataclass
class Runtime:
    settings: Settings
    mappings: MappingSet
    store: StateStore
    source: Engine
    client: RestPortalClient


@asynccontextmanager
async def open_runtime(settings: Settings, mappings: MappingSet | None = None) -> AsyncIterator[Runtime]:
    mset = mappings or load_mappings(settings.province.mappings)
    store = StateStore(settings.state.url)
    store.upgrade()
    source = make_engine(settings.province.source_url)
    client = RestPortalClient(settings.portal, make_http_client(settings.portal))
    try:
        yield Runtime(settings, mset, store, source, client)
    finally:
        await client.aclose()
        source.dispose()
        store.close()
