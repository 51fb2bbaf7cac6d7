"""The portal over its SOAP face: zeep builds the request envelope from the shipped WSDL and
reads the reply; the shared httpx client carries it, so retries, the rate budget, ``Retry-After``
and the classification of failures are the same as over REST.

zeep runs hardened (no DTD, no entities, no network): XML from outside is hostile until parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx
import zeep
import zeep.exceptions
import zeep.helpers
from lxml import etree

from dvcsync.contract.wsdl import BINDING_QNAME, TARGET_NAMESPACE, wsdl_path

from .errors import AmbiguousError, ProtocolError

HARDENED = zeep.Settings(forbid_dtd=True, forbid_entities=True, forbid_external=True, strict=True)
_HOSTILE = (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden)

EmptyLists = Literal["nil", "omit"]
"""How a JSON ``[]`` is sent: ``"nil"`` (the shipped WSDL's rule) as the list's element once with
``xsi:nil="true"``, so the portal stores ``[]`` as over REST; ``"omit"`` as no element at all, for a
portal facade that refuses nil. Replies are read either way: a nil list element is always ``[]``."""

EMPTY_LISTS_HEADER = "X-Empty-Lists"
"""Asks the facade to write ``[]`` the same way in its reply: the mock keeps replies without nil
elements for clients that do not ask (a plain zeep client reads a nil record as a record of nulls)."""
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_NIL = frozenset({"true", "1"})
_MARK = "{urn:dvcsync:internal}emptyList"
"""A placeholder child standing for "this element is nil" while zeep builds or reads the envelope:
zeep has no way to render or report xsi:nil on an item of a repeated record, but passes a wildcard
child through both ways. It never leaves this module (see ``_marks_to_nil`` and ``_NilToMark``)."""


class _Empty:
    """What a nil element reads as before its parent decides: ``[]`` for a list, absent otherwise."""


EMPTY = _Empty()


class _NilToMark(zeep.Plugin):
    """Ingress: each ``xsi:nil`` element of the reply's body gets the placeholder child, so the
    zeep object keeps the fact and ``from_zeep`` can turn a nil list element into ``[]``."""

    def ingress(self, envelope: Any, http_headers: Any, operation: Any) -> tuple[Any, Any]:
        for element in list(envelope.iter(etree.Element)):
            if element.get(XSI_NIL) in _NIL:
                del element.attrib[XSI_NIL]
                element.text = None
                for child in list(element):
                    element.remove(child)
                element.append(etree.Element(_MARK))
        return envelope, http_headers


def _marks_to_nil(envelope: etree._Element) -> None:
    """Replace each placeholder by ``xsi:nil="true"`` on its parent (an empty list's one element)."""
    marks = list(envelope.iter(_MARK))
    for mark in marks:
        parent = mark.getparent()
        if parent is not None:
            parent.remove(mark)
            parent.set(XSI_NIL, "true")
    if marks:  # one xsi declaration on the envelope, not one per nil element
        etree.cleanup_namespaces(envelope, top_nsmap={"xsi": XSI_NIL[1:].partition("}")[0]})


class SoapCodec:
    """JSON-shaped bodies in, SOAP envelopes out, and back: the rest of the client never sees XML."""

    def __init__(self, empty_lists: EmptyLists = "nil") -> None:
        # The WSDL is a local file: loading it touches no network, whatever the address it names.
        self.empty_lists = empty_lists
        self.client = zeep.Client(str(wsdl_path()), settings=HARDENED, plugins=[_NilToMark()])
        self.binding = self.client.wsdl.bindings[BINDING_QNAME]
        self._proxy = self.client.create_service(BINDING_QNAME, "http://127.0.0.1/soap")

    def encode(self, service: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        operation = self.binding.get(service)
        fields = {k: v for k, v in body.items() if k != "service" and v is not None}
        kwargs = to_zeep(operation.input.body.type, fields, self.empty_lists)
        envelope = self.client.create_message(self._proxy, service, **kwargs)
        _marks_to_nil(envelope)
        content = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation.soapaction or ""}"'}
        if self.empty_lists == "nil":
            headers[EMPTY_LISTS_HEADER] = "nil"
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


def to_zeep(xsd_type: Any, data: dict[str, Any], empty_lists: EmptyLists = "omit") -> dict[str, Any]:
    """A JSON object as zeep keyword arguments for ``xsd_type``. Fields the WSDL does not declare
    (newer ones) travel in the type's lax wildcard, as zeep refuses unknown keyword arguments.
    With ``empty_lists="nil"`` an empty list becomes one item holding the nil placeholder, which only
    ``SoapCodec.encode`` turns into ``xsi:nil`` (so other callers keep the default, ``"omit"``)."""
    declared = {name: element for name, element in xsd_type.elements if not name.startswith("_value_")}
    out: dict[str, Any] = {}
    extra: list[etree._Element] = []
    for key, value in data.items():
        element = declared.get(key)
        if element is None:
            extra.extend(_as_elements(key, value, empty_lists))
        elif isinstance(value, list):
            if not value and empty_lists == "nil" and _has_wildcard(element.type):
                out[key] = [{"_value_1": [etree.Element(_MARK)]}]
                continue
            out[key] = [
                to_zeep(element.type, v, empty_lists) if isinstance(v, dict) else _text(v) for v in value
            ]
        elif isinstance(value, dict):
            out[key] = to_zeep(element.type, value, empty_lists)
        else:
            out[key] = _text(value)
    if extra:
        out["_value_1"] = extra
    return out


def _has_wildcard(xsd_type: Any) -> bool:
    """Whether zeep takes the placeholder for items of ``xsd_type`` (every record of the WSDL does)."""
    return any(name == "_value_1" for name, _ in getattr(xsd_type, "elements", ()))


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "True" if value else "False"
    return value if value is None or isinstance(value, str) else str(value)


def _as_elements(name: str, value: Any, empty_lists: EmptyLists = "omit") -> list[etree._Element]:
    if value is None:
        return []
    if isinstance(value, list):
        if not value and empty_lists == "nil":
            empty = etree.Element(f"{{{TARGET_NAMESPACE}}}{name}")
            empty.append(etree.Element(_MARK))
            return [empty]
        return [e for item in value for e in _as_elements(name, item, empty_lists)]
    element = etree.Element(f"{{{TARGET_NAMESPACE}}}{name}")
    if isinstance(value, dict):
        for key, item in value.items():
            element.extend(_as_elements(key, item, empty_lists))
    else:
        element.text = str(_text(value))
    return [element]


def from_zeep(value: Any) -> Any:
    """A zeep reply object as plain JSON-shaped data: no ``None``, wildcard content unfolded, a
    nil list element (``xsi:nil``, see ``_NilToMark``) as ``[]`` and a nil single element absent."""
    if hasattr(value, "__values__") or isinstance(value, dict):
        items = value if isinstance(value, dict) else zeep.helpers.serialize_object(value, dict)
        out: dict[str, Any] = {}
        for key, item in items.items():
            if key.startswith("_value_"):
                for element in item or []:
                    if not isinstance(element, etree._Element):
                        continue
                    if element.tag == _MARK:
                        return EMPTY
                    if len(element) or element.text:
                        _add(out, etree.QName(element).localname, _element_value(element))
            elif item is not None and item != []:
                converted = from_zeep(item)
                if converted is not EMPTY:
                    out[key] = converted
        return out
    if isinstance(value, list):
        # an empty list's one nil element reads as [] (a nil item beside real ones is dropped)
        return [v for v in (from_zeep(v) for v in value) if v is not EMPTY]
    return value


def _add(out: dict[str, Any], key: str, value: Any) -> None:
    """One wildcard element into ``out``: repeats make a list; a nil one alone reads as ``[]``."""
    if value is EMPTY:
        out.setdefault(key, [])
    elif key not in out:
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
        if child.tag == _MARK:
            return EMPTY
        _add(out, etree.QName(child).localname, _element_value(child))
    return out
