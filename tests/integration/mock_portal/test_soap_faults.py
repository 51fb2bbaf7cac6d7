"""The mock's fault layer seen through the SOAP face, as a zeep client meets it.

Pins down what the adapter's SOAP transport must expect (issue 5): zeep turns several transport
faults into exceptions that do not say "retry me" (a 503 gateway page becomes a zeep ``Fault``),
so the HTTP status must be looked at before the SOAP body. Building the envelope with zeep and
carrying it with httpx keeps status, headers and ``Retry-After`` in hand; that route is tested too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import zeep
from lxml import etree

from dvcsync.contract.wsdl import BINDING_QNAME, wsdl_path
from mock_portal.testing import RunningMock, run_mock

from .soap_support import HARDENED, zeep_service

CODE = "000.00.01.H40-251123-0777"
DOSSIER = {
    "MaHoSo": CODE,
    "MaTTHC": "1.001193",
    "ChuHoSo": "Hồ Thị Lan",
    "NgayTiepNhan": "20251123080000",
    "TrangThaiHoSo": "2",
    "DonViXuLy": "UBND xã Hưng Lộc",
}


@pytest.fixture(scope="module")
def mock() -> Iterator[RunningMock]:
    with run_mock() as running:
        yield running


@pytest.fixture
def session(mock: RunningMock) -> Iterator[str]:
    creds = mock.config.credentials
    assert httpx.post(f"{mock.url}/_admin/reset").status_code == 200
    reply = httpx.post(
        f"{mock.url}/dvcqg/auth",
        json={"username": creds.username, "password": creds.password},
        headers={"dstcode": creds.dstcode},
    ).json()
    yield reply["session"]
    assert httpx.put(f"{mock.url}/_admin/faults", json={"rules": []}).status_code == 200


def _faults(mock: RunningMock, **rule: Any) -> None:
    response = httpx.put(
        f"{mock.url}/_admin/faults", json={"seed": 1, "rules": [{"service": "soap", **rule}]}
    )
    assert response.status_code == 200, response.text


def _service(mock: RunningMock, timeout: float = 10) -> Any:
    service = zeep_service(f"{mock.url}/soap", timeout=timeout)
    service._client.transport.session.headers["dstcode"] = mock.config.credentials.dstcode
    return service


def _create(mock: RunningMock, session: str, timeout: float = 10) -> Any:
    madonvi = mock.config.credentials.madonvi
    return _service(mock, timeout).DongBoHoSoMC(
        session=session, madonvi=madonvi, isUpdating="False", data=[DOSSIER]
    )


def _stored(mock: RunningMock) -> Any:
    response = httpx.get(f"{mock.url}/_admin/dossiers/{CODE}")
    return response.json() if response.status_code == 200 else None


def test_throttling_is_a_transport_error_429(mock: RunningMock, session: str) -> None:
    _faults(mock, throttle_rate=1, retry_after_s=7)
    with pytest.raises(zeep.exceptions.TransportError) as caught:
        _create(mock, session)
    assert caught.value.status_code == 429 and _stored(mock) is None


def test_a_gateway_error_page_reads_as_a_zeep_fault_so_check_the_status_first(
    mock: RunningMock, session: str
) -> None:
    _faults(mock, status_rates={"503": 1})
    with pytest.raises(zeep.exceptions.Fault) as caught:
        _create(mock, session)
    assert caught.value.code is None  # not a soap:Fault at all: an HTML page that happens to be XML
    assert _stored(mock) is None


def test_a_malformed_reply_is_a_transport_error_and_the_write_was_applied(
    mock: RunningMock, session: str
) -> None:
    _faults(mock, malformed_rate=1)
    with pytest.raises(zeep.exceptions.TransportError):
        _create(mock, session)
    assert _stored(mock)["writes"] == 1


@pytest.mark.parametrize("rule", [{"lost_reply_rate": 1}, {"reset_rate": 1}], ids=["lost-reply", "reset"])
def test_dropped_connections_are_requests_errors(
    mock: RunningMock, session: str, rule: dict[str, Any]
) -> None:
    _faults(mock, **rule)
    with pytest.raises(requests.exceptions.ConnectionError):
        _create(mock, session)
    lost = "lost_reply_rate" in rule
    assert (_stored(mock) is not None) == lost  # lost reply: applied; reset: not
    if lost:
        _faults(mock)  # a retry of the create now meets the first attempt: a business refusal, not a Fault
        reply = _create(mock, session)
        assert reply.result[0].error_code == "3" and "đã tồn tại" in reply.result[0].message


def test_a_hang_is_a_read_timeout(mock: RunningMock, session: str) -> None:
    _faults(mock, hang_rate=1, hang_s=3)
    with pytest.raises(requests.exceptions.ReadTimeout):
        _create(mock, session, timeout=0.5)


def test_session_expiry_is_a_normal_reply(mock: RunningMock, session: str) -> None:
    _faults(mock, session_expire_rate=1)
    reply = _create(mock, session)
    assert reply.error_code == "401" and _stored(mock) is None


# ---------------------------------------------------------------- zeep builds and reads, httpx carries


def _via_httpx(mock: RunningMock, operation: str, **kwargs: Any) -> tuple[httpx.Response, Any]:
    client = zeep.Client(str(wsdl_path()), settings=HARDENED)
    service = client.create_service(BINDING_QNAME, f"{mock.url}/soap")
    binding = client.wsdl.bindings[BINDING_QNAME]
    envelope = client.create_message(service, operation, **kwargs)
    response = httpx.post(
        f"{mock.url}/soap",
        content=etree.tostring(envelope, xml_declaration=True, encoding="utf-8"),
        headers={
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{binding.get(operation).soapaction}"',
            "dstcode": mock.config.credentials.dstcode,
        },
    )
    return response, (binding, client)


def test_httpx_route_reads_replies_and_keeps_status_and_retry_after(mock: RunningMock, session: str) -> None:
    madonvi = mock.config.credentials.madonvi
    response, (binding, client) = _via_httpx(
        mock, "DongBoHoSoMC", session=session, madonvi=madonvi, isUpdating="False", data=[DOSSIER]
    )
    assert response.status_code == 200
    reply = binding.process_reply(client, binding.get("DongBoHoSoMC"), response)
    assert reply.error_code == "0" and reply.result[0].MaHoSo == CODE

    _faults(mock, throttle_rate=1, retry_after_s=7)
    response, _ = _via_httpx(mock, "TraCuuHoSo", session=session, madonvi=madonvi, mahoso=CODE)
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
