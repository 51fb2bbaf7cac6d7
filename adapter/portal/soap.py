"""The portal over its SOAP face: zeep builds the request envelope from the shipped WSDL and
reads the reply; the shared httpx client carries it, so retries, the rate budget, ``Retry-After``
and the classification of failures are the same as over REST.

zeep runs hardened (no DTD, no entities, no network): XML from outside is hostile until parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import zeep
import zeep.exceptions
import zeep.helpers
from lxml import etree

from adapter.contract.wsdl import BINDING_QNAME, TARGET_NAMESPACE, wsdl_path

from .errors import AmbiguousError, ProtocolError

HARDENED = zeep.Settings(forbid_dtd=True, forbid_entities=True, forbid_external=True, strict=True)
_HOSTILE = (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden)


class SoapCodec:
    """JSON-shaped bodies in, SOAP envelopes out, and back: the rest of the client never sees XML."""

    def __init__(self) -> None:
        # The WSDL is a local file: loading it touches no network, whatever the address it names.
        self.client = zeep.Client(str(wsdl_path()), settings=HARDENED)
        self.binding = self.client.wsdl.bindings[BINDING_QNAME]
        self._proxy = self.client.create_service(BINDING_QNAME, "http://127.0.0.1/soap")

    def encode(self, service: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        operation = self.binding.get(service)
        fields = {k: v for k, v in body.items() if k != "service" and v is not None}
        kwargs = to_zeep(operation.input.body.type, fields)
        envelope = self.client.create_message(self._proxy, service, **kwargs)
        content = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation.soapaction or ""}"'}
        return content, headers

    def decode(
        self, service: str, status_code: int, headers: httpx.Headers, content: bytes
    ) -> dict[str, Any]:
        """The reply as the JSON face would have answered it (``error_code``, ``message``, ``result``).

        Takes the body already read (under the reply cap), not a response still streaming."""
        try:
            reply = self.binding.process_reply(
                self.client, self.binding.get(service), _ReadReply(status_code, headers, content)
            )
        except _HOSTILE as exc:
            raise ProtocolError(service, f"hostile XML refused in the reply: {type(exc).__name__}") from None
        except zeep.exceptions.Fault as fault:
            code = str(fault.code or "")
            if code.endswith("Client"):  # our request is wrong: re-sending it will not help
                raise ProtocolError(service, f"SOAP fault {code}: {fault.message}") from None
            raise AmbiguousError(service, f"SOAP fault {code or 'without code'}: {fault.message}") from None
        except (
            etree.XMLSyntaxError,
            zeep.exceptions.XMLSyntaxError,
            zeep.exceptions.TransportError,
            zeep.exceptions.Error,
        ) as exc:
            raise AmbiguousError(service, f"SOAP answer unreadable: {type(exc).__name__}") from None
        data = from_zeep(reply)
        if not isinstance(data, dict):
            raise AmbiguousError(service, "SOAP answer carries no reply element")
        if "result" in data and not isinstance(data["result"], list):
            data["result"] = [data["result"]]
        return data


@dataclass(frozen=True)
class _ReadReply:
    """What zeep reads of a response (``requests``-shaped), over a body already read."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    encoding: str | None = None


def to_zeep(xsd_type: Any, data: dict[str, Any]) -> dict[str, Any]:
    """A JSON object as zeep keyword arguments for ``xsd_type``. Fields the WSDL does not declare
    (newer ones) travel in the type's lax wildcard, as zeep refuses unknown keyword arguments."""
    declared = {name: element for name, element in xsd_type.elements if not name.startswith("_value_")}
    out: dict[str, Any] = {}
    extra: list[etree._Element] = []
    for key, value in data.items():
        element = declared.get(key)
        if element is None:
            extra.extend(_as_elements(key, value))
        elif isinstance(value, list):
            out[key] = [to_zeep(element.type, v) if isinstance(v, dict) else _text(v) for v in value]
        elif isinstance(value, dict):
            out[key] = to_zeep(element.type, value)
        else:
            out[key] = _text(value)
    if extra:
        out["_value_1"] = extra
    return out


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "True" if value else "False"
    return value if value is None or isinstance(value, str) else str(value)


def _as_elements(name: str, value: Any) -> list[etree._Element]:
    if value is None:
        return []
    if isinstance(value, list):
        return [e for item in value for e in _as_elements(name, item)]
    element = etree.Element(f"{{{TARGET_NAMESPACE}}}{name}")
    if isinstance(value, dict):
        for key, item in value.items():
            element.extend(_as_elements(key, item))
    else:
        element.text = str(_text(value))
    return [element]


def from_zeep(value: Any) -> Any:
    """A zeep reply object as plain JSON-shaped data: no ``None``, wildcard content unfolded."""
    if hasattr(value, "__values__") or isinstance(value, dict):
        items = value if isinstance(value, dict) else zeep.helpers.serialize_object(value, dict)
        out: dict[str, Any] = {}
        for key, item in items.items():
            if key.startswith("_value_"):
                for element in item or []:
                    if isinstance(element, etree._Element) and (len(element) or element.text):
                        _add(out, etree.QName(element).localname, _element_value(element))
            elif item is not None and item != []:
                out[key] = from_zeep(item)
        return out
    if isinstance(value, list):
        return [from_zeep(v) for v in value]
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
