"""SOAP 1.1 envelopes ↔ the JSON dicts of the REST face, with hostile-XML hygiene.

Requests come from outside, so they are parsed as hostile: no DTD at all (an XXE or an entity bomb
needs one), no entity resolution, no network, no huge trees, UTF-8 only. Every refusal is a
``SoapFault`` that the router answers as a ``soap:Fault`` with HTTP 500, never a stack trace.

Mapping rules (both directions, driven by the WSDL's own schema, ``soap_schema``): a repeated element
is a JSON list (an empty list is the element once with ``xsi:nil="true"``; a nil single element is an
absent field), a record is a JSON object, any other element a string (empty element → ``""``);
elements the schema does not declare (the lax wildcard) keep their local name and become a string,
an object, or a list when they repeat. Replies are written in the schema's sequence order, which
zeep needs, with undeclared keys last.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

from lxml import etree

from dvcsync.contract.wsdl import OPERATIONS, TARGET_NAMESPACE

from .soap_schema import Record, Schema, shipped_schema

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
EmptyLists = Literal["nil", "omit"]
"""How a JSON ``[]`` is written: ``"nil"`` (the WSDL's rule) as the list's element once with
``xsi:nil="true"``; ``"omit"`` as no element, for clients that did not ask for nil (a plain zeep
client reads a nil record as a record of nulls). Either way a nil list element is read as ``[]``."""
MAX_BODY_BYTES = 16 * 1024 * 1024
"""A batch of 100 full dossiers is well under 1 MiB; anything near this is abuse, not data."""

_DECLARED_ENCODING = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*\bencoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']"
)


class SoapFault(Exception):
    """A request refused at the protocol level: ``code`` is the SOAP 1.1 fault code's local name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------- safe parsing


def _hardened_parser() -> etree.XMLParser:
    """A fresh parser per request: lxml parsers must not be shared across threads."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def parse_untrusted(body: bytes) -> etree._Element:
    """Parse a request body, refusing DTDs, entities, other encodings and oversized documents."""
    if len(body) > MAX_BODY_BYTES:
        raise SoapFault("Client", f"request body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
    if not body.strip():
        raise SoapFault("Client", "empty request body: expected a SOAP 1.1 envelope")
    # Checked on the raw bytes before the parser sees anything: no DTD, hence no entity, ever.
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise SoapFault("Client", "DTDs and entity declarations are refused")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SoapFault("Client", f"request is not UTF-8 (byte {exc.start}); only UTF-8 is accepted") from exc
    declared = _DECLARED_ENCODING.match(body)
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii"):
        raise SoapFault("Client", f"encoding {declared.group(1).decode()!r} refused; only UTF-8 is accepted")
    try:
        root = etree.fromstring(body, _hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise SoapFault("Client", f"malformed XML: {exc.msg}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise SoapFault("Client", "DTDs and entity declarations are refused")
    for node in root.iter(etree.Entity):  # defence in depth: no entity reference survives
        raise SoapFault("Client", f"entity reference {node.text} refused")
    return root


_OPERATION_TAG = re.compile(
    rb"<(?:[A-Za-z_][\w.-]*:)?(" + b"|".join(op.encode() for op in OPERATIONS) + rb")[\s/>]"
)


def operation_of(body: bytes) -> str | None:
    """The operation a SOAP request names, by a scan of the raw bytes, without parsing anything.

    For layers that must classify a request before (or instead of) parsing it, such as fault
    injection and statistics keyed by service; ``None`` when no operation element is found.
    """
    match = _OPERATION_TAG.search(body, 0, 64 * 1024)
    return match.group(1).decode() if match else None


# ---------------------------------------------------------------- XML → dict


_XSI_NIL = f"{{{XSI}}}nil"
_NIL = frozenset({"true", "1"})
_NAMES: dict[str, str] = {}


def _local(tag: str) -> str:
    """``{ns}Name`` → ``Name``, memoised (a request repeats the same few dozen tags thousands of times)."""
    name = _NAMES.get(tag)
    if name is None:
        name = tag.rpartition("}")[2]
        if len(_NAMES) < 4096:  # tags come from outside: keep the memo bounded
            _NAMES[tag] = name
    return name


def _children(node: etree._Element) -> Iterator[etree._Element]:
    """Element children (the parser already dropped comments and PIs)."""
    for child in node:
        if isinstance(child.tag, str):
            yield child


def _is_nil(node: etree._Element) -> bool:
    return node.get(_XSI_NIL) in _NIL


def _generic(node: etree._Element) -> Any:
    """An undeclared element: text when it has no child elements, else an object (repeats → list)."""
    if len(node) == 0:
        return node.text or ""
    out: dict[str, Any] = {}
    for child in _children(node):
        if _is_nil(child):  # undeclared, so its arity is unknown: nil is how we write an empty list
            out.setdefault(_local(child.tag), [])
        else:
            _add_generic(out, _local(child.tag), _generic(child))
    return out


def _add_generic(out: dict[str, Any], name: str, value: Any) -> None:
    if out.get(name) == []:  # after a nil element: the list it started
        out[name] = [value]
    elif name not in out:
        out[name] = value
    elif isinstance(out[name], list):
        out[name].append(value)
    else:
        out[name] = [out[name], value]


def element_to_dict(node: etree._Element, record: Record, schema: Schema, path: str = "") -> dict[str, Any]:
    """The JSON object an element of ``record`` stands for (see the module doc for the rules)."""
    out: dict[str, Any] = {}
    by_name = record.by_name
    for child in _children(node):
        name = _local(child.tag)
        declared = by_name.get(name)
        if _is_nil(child):
            # a nil list element is the empty list (alone) or nothing (beside items); a nil single
            # element is an absent field; undeclared ones are taken as lists, the way we write []
            if declared is None or declared.repeated:
                out.setdefault(name, [])
            continue
        if declared is None:
            _add_generic(out, name, _generic(child))
            continue
        value: Any
        if declared.record is not None and (len(child) or not (child.text or "").strip()):
            where = f"{path}/{name}" if path else name
            value = element_to_dict(child, schema.records[declared.record], schema, where)
        else:
            value = _generic(child)  # a string, or a record where a string belongs: the portal decides
        if declared.repeated:
            out.setdefault(name, []).append(value)
        elif name in out:
            where = f"{path}/{name}" if path else name
            raise SoapFault("Client", f"element {where} appears more than once; it is not a list")
        else:
            out[name] = value
    return out


def parse_request(body: bytes, schema: Schema | None = None) -> tuple[str, dict[str, Any]]:
    """A SOAP 1.1 request → (operation, the JSON body without ``service``)."""
    schema = schema or shipped_schema()
    root = parse_untrusted(body)
    if root.tag == f"{{{SOAP12_ENV}}}Envelope":
        raise SoapFault("VersionMismatch", "SOAP 1.2 envelope; this service speaks SOAP 1.1")
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SoapFault("Client", f"root element {root.tag} is not a SOAP 1.1 Envelope")
    header = root.find(f"{{{SOAP_ENV}}}Header")
    if header is not None:
        for entry in header.iterchildren(tag=etree.Element):
            if entry.get(f"{{{SOAP_ENV}}}mustUnderstand") in ("1", "true"):
                raise SoapFault("MustUnderstand", f"header {entry.tag} is not understood")
    bodies = root.findall(f"{{{SOAP_ENV}}}Body")
    if len(bodies) != 1:
        raise SoapFault("Client", f"expected one soap:Body, found {len(bodies)}")
    payload = list(bodies[0].iterchildren(tag=etree.Element))
    if len(payload) != 1:
        raise SoapFault("Client", f"expected one operation element in soap:Body, found {len(payload)}")
    operation = payload[0]
    name = _local(operation.tag)
    if operation.tag != f"{{{TARGET_NAMESPACE}}}{name}" or name not in OPERATIONS:
        known = ", ".join(OPERATIONS)
        raise SoapFault("Client", f"unknown operation {operation.tag}; expected one of {known}")
    return name, element_to_dict(operation, schema.elements[name], schema)


# ---------------------------------------------------------------- dict → XML


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _append(
    parent: etree._Element,
    name: str,
    value: Any,
    record: Record | None,
    schema: Schema,
    empty_lists: EmptyLists = "omit",
) -> None:
    if value is None:
        return
    if isinstance(value, list | tuple):
        if not value and empty_lists == "nil":
            try:
                etree.SubElement(parent, f"{{{TARGET_NAMESPACE}}}{name}").set(_XSI_NIL, "true")
            except ValueError:
                raise ValueError(f"key {name!r} is not a valid XML element name") from None
            return
        for item in value:
            if isinstance(item, list | tuple):
                raise ValueError(f"{name}: a list of lists has no XML form")
            _append(parent, name, item, record, schema, empty_lists)
        return
    try:
        child = etree.SubElement(parent, f"{{{TARGET_NAMESPACE}}}{name}")
    except ValueError:
        raise ValueError(f"key {name!r} is not a valid XML element name") from None
    if isinstance(value, dict):
        fill(child, value, record, schema, empty_lists)
    else:
        child.text = _text(value)


def fill(
    node: etree._Element,
    data: dict[str, Any],
    record: Record | None,
    schema: Schema,
    empty_lists: EmptyLists = "omit",
) -> None:
    """Write ``data`` as children of ``node``: declared fields in schema order, then the rest."""
    done: set[str] = set()
    if record is not None:
        for declared in record.fields:
            if declared.name in data:
                _append(
                    node,
                    declared.name,
                    data[declared.name],
                    schema.record(declared.record),
                    schema,
                    empty_lists,
                )
                done.add(declared.name)
    for key, value in data.items():
        if key not in done:
            _append(node, key, value, None, schema, empty_lists)


def _envelope() -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(
        f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV, "xsi": XSI, None: TARGET_NAMESPACE}
    )
    return envelope, etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")


def build_response(
    operation: str, reply: dict[str, Any], schema: Schema | None = None, empty_lists: EmptyLists = "omit"
) -> bytes:
    """The SOAP reply of ``operation`` carrying the JSON ``reply`` dict (``[]`` as ``empty_lists`` says)."""
    schema = schema or shipped_schema()
    name = f"{operation}Response"
    envelope, body = _envelope()
    element = etree.SubElement(body, f"{{{TARGET_NAMESPACE}}}{name}")
    fill(element, reply, schema.elements[name], schema, empty_lists)
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def build_request(
    operation: str, payload: dict[str, Any], schema: Schema | None = None, empty_lists: EmptyLists = "omit"
) -> bytes:
    """A SOAP request for ``operation`` (``service`` dropped: the operation names it). For tests and tools."""
    schema = schema or shipped_schema()
    envelope, body = _envelope()
    element = etree.SubElement(body, f"{{{TARGET_NAMESPACE}}}{operation}")
    payload = {k: v for k, v in payload.items() if k != "service"}
    fill(element, payload, schema.elements[operation], schema, empty_lists)
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def parse_response(body: bytes, schema: Schema | None = None) -> tuple[str, dict[str, Any]]:
    """A SOAP reply → (operation, JSON reply dict); a Fault raises ``SoapFault``. For tests and tools."""
    schema = schema or shipped_schema()
    root = parse_untrusted(body)
    element = root.find(f"{{{SOAP_ENV}}}Body/*")
    if element is None:
        raise SoapFault("Client", "reply has an empty soap:Body")
    if element.tag == f"{{{SOAP_ENV}}}Fault":
        code = (element.findtext("faultcode") or "").rpartition(":")[2]
        raise SoapFault(code, element.findtext("faultstring") or "")
    name = _local(element.tag)
    if not name.endswith("Response") or name not in schema.elements:
        raise SoapFault("Client", f"unknown reply element {element.tag}")
    return name.removesuffix("Response"), element_to_dict(element, schema.elements[name], schema)


def build_fault(code: str, message: str) -> bytes:
    """A SOAP 1.1 Fault; ``code`` is ``Client``, ``Server``, ``VersionMismatch`` or ``MustUnderstand``."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{code}"
    etree.SubElement(fault, "faultstring").text = message
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
