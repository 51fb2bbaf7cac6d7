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
from lxml import etree

from adapter.contract.wsdl import BINDING_QNAME, wsdl_path

HARDENED = zeep.Settings(forbid_dtd=True, forbid_entities=True, forbid_external=True, strict=True)


def zeep_service(soap_url: str, *, wsdl: str | None = None, timeout: float = 10) -> Any:
    """A plain zeep client on the shipped WSDL (or ``wsdl``), pointed at ``soap_url``."""
    transport = zeep.Transport(timeout=timeout, operation_timeout=timeout)
    client = zeep.Client(wsdl or str(wsdl_path()), settings=HARDENED, transport=transport)
    return client.create_service(BINDING_QNAME, soap_url)


def to_wire(value: Any) -> Any:
    """A zeep reply as the JSON the REST face answers: no ``None``, no empty lists, wildcard content
    (``_value_1``) turned back into keys. This is what the adapter's SOAP client will have to do."""
    if hasattr(value, "__values__") or isinstance(value, dict):
        items = zeep.helpers.serialize_object(value, dict) if not isinstance(value, dict) else value
        out: dict[str, Any] = {}
        for key, item in items.items():
            if key.startswith("_value_"):
                for element in item or []:
                    if len(element) or element.text:  # empty reads as None, as zeep does for declared ones
                        _add(out, etree.QName(element).localname, _element_value(element))
            elif item is not None and item != []:
                out[key] = to_wire(item)
        return out
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    return value


def _add(out: dict[str, Any], key: str, value: Any) -> None:
    if key not in out:
        out[key] = value
    elif isinstance(out[key], list):
        out[key].append(value)
    else:
        out[key] = [out[key], value]


def _element_value(element: etree._Element) -> Any:
    if len(element) == 0:
        return element.text or ""
    out: dict[str, Any] = {}
    for child in element:
        _add(out, etree.QName(child).localname, _element_value(child))
    return out


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


def to_zeep(xsd_type: Any, data: dict[str, Any]) -> dict[str, Any]:
    """A JSON object as zeep kwargs for ``xsd_type``: fields the WSDL does not declare (newer fields)
    go into the wildcard ``_value_1`` as elements, as zeep refuses unknown keyword arguments."""
    declared = {name: element for name, element in xsd_type.elements if not name.startswith("_value_")}
    out: dict[str, Any] = {}
    extra: list[etree._Element] = []
    for key, value in data.items():
        element = declared.get(key)
        if element is None:
            extra.extend(_as_elements(key, value))
        elif isinstance(value, list):
            out[key] = [to_zeep(element.type, v) if isinstance(v, dict) else v for v in value]
        elif isinstance(value, dict):
            out[key] = to_zeep(element.type, value)
        else:
            out[key] = value
    if extra:
        out["_value_1"] = extra
    return out


def _as_elements(name: str, value: Any) -> list[etree._Element]:
    if value is None:
        return []
    if isinstance(value, list):
        return [e for item in value for e in _as_elements(name, item)]
    element = etree.Element(f"{{urn:dvcqg:lgsp:v1}}{name}")
    if isinstance(value, dict):
        for key, item in value.items():
            element.extend(_as_elements(key, item))
    else:
        element.text = str(value)
    return [element]
