"""Shared pieces of the SOAP face's integration tests: a hardened zeep client, payload helpers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
import zeep
import zeep.helpers
from fastapi import FastAPI

from dvcsync.contract.wsdl import BINDING_QNAME, wsdl_path
from dvcsync.portal.soap import from_zeep as to_wire  # noqa: F401  (the adapter's own conversions,
from dvcsync.portal.soap import to_zeep  # noqa: F401  re-exported for the SOAP tests)

HARDENED = zeep.Settings(forbid_dtd=True, forbid_entities=True, forbid_external=True, strict=True)


def zeep_service(soap_url: str, *, wsdl: str | None = None, timeout: float = 10) -> Any:
    """A plain zeep client on the shipped WSDL (or ``wsdl``), pointed at ``soap_url``."""
    transport = zeep.Transport(timeout=timeout, operation_timeout=timeout)
    client = zeep.Client(wsdl or str(wsdl_path()), settings=HARDENED, transport=transport)
    return client.create_service(BINDING_QNAME, soap_url)


def drop_empty_lists(value: Any) -> Any:
    """JSON as SOAP can carry it: an empty list is no element at all (documented in the WSDL)."""
    if isinstance(value, dict):
        return {k: drop_empty_lists(v) for k, v in value.items() if v != [] and v is not None}
    if isinstance(value, list):
        return [drop_empty_lists(v) for v in value]
    return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def as_xml_carries_it(value: Any) -> Any:
    """A JSON value as SOAP can say it: scalars as text, no nulls, an empty list is no element."""
    if isinstance(value, dict):
        return {k: as_xml_carries_it(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [as_xml_carries_it(v) for v in value]
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def zeep_reads_it(value: Any) -> Any:
    """A JSON reply as a zeep client reads it from the SOAP face: as ``as_xml_carries_it``, and an
    empty element reads as ``None`` in zeep (the server sends ``""``; zeep's string type drops it)."""
    carried = as_xml_carries_it(value)
    return _drop_empty_strings(carried)


def _drop_empty_strings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_empty_strings(v) for k, v in value.items() if v != ""}
    if isinstance(value, list):
        return [_drop_empty_strings(v) for v in value]
    return value
