"""What the mock serves about itself matches where it is reached: the WSDL's ``soap:address``
(a zeep client that takes the address from the WSDL posts to this mock, on whatever port), the
payment page's URL, and Swagger UI served from the mock itself (no CDN, offline networks)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import zeep
from lxml import etree

from dvcsync.contract.wsdl import BINDING_QNAME, OPERATIONS
from mock_portal.testing import RunningMock, run_mock

from .soap_support import HARDENED
from .support import init_body

WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"


def _address(wsdl: bytes) -> str:
    found = etree.fromstring(wsdl).find(f".//{{{WSDL_SOAP}}}address")
    assert found is not None
    return str(found.get("location"))


def _zeep_default_service(mock: RunningMock) -> Any:
    """zeep as a developer uses it: the WSDL from the mock, the address from the WSDL."""
    transport = zeep.Transport(timeout=10, operation_timeout=10)
    client = zeep.Client(f"{mock.url}/soap?wsdl", settings=HARDENED, transport=transport)
    client.transport.session.headers["dstcode"] = mock.config.credentials.dstcode
    assert sorted(client.wsdl.bindings[BINDING_QNAME]._operations) == sorted(OPERATIONS)
    return client.service


def _session(mock: RunningMock) -> str:
    creds = mock.config.credentials
    reply = httpx.post(
        f"{mock.url}/dvcqg/auth",
        json={"username": creds.username, "password": creds.password},
        headers={"dstcode": creds.dstcode},
    ).json()
    return str(reply["session"])


def test_zeep_on_a_random_port_posts_where_it_loaded_the_wsdl() -> None:
    with run_mock() as mock:
        assert not mock.url.endswith(":8080")
        assert _address(httpx.get(f"{mock.url}/soap?wsdl").content) == f"{mock.url}/soap"
        service = _zeep_default_service(mock)
        reply = service.LayThuTuc(
            session=_session(mock), madonvi=mock.config.credentials.madonvi, maTTHC="1.001193"
        )
        assert str(reply["error_code"]) == "0"
        stats = httpx.get(f"{mock.url}/_admin/stats").json()
        assert "LayThuTuc" in str(stats), stats  # the call landed on this mock


def test_the_address_follows_the_host_the_client_used() -> None:
    with run_mock() as mock:
        port = mock.url.rsplit(":", 1)[1]
        wsdl = httpx.get(f"http://localhost:{port}/soap?wsdl").content
        assert _address(wsdl) == f"http://localhost:{port}/soap"
        hostile = httpx.get(f"{mock.url}/soap?wsdl", headers={"host": 'a"/><x y="'}).content
        etree.fromstring(hostile)  # still well-formed: the Host header is escaped, never markup


def test_public_url_wins_for_the_wsdl_and_the_pay_page() -> None:
    with run_mock(public_url="https://dvc-mock.example.vn/lgsp/") as mock:
        assert mock.config.public_url == "https://dvc-mock.example.vn/lgsp"
        wsdl = httpx.get(f"{mock.url}/soap?wsdl").content
        assert _address(wsdl) == "https://dvc-mock.example.vn/lgsp/soap"
        init = httpx.post(f"{mock.url}/payment/init", json=init_body("REF-PUBLIC")).json()
        assert "https://dvc-mock.example.vn/lgsp/payment/pay/REF-PUBLIC" in init["message"], init


def test_docs_are_served_by_the_mock_itself() -> None:
    cdn = re.compile(r"cdn\.jsdelivr\.net|unpkg\.com|cdnjs|fonts\.googleapis\.com")
    with run_mock() as mock:
        for page_path, needs_css in (("/docs", True), ("/redoc", False)):
            page = httpx.get(f"{mock.url}{page_path}")
            assert page.status_code == 200, page_path
            assert not cdn.search(page.text), page.text
            assets = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+\.(?:js|css))['"]""", page.text)
            assert any(a.endswith(".js") for a in assets), (page_path, assets)
            assert not needs_css or any(a.endswith(".css") for a in assets), assets
            for asset in assets:
                assert asset.startswith("/"), f"{asset} is not served by the mock"
                assert httpx.get(f"{mock.url}{asset}").status_code == 200, asset
        assert httpx.get(f"{mock.url}/openapi.json").status_code == 200
