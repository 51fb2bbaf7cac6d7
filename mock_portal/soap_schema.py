"""The record layout of the shipped WSDL, read from the WSDL itself.

The XML↔dict mapping needs three facts per element: is it repeated (a JSON list), is it a record (a
JSON object) and where does it go in its parent's sequence (zeep reads sequences in order). Reading
them from the one WSDL file keeps the mapping and the published contract from drifting apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from lxml import etree

from dvcsync.contract.wsdl import TARGET_NAMESPACE, wsdl_bytes

XSD = "http://www.w3.org/2001/XMLSchema"


@dataclass(frozen=True)
class Field:
    """One declared child element: ``record`` names its complex type, ``None`` for a string."""

    name: str
    record: str | None
    repeated: bool


@dataclass(frozen=True)
class Record:
    """A complex type: its declared children in sequence order (a lax wildcard follows them)."""

    name: str
    fields: tuple[Field, ...]
    by_name: dict[str, Field] = field(compare=False, repr=False)


@dataclass(frozen=True)
class Schema:
    records: dict[str, Record]
    elements: dict[str, Record]
    """Global elements (operation requests and replies) by local name."""

    def record(self, name: str | None) -> Record | None:
        return None if name is None else self.records[name]


def _q(tag: str) -> str:
    return f"{{{XSD}}}{tag}"


def _type_of(node: etree._Element, qname: str) -> str | None:
    """``tns:HoSo`` → ``"HoSo"``; any XSD built-in (all our scalars are strings) → ``None``."""
    prefix, _, local = qname.rpartition(":")
    namespace = node.nsmap.get(prefix or None)
    if namespace == TARGET_NAMESPACE:
        return local
    if namespace == XSD:
        return None
    raise ValueError(f"WSDL: type {qname!r} is neither in the target namespace nor a built-in")


def _fields(sequence: etree._Element, groups: dict[str, etree._Element], owner: str) -> list[Field]:
    out: list[Field] = []
    for child in sequence.iterchildren(tag=etree.Element):
        if child.tag == _q("element"):
            type_name = child.get("type")
            if type_name is None:
                raise ValueError(f"WSDL: {owner}/{child.get('name')} has an inline type; name it")
            repeated = child.get("maxOccurs", "1") not in ("1", "0")
            out.append(Field(child.get("name", ""), _type_of(child, type_name), repeated))
        elif child.tag == _q("group"):
            ref = child.get("ref", "")
            group = groups[ref.rpartition(":")[2]]
            out.extend(_fields(group.find(_q("sequence")), groups, owner))
        elif child.tag in (_q("any"), _q("annotation")):
            continue
        else:
            raise ValueError(f"WSDL: {owner} uses {child.tag}; only sequences of elements are mapped")
    return out


def _record(name: str, complex_type: etree._Element, groups: dict[str, etree._Element]) -> Record:
    sequence = complex_type.find(_q("sequence"))
    fields = tuple(_fields(sequence, groups, name)) if sequence is not None else ()
    return Record(name, fields, {f.name: f for f in fields})


def parse_schema(wsdl: bytes) -> Schema:
    """Index the WSDL's embedded schema (trusted: the file shipped with the package)."""
    root = etree.fromstring(wsdl, etree.XMLParser(resolve_entities=False, no_network=True))
    schema = root.find(f".//{_q('schema')}")
    if schema is None or schema.get("targetNamespace") != TARGET_NAMESPACE:
        raise ValueError(f"WSDL: no xsd:schema for {TARGET_NAMESPACE}")
    groups = {g.get("name", ""): g for g in schema.findall(_q("group"))}
    records = {
        ct.get("name", ""): _record(ct.get("name", ""), ct, groups)
        for ct in schema.findall(_q("complexType"))
    }
    elements: dict[str, Record] = {}
    for element in schema.findall(_q("element")):
        name = element.get("name", "")
        type_name = element.get("type")
        if type_name is not None:
            record_name = _type_of(element, type_name)
            if record_name is None:
                raise ValueError(f"WSDL: global element {name} must be a record")
            elements[name] = records[record_name]
        else:
            inline = element.find(_q("complexType"))
            if inline is None:
                raise ValueError(f"WSDL: global element {name} has no type")
            elements[name] = _record(name, inline, groups)
    return Schema(records, elements)


@cache
def shipped_schema() -> Schema:
    """The schema of the WSDL shipped in ``dvcsync.contract.wsdl``, read once."""
    return parse_schema(wsdl_bytes())
