"""The shipped WSDL: loadable by a hardened zeep, exactly the nine operations, every contract field.

The zeep check uses no XML Schema validator (the lax wildcards are ambiguous to XSD 1.0 tools by
design, see the WSDL's documentation); the field checks read the file with plain lxml.
"""

from __future__ import annotations

from typing import Any

import pytest
import zeep
from lxml import etree

from dvcsync.contract import (
    REQUEST_MODELS,
    DinhDanh,
    GiayToKetQua,
    HoSo,
    HoSoBoSung,
    ItemResult,
    KetNoiCSDL,
    LePhi,
    TaiLieu,
    TepDinhKemKhac,
    ThuTuc,
    TienDo,
    TrangThaiHoSoDVC,
    WireModel,
)
from dvcsync.contract.wsdl import BINDING_QNAME, OPERATIONS, TARGET_NAMESPACE, wsdl_bytes, wsdl_path

XSD = "{http://www.w3.org/2001/XMLSchema}"
WSDL = "{http://schemas.xmlsoap.org/wsdl/}"
SOAP = "{http://schemas.xmlsoap.org/wsdl/soap/}"
HARDENED = zeep.Settings(forbid_dtd=True, forbid_entities=True, forbid_external=True, strict=True)


@pytest.fixture(scope="module")
def client() -> zeep.Client:
    return zeep.Client(str(wsdl_path()), settings=HARDENED)


@pytest.fixture(scope="module")
def schema() -> etree._Element:
    found = etree.fromstring(wsdl_bytes()).find(f".//{XSD}schema")
    assert found is not None
    return found


def _declared(xsd_type: Any) -> list[str]:
    """Declared element names in order, without zeep's ``_value_1`` for the wildcard."""
    return [name for name, _ in xsd_type.elements if not name.startswith("_value_")]


def test_the_file_ships_in_the_package() -> None:
    path = wsdl_path()
    assert path.is_file() and path.suffix == ".wsdl"
    assert path.parent.name == "wsdl" and path.parent.parent.name == "contract"
    assert path.read_bytes() == wsdl_bytes()


def test_zeep_lists_exactly_the_nine_operations(client: zeep.Client) -> None:
    binding = client.wsdl.bindings[BINDING_QNAME]
    assert sorted(binding._operations) == sorted(OPERATIONS)
    assert len(OPERATIONS) == 9
    services = list(client.wsdl.services.values())
    assert [s.name for s in services] == ["DVCQGService"]
    (port,) = services[0].ports.values()
    assert port.binding_options["address"] == "http://127.0.0.1:8080/soap"
    assert type(port.binding).__name__ == "Soap11Binding"


@pytest.mark.parametrize("operation", OPERATIONS)
def test_each_operation_is_document_literal_wrapped_and_named_as_the_service(
    client: zeep.Client, operation: str
) -> None:
    op = client.wsdl.bindings[BINDING_QNAME].get(operation)
    assert op.style == "document"
    assert op.soapaction == f"{TARGET_NAMESPACE}#{operation}"
    assert op.input.body.qname == etree.QName(TARGET_NAMESPACE, operation)
    assert op.output.body.qname == etree.QName(TARGET_NAMESPACE, f"{operation}Response")


@pytest.mark.parametrize("service", [s for s in OPERATIONS if s != "TraCuuThongTinCongDan"])
def test_request_elements_carry_the_json_envelope_fields(client: zeep.Client, service: str) -> None:
    declared = set(_declared(client.get_element(f"{{{TARGET_NAMESPACE}}}{service}").type))
    model = REQUEST_MODELS[service]
    assert declared == set(model.model_fields) - {"service"}, "service is named by the operation"


@pytest.mark.parametrize(
    ("type_name", "model"),
    [
        ("HoSo", HoSo),
        ("TienDo", TienDo),
        ("TrangThaiHoSoDVC", TrangThaiHoSoDVC),
        ("TaiLieu", TaiLieu),
        ("LePhi", LePhi),
        ("DinhDanh", DinhDanh),
        ("KetNoiCSDL", KetNoiCSDL),
        ("TepDinhKemKhac", TepDinhKemKhac),
        ("HoSoBoSung", HoSoBoSung),
        ("GiayToKetQua", GiayToKetQua),
    ],
)
def test_record_types_declare_every_contract_field_in_contract_order(
    client: zeep.Client, type_name: str, model: type[WireModel]
) -> None:
    declared = _declared(client.get_type(f"{{{TARGET_NAMESPACE}}}{type_name}"))
    assert declared == list(model.model_fields)


def test_result_items_cover_every_reply_shape(client: zeep.Client) -> None:
    declared = set(_declared(client.get_type(f"{{{TARGET_NAMESPACE}}}KetQua")))
    assert set(HoSo.model_fields) | {"QuaTrinhXuLy"} <= declared  # TraCuuHoSo, DanhSachHoSo
    assert set(ItemResult.model_fields) <= declared  # batch writes
    assert set(ThuTuc.model_fields) <= declared  # LayThuTuc, LayDanhSachTTHC


def test_every_field_is_an_optional_string_or_a_record(schema: etree._Element) -> None:
    problems: list[str] = []
    for element in schema.iter(f"{XSD}element"):
        if element.getparent() is schema:
            continue  # global elements: the operations' requests and replies
        if element.get("minOccurs") != "0":
            problems.append(f"{element.get('name')} is not optional")
        if not (element.get("type") == "xsd:string" or element.get("type", "").startswith("tns:")):
            problems.append(f"{element.get('name')} has type {element.get('type')}")
    assert problems == []


def test_every_record_type_ends_with_a_lax_wildcard(schema: etree._Element) -> None:
    sequences = [ct.find(f"{XSD}sequence") for ct in schema.iter(f"{XSD}complexType")]
    missing = []
    for sequence in sequences:
        assert sequence is not None
        owner = sequence.getparent()
        name = owner.get("name") or owner.getparent().get("name")
        if name == "CongdanCollection":
            continue  # a pure list wrapper of the population database's shape
        last = sequence[-1]
        wildcard: dict[str, Any] = dict(last.attrib) if last.tag == f"{XSD}any" else {}
        expected = {
            "namespace": "##any",
            "processContents": "lax",
            "minOccurs": "0",
            "maxOccurs": "unbounded",
        }
        if wildcard != expected:
            missing.append(name)
    assert missing == []


def test_nested_lists_are_repeated_record_elements(client: zeep.Client) -> None:
    hoso = dict(client.get_type(f"{{{TARGET_NAMESPACE}}}HoSo").elements)
    for name in ("DinhDanhCHS", "DSKetNoiCSDL", "TaiLieuNop", "DanhSachLePhi", "DanhSachHoSoBoSung"):
        assert hoso[name].max_occurs == "unbounded", name
        assert hoso[name].type.qname.namespace == TARGET_NAMESPACE
    assert dict(client.get_type(f"{{{TARGET_NAMESPACE}}}TienDo").elements)["TrangThai"].max_occurs == 1


def test_documentation_names_the_session_choice_and_fault_rules() -> None:
    root = etree.fromstring(wsdl_bytes())
    text = " ".join(root.findtext(f"{WSDL}documentation", default="").split())
    assert "no login operation" in text and "/dvcqg/auth" in text and "dstcode" in text
    assert "soap:Fault with HTTP 500" in text and "non-zero error_code" in text
    assert "TraCuuThongTinCongDan" in text and "takes no session" in text


def test_the_wsdl_itself_has_no_dtd_and_no_imports() -> None:
    """Loading it must never touch the network (the adapter starts offline)."""
    raw = wsdl_bytes()
    assert b"<!DOCTYPE" not in raw and b"<!ENTITY" not in raw
    root = etree.fromstring(raw)
    assert root.findall(f".//{WSDL}import") == [] and root.findall(f".//{XSD}import") == []
    assert root.findall(f".//{XSD}include") == []


def test_the_schema_is_valid_xsd_but_for_the_deliberate_wildcard_ambiguity(schema: etree._Element) -> None:
    """libxml2 (XSD 1.0) flags the ##any wildcards as ambiguous, as the WSDL documents; with ##other
    in their place the schema must be valid, so nothing else is wrong with it."""
    with pytest.raises(etree.XMLSchemaParseError, match="not determinist"):
        etree.XMLSchema(etree.fromstring(etree.tostring(schema)))
    strict = etree.fromstring(etree.tostring(schema).replace(b'namespace="##any"', b'namespace="##other"'))
    etree.XMLSchema(strict)
