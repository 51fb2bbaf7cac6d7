"""The portal client over the SOAP face of a real mock (zeep builds and reads, httpx carries)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from dvcsync.config import PortalSettings
from dvcsync.portal import PortalClient, ProtocolError, make_http_client
from mock_portal.testing import RunningMock, run_mock, sample_dossier

from ..mock_portal.soap_support import serve


@pytest.fixture(scope="module")
def mock() -> Iterator[RunningMock]:
    with run_mock() as running:
        yield running


def _client(mock_url: str, soap_url: str | None = None, **portal: Any) -> PortalClient:
    settings = PortalSettings(
        adapter_url=f"{mock_url}/dvcqg",
        soap_url=soap_url or f"{mock_url}/soap",
        transport="soap",
        rate_limit=1000,
        timeout=5,
        max_attempts=2,
        **portal,
    )
    return PortalClient(settings, make_http_client(settings))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_every_kind_of_call_over_soap(mock: RunningMock) -> None:
    dossier = sample_dossier(901, status="4", NewerField="kept")

    async def scenario() -> dict[str, Any]:
        client = _client(mock.url)
        try:
            created = await client.call("DongBoHoSoMC", {"isUpdating": "False", "data": [dossier]})
            again = await client.call("DongBoHoSoMC", {"isUpdating": "False", "data": [dossier]})
            history = await client.call(
                "CapNhatTienDoHoSoMC",
                {
                    "data": [
                        {
                            "MaHoSo": dossier["MaHoSo"],
                            "NguoiXuLy": "Lê Văn Tâm",
                            "ThoiDiemXuLy": "20251120100000",
                            "NoiDungXuLy": "Thẩm định hồ sơ",
                            "TrangThai": "4",
                        }
                    ]
                },
            )
            found = await client.call("TraCuuHoSo", {"mahoso": dossier["MaHoSo"]})
            unknown = await client.call("TraCuuHoSo", {"mahoso": "KHONG-CO"})
            catalogue = await client.call("LayDanhSachTTHC")
            return {
                "created": created,
                "again": again,
                "history": history,
                "found": found,
                "unknown": unknown,
                "catalogue": catalogue,
                "stats": dict(client.stats),
            }
        finally:
            await client.aclose()

    out = run(scenario())
    assert out["created"].ok and out["created"].result[0].MaHoSo == dossier["MaHoSo"]
    assert out["again"].error_code == 3 and "đã tồn tại" in out["again"].result[0].message
    assert out["history"].ok
    [stored] = out["found"].result
    assert stored.MaHoSo == dossier["MaHoSo"] and stored.ChuHoSo == dossier["ChuHoSo"]
    assert [e.NoiDungXuLy for e in stored.QuaTrinhXuLy] == ["Thẩm định hồ sơ"]
    assert out["unknown"].ok and out["unknown"].result in ([], None)
    assert len(out["catalogue"].result) >= 50
    admin = httpx.get(f"{mock.url}/_admin/dossiers/{dossier['MaHoSo']}").json()
    assert admin["NewerField"] == "kept"  # a field the WSDL does not declare travels in the wildcard
    assert admin["DinhDanhCHS"] == dossier["DinhDanhCHS"] and admin["TaiLieuNop"] == dossier["TaiLieuNop"]


def test_session_expiry_over_soap_relogs_in(mock: RunningMock) -> None:
    async def scenario() -> tuple[Any, int]:
        client = _client(mock.url)
        try:
            await client.call("TraCuuHoSo", {"mahoso": "X"})
            httpx.post(f"{mock.url}/_admin/reset", params={"sessions": "true"})  # the portal forgets us
            reply = await client.call("TraCuuHoSo", {"mahoso": "X"})
            return reply, client.stats["login"]
        finally:
            await client.aclose()

    reply, logins = run(scenario())
    assert reply.ok and logins == 2


XXE_REPLY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body>
<ns0:TraCuuHoSoResponse xmlns:ns0="urn:dvcqg:lgsp:v1"><ns0:error_code>0</ns0:error_code>
<ns0:message>&xxe;</ns0:message></ns0:TraCuuHoSoResponse></soap-env:Body></soap-env:Envelope>"""

BOMB_REPLY = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body>
<ns0:TraCuuHoSoResponse xmlns:ns0="urn:dvcqg:lgsp:v1"><ns0:error_code>0</ns0:error_code>
<ns0:message>&lol3;</ns0:message></ns0:TraCuuHoSoResponse></soap-env:Body></soap-env:Envelope>"""


@pytest.mark.parametrize("body", [XXE_REPLY, BOMB_REPLY], ids=["xxe", "entity-expansion"])
def test_hostile_xml_in_a_soap_reply_is_refused(mock: RunningMock, body: bytes) -> None:
    hostile = FastAPI()

    @hostile.post("/soap")
    async def answer(request: Request) -> Response:
        return Response(body, media_type="text/xml; charset=utf-8")

    with serve(hostile) as url:
        client = _client(mock.url, soap_url=f"{url}/soap")

        async def call() -> Any:
            try:
                return await client.call("TraCuuHoSo", {"mahoso": "X"})
            finally:
                await client.aclose()

        with pytest.raises(ProtocolError, match="hostile XML refused") as refused:
            run(call())
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else "\0"
    assert hostname not in str(refused.value)
