"""An empty list crosses the SOAP face as ``[]``, both ways (the WSDL's rule: the list's element once
with ``xsi:nil="true"``), so a dossier pushed over SOAP is stored as the REST one, and read back so.

Against the mock in its own process, through the adapter's own client (zeep builds and reads)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from lxml import etree

from dvcsync.config import PortalSettings
from dvcsync.portal import PortalClient, make_http_client
from dvcsync.portal.soap import SoapCodec
from mock_portal.testing import RunningMock, sample_dossier

XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def _client(mock: RunningMock, transport: str) -> PortalClient:
    settings = PortalSettings(
        adapter_url=mock.adapter_url,
        soap_url=f"{mock.url}/soap",
        transport=transport,  # type: ignore[arg-type]
        rate_limit=1000,
        timeout=5,
        max_attempts=2,
    )
    return PortalClient(settings, make_http_client(settings))


def _stored(mock: RunningMock, code: str) -> dict[str, Any]:
    body = httpx.get(f"{mock.url}/_admin/dossiers/{code}", timeout=10).json()
    return {k: v for k, v in body.items() if k not in {"created_at", "updated_at", "admin_edits"}}


def _push(mock: RunningMock, transport: str, dossier: dict[str, Any]) -> None:
    async def scenario() -> None:
        client = _client(mock, transport)
        try:
            created = await client.call("DongBoHoSoMC", {"isUpdating": "False", "data": [dossier]})
            assert created.ok, created
        finally:
            await client.aclose()

    asyncio.run(scenario())


def _session(mock: RunningMock) -> str:
    issued = mock.config.credentials
    answer = httpx.post(
        f"{mock.adapter_url}/auth",
        json={"username": issued.username, "password": issued.password},
        headers={"dstcode": issued.dstcode},
        timeout=10,
    )
    return str(answer.json()["session"])


def _with_dstcode(mock: RunningMock, headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "dstcode": mock.config.credentials.dstcode}


def _look_up_over_soap(mock: RunningMock, code: str) -> tuple[dict[str, Any], bytes]:
    """TraCuuHoSo as the adapter's codec sends and reads it: (the JSON-shaped item, the raw reply)."""
    codec = SoapCodec()
    content, headers = codec.encode(
        "TraCuuHoSo", {"session": _session(mock), "madonvi": mock.config.credentials.madonvi, "mahoso": code}
    )
    answer = httpx.post(f"{mock.url}/soap", content=content, headers=_with_dstcode(mock, headers), timeout=10)
    reply = codec.decode("TraCuuHoSo", answer.status_code, answer.headers, answer.content)
    [item] = reply["result"]
    return item, answer.content


def test_empty_lists_pushed_over_soap_are_stored_and_read_back_as_over_rest(mock: RunningMock) -> None:
    empties = {"DanhSachLePhi": [], "TaiLieuNop": [], "DanhSachHoSoBoSung": [], "ListeMoi": []}
    over_rest = sample_dossier(951, status="2", **empties)
    over_soap = sample_dossier(952, status="2", **empties)
    _push(mock, "rest", over_rest)
    _push(mock, "soap", over_soap)

    rest, soap = _stored(mock, over_rest["MaHoSo"]), _stored(mock, over_soap["MaHoSo"])
    for name in empties:  # declared lists and an undeclared (newer) one alike
        assert rest[name] == [] and soap[name] == [], name
    mask = {"MaHoSo", "SoBienNhan"}
    assert {k: v for k, v in soap.items() if k not in mask} == {
        k: v for k, v in rest.items() if k not in mask
    }
    # TraCuuHoSo over SOAP carries them back as [], lists with items as they are
    item, raw = _look_up_over_soap(mock, over_soap["MaHoSo"])
    for name in empties:
        assert item[name] == [], name
    assert item["DinhDanhCHS"] == over_soap["DinhDanhCHS"] and item["QuaTrinhXuLy"] == []
    assert b'DanhSachLePhi xsi:nil="true"' in raw


def test_a_plain_soap_client_gets_no_nil_element(mock: RunningMock) -> None:
    """Replies keep the old form (no element) for clients that do not send ``X-Empty-Lists: nil``:
    a plain zeep client would read a nil record as a record of nulls."""
    dossier = sample_dossier(953, status="2", DanhSachLePhi=[], TaiLieuNop=[])
    _push(mock, "soap", dossier)
    content, headers = SoapCodec().encode(
        "TraCuuHoSo",
        {"session": _session(mock), "madonvi": mock.config.credentials.madonvi, "mahoso": dossier["MaHoSo"]},
    )
    plain = {k: v for k, v in headers.items() if k != "X-Empty-Lists"}
    answer = httpx.post(f"{mock.url}/soap", content=content, headers=_with_dstcode(mock, plain), timeout=10)
    assert answer.status_code == 200 and b"<DanhSachHoSo" not in answer.content
    assert not [e for e in etree.fromstring(answer.content).iter() if e.get(XSI_NIL) == "true"]
    assert b"<DinhDanhCHS>" in answer.content


def test_omit_mode_sends_no_element_for_a_portal_that_refuses_nil() -> None:
    body = {"isUpdating": "False", "data": [{"MaHoSo": "X-1", "DanhSachLePhi": [], "Moi": []}]}
    content, headers = SoapCodec("omit").encode("DongBoHoSoMC", body)
    assert b"nil" not in content and b"DanhSachLePhi" not in content and "X-Empty-Lists" not in headers
    content, headers = SoapCodec().encode("DongBoHoSoMC", body)
    nil = {etree.QName(e).localname for e in etree.fromstring(content).iter() if e.get(XSI_NIL) == "true"}
    assert nil == {"DanhSachLePhi", "Moi"} and headers["X-Empty-Lists"] == "nil"
