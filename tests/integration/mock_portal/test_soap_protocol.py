"""The SOAP face's protocol layer over real HTTP, on a recording dispatcher.

The dispatcher here records what reaches it, which is what these tests are about: hostile or broken
XML must never reach it, and what does reach it must be the exact JSON body of the REST face. The
same operations against the real mock's state are in ``test_soap_portal.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import zeep
from fastapi import FastAPI, HTTPException
from lxml import etree

from dvcsync.contract.wsdl import BINDING_QNAME, OPERATIONS, wsdl_bytes
from mock_portal.soap import soap_router

from .soap_support import HARDENED, serve, to_wire, zeep_service

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


@dataclass
class Recorder:
    calls: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    error: BaseException | None = None

    async def handle(self, endpoint: str, body: dict[str, Any], dstcode: str | None) -> dict[str, Any]:
        self.calls.append((endpoint, body, dstcode))
        if self.error is not None:
            raise self.error
        return self.reply or {"error_code": 0, "message": "", "result": []}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    app = FastAPI()
    app.include_router(soap_router(recorder.handle))
    with serve(app) as url:
        yield url, recorder


@pytest.fixture
def soap(served: tuple[str, Recorder]) -> tuple[str, Recorder]:
    url, recorder = served
    recorder.calls.clear()
    recorder.reply = None
    recorder.error = None
    return f"{url}/soap", recorder


def _post(url: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(url, content=body, headers={"Content-Type": "text/xml; charset=utf-8", **headers})


def _envelope(inner: str) -> bytes:
    return f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body>{inner}</s:Body></s:Envelope>'.encode()


def _fault(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/xml")
    fault = etree.fromstring(response.content).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None, response.text
    return fault.findtext("faultcode") or "", fault.findtext("faultstring") or ""


# ---------------------------------------------------------------- the WSDL


def test_the_served_wsdl_is_the_shipped_file_with_the_address_it_was_fetched_from(
    soap: tuple[str, Recorder],
) -> None:
    url, _ = soap
    response = httpx.get(f"{url}?wsdl")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content == wsdl_bytes().replace(b"http://127.0.0.1:8080/soap", url.encode())


def test_zeep_loads_the_served_wsdl_and_sees_nine_operations(soap: tuple[str, Recorder]) -> None:
    url, _ = soap
    client = zeep.Client(f"{url}?wsdl", settings=HARDENED)
    assert sorted(client.wsdl.bindings[BINDING_QNAME]._operations) == sorted(OPERATIONS)


def test_get_without_wsdl_says_what_to_do(soap: tuple[str, Recorder]) -> None:
    url, _ = soap
    response = httpx.get(url)
    assert response.status_code == 400 and "/soap?wsdl" in response.text


# ---------------------------------------------------------------- what reaches the dispatcher


def test_a_zeep_call_becomes_the_rest_body(soap: tuple[str, Recorder]) -> None:
    url, recorder = soap
    recorder.reply = {
        "error_code": 0,
        "message": "OK",
        "result": [{"MaHoSo": "A", "error_code": 0, "message": ""}],
    }
    service = zeep_service(url)
    dossier = {
        "MaHoSo": "A",
        "ChuHoSo": "Lê Quang Cường",
        "NgayTra": "",
        "TaiLieuNop": [{"TepDinhKemId": "1"}],
    }
    newer = etree.Element("{urn:dvcqg:lgsp:v1}MaHoSoLienThong")
    newer.text = "LT-1"
    reply = service.DongBoHoSoMC(
        session="S", madonvi="000.00.01.H40", isUpdating="False", data=[{**dossier, "_value_1": [newer]}]
    )
    assert recorder.calls == [
        (
            "integration",
            {
                "session": "S",
                "madonvi": "000.00.01.H40",
                "service": "DongBoHoSoMC",
                "isUpdating": "False",
                "data": [{**dossier, "MaHoSoLienThong": "LT-1"}],
            },
            None,
        )
    ]
    assert to_wire(reply) == {
        "error_code": "0",
        "message": "OK",
        "result": [{"MaHoSo": "A", "error_code": "0"}],
    }


def test_dstcode_header_and_share_endpoint_reach_the_dispatcher(soap: tuple[str, Recorder]) -> None:
    url, recorder = soap
    body = (
        f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><LayDanhSachTTHC xmlns="urn:dvcqg:lgsp:v1">'
        "<session>S</session><madonvi>M</madonvi></LayDanhSachTTHC></s:Body></s:Envelope>"
    ).encode()
    response = _post(url, body, dstcode="DST-42")
    assert response.status_code == 200
    assert recorder.calls == [
        ("share", {"session": "S", "madonvi": "M", "service": "LayDanhSachTTHC"}, "DST-42")
    ]


def test_a_service_element_contradicting_the_operation_is_a_fault(soap: tuple[str, Recorder]) -> None:
    url, recorder = soap
    body = (
        f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><TraCuuHoSo xmlns="urn:dvcqg:lgsp:v1">'
        "<service>DongBoHoSoMC</service></TraCuuHoSo></s:Body></s:Envelope>"
    ).encode()
    code, message = _fault(_post(url, body))
    assert code == "soap:Client" and "contradicts operation TraCuuHoSo" in message
    assert recorder.calls == []


# ---------------------------------------------------------------- hostile and broken XML

PASSWD = "file:///etc/passwd"
XXE = (
    '<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "{target}">]>'
    f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><TraCuuHoSo xmlns="urn:dvcqg:lgsp:v1">'
    "<session>S</session><mahoso>&x;</mahoso></TraCuuHoSo></s:Body></s:Envelope>"
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY a "lollollollollollollollollollol">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + f']><s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><TraCuuHoSo xmlns="urn:dvcqg:lgsp:v1">'
    "<mahoso>&j;</mahoso></TraCuuHoSo></s:Body></s:Envelope>"
)
ATTACKS = {
    "xxe-file": XXE.format(target=PASSWD),
    "xxe-network": XXE.format(target="http://127.0.0.1:9/steal"),
    "billion-laughs": LAUGHS,
    "dtd-present": f'<!DOCTYPE s:Envelope><s:Envelope xmlns:s="{SOAP_ENV}"><s:Body/></s:Envelope>',
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_xml_attacks_get_a_fault_and_never_reach_the_dispatcher(
    soap: tuple[str, Recorder], name: str
) -> None:
    url, recorder = soap
    response = _post(url, ATTACKS[name].encode())
    code, message = _fault(response)
    assert code == "soap:Client" and "DTDs and entity declarations are refused" in message
    assert recorder.calls == []
    assert "root:" not in response.text and "lollol" not in response.text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<s:Envelope xmlns:s='x'><unclosed>", "malformed XML"),
        (b"not xml at all", "malformed XML"),
        (b"", "empty request body"),
        (b'{"service": "TraCuuHoSo"}', "malformed XML"),
        (
            _envelope('<Bogus xmlns="urn:dvcqg:lgsp:v1"/>'),
            "unknown operation",
        ),
    ],
    ids=["unclosed", "text", "empty", "json", "unknown-operation"],
)
def test_broken_requests_get_a_fault_not_a_stack_trace(
    soap: tuple[str, Recorder], body: bytes, expected: str
) -> None:
    url, recorder = soap
    response = _post(url, body)
    code, message = _fault(response)
    assert code == "soap:Client" and expected in message
    assert "Traceback" not in response.text and recorder.calls == []


def test_zeep_raises_the_fault(soap: tuple[str, Recorder]) -> None:
    """What an adapter sees: a protocol failure is a zeep Fault, a business refusal a normal reply."""
    url, recorder = soap
    recorder.error = RuntimeError("secret detail 040085367903")
    with pytest.raises(zeep.exceptions.Fault) as caught:
        zeep_service(url).TraCuuHoSo(session="S", madonvi="M", mahoso="A")
    assert caught.value.code == "soap:Server"
    assert "040085367903" not in caught.value.message and "secret" not in caught.value.message
    recorder.error = None
    recorder.reply = {"error_code": 401, "message": "Phiên làm việc hết hạn", "result": []}
    reply = zeep_service(url).TraCuuHoSo(session="S", madonvi="M", mahoso="A")
    assert to_wire(reply) == {"error_code": "401", "message": "Phiên làm việc hết hạn"}


def test_status_level_answers_of_the_dispatcher_stay_http_answers(soap: tuple[str, Recorder]) -> None:
    url, recorder = soap
    recorder.error = HTTPException(status_code=429, detail="slow down", headers={"Retry-After": "3"})
    body = _envelope('<TraCuuHoSo xmlns="urn:dvcqg:lgsp:v1"/>')
    response = _post(url, body)
    assert response.status_code == 429 and response.headers["retry-after"] == "3"


def test_a_reply_that_has_no_xml_form_is_a_server_fault(soap: tuple[str, Recorder]) -> None:
    url, recorder = soap
    recorder.reply = {"error_code": 0, "result": [{"not a name": "x"}]}
    body = _envelope('<TraCuuHoSo xmlns="urn:dvcqg:lgsp:v1"/>')
    code, message = _fault(_post(url, body))
    assert code == "soap:Server" and "cannot be written as XML" in message


# ---------------------------------------------------------------- citizen lookup (answered by the SOAP face)


def test_citizen_lookup_by_id(soap: tuple[str, Recorder]) -> None:
    url, recorder = soap
    reply = to_wire(zeep_service(url).TraCuuThongTinCongDan(SoDinhDanh="040085367903"))
    assert reply == {
        "error_code": "0",
        "message": "Thành công",
        "CongdanCollection": {
            "CongDan": [
                {
                    "SoDinhDanh": "040085367903",
                    "HoVaTen": {"Ho": "Nguyễn", "ChuDem": "Văn", "Ten": "An"},
                    "GioiTinh": "1",
                    "NgayThangNamSinh": {"NgayThangNam": "19850314"},
                    "ThuongTru": {
                        "MaTinhThanh": "40",
                        "MaQuanHuyen": "412",
                        "MaPhuongXa": "16681",
                        "ChiTiet": "Số 12, đường Lê Lợi, khối 5",
                    },
                }
            ]
        },
    }
    assert recorder.calls == []  # the population database is not the portal


@pytest.mark.parametrize(
    ("name", "born", "found"),
    [
        ("nguyễn  văn AN", "", True),
        ("Nguyễn Văn An", "19850314", True),
        ("Nguyễn Văn Anh", "", False),
        ("", "19850315", False),
    ],
)
def test_citizen_lookup_also_matches_name_and_birth_date(
    soap: tuple[str, Recorder], name: str, born: str, found: bool
) -> None:
    url, _ = soap
    reply = zeep_service(url).TraCuuThongTinCongDan(
        SoDinhDanh="040085367903", HoVaTen=name, NgayThangNam=born
    )
    assert reply.error_code == "0"
    people = to_wire(reply).get("CongdanCollection", {}).get("CongDan", [])  # zeep: an empty one is None
    assert [p["SoDinhDanh"] for p in people] == (["040085367903"] if found else [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "SoDinhDanh is required"),
        ({"SoDinhDanh": "04008536790"}, "'04008536790' is not a 12-digit citizen ID"),
        ({"SoDinhDanh": "040085367903", "NgayThangNam": "19850231"}, "'19850231' is not a real date"),
    ],
)
def test_citizen_lookup_refuses_malformed_requests(
    soap: tuple[str, Recorder], kwargs: dict[str, str], message: str
) -> None:
    url, _ = soap
    reply = zeep_service(url).TraCuuThongTinCongDan(**kwargs)
    assert reply.error_code == "1" and message in reply.message
    assert reply.CongdanCollection is None
