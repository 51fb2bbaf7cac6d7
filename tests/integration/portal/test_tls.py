"""TLS towards the portal and the payment platform, against the mock served by a real TLS server
(uvicorn) on loopback with a test CA (trustme): verification on by default, ``ca_bundle``, mutual
TLS, ``[payment]``'s own settings, and clear errors for what an operator can get wrong."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvcsync.config import ConfigError, PaymentSettings, PortalSettings, Settings
from dvcsync.contract import QueryRequest
from dvcsync.portal import PortalClient, PortalError, TlsError, make_http_client
from dvcsync.sync.runtime import open_runtime
from mock_portal.app import create_app
from mock_portal.config import MockConfig
from mock_portal.testing import sample_dossier

from .tls_support import TlsFiles, make_tls_files, serve_tls

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def portal(tls: TlsFiles) -> Iterator[str]:
    """The mock over TLS, no client certificate asked."""
    with serve_tls(create_app(MockConfig()), tls) as url:
        yield url


@pytest.fixture(scope="module")
def mtls_portal(tls: TlsFiles) -> Iterator[str]:
    """The mock over TLS that requires a client certificate from the test CA."""
    with serve_tls(create_app(MockConfig()), tls, client_ca=tls.ca) as url:
        yield url


async def _no_sleep(_: float) -> None:
    return None


def _client(url: str, **tls: Any) -> PortalClient:
    settings = PortalSettings(
        adapter_url=f"{url}/dvcqg", soap_url=f"{url}/soap", max_attempts=1, timeout=10, **tls
    )
    return PortalClient(settings, make_http_client(settings), sleep=_no_sleep)


def _lookup(client: PortalClient, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    async def scenario() -> list[Any]:
        try:
            return [await client.call(service, fields) for service, fields in calls]
        finally:
            await client.aclose()

    return asyncio.run(scenario())


def test_default_settings_refuse_a_server_whose_ca_is_not_trusted(portal: str) -> None:
    with pytest.raises(TlsError) as caught:
        _lookup(_client(portal), ("TraCuuHoSo", {"mahoso": "X-1"}))
    assert "TLS: certificate verify failed" in str(caught.value)


def test_a_ca_bundle_of_another_ca_is_refused_too(portal: str, tls: TlsFiles) -> None:
    with pytest.raises(TlsError, match="TLS: certificate verify failed"):
        _lookup(_client(portal, ca_bundle=tls.other_ca), ("TraCuuHoSo", {"mahoso": "X-1"}))


def test_the_ca_bundle_of_the_servers_ca_makes_real_calls_work(portal: str, tls: TlsFiles) -> None:
    dossier = sample_dossier(4101)
    created, found = _lookup(
        _client(portal, ca_bundle=tls.ca),
        ("DongBoHoSoMC", {"isUpdating": "False", "data": [dossier]}),
        ("TraCuuHoSo", {"mahoso": dossier["MaHoSo"]}),
    )
    assert created.ok and [item.error_code for item in created.result] == [0]
    assert found.ok and found.result[0].MaHoSo == dossier["MaHoSo"]


def test_soap_over_tls_with_the_ca_bundle(portal: str, tls: TlsFiles) -> None:
    [found] = _lookup(
        _client(portal, ca_bundle=tls.ca, transport="soap"), ("TraCuuHoSo", {"mahoso": "KHONG-CO"})
    )
    assert found.ok and found.result in (None, [])


def test_verify_false_accepts_any_server(portal: str) -> None:
    [found] = _lookup(_client(portal, verify=False), ("TraCuuHoSo", {"mahoso": "KHONG-CO"}))
    assert found.ok


def test_a_server_requiring_client_certificates_accepts_ours(mtls_portal: str, tls: TlsFiles) -> None:
    client = _client(mtls_portal, ca_bundle=tls.ca, client_cert=tls.client_cert, client_key=tls.client_key)
    [found] = _lookup(client, ("TraCuuHoSo", {"mahoso": "KHONG-CO"}))
    assert found.ok


def test_a_server_requiring_client_certificates_refuses_a_client_without(
    mtls_portal: str, tls: TlsFiles
) -> None:
    """Over TLS 1.3 the server checks the client's certificate after the client's side of the
    handshake is done: this server (asyncio's TLS) then drops the connection without an alert, so
    the refusal reads as a lost connection; a server sending the alert reads as ``TLS: ...``."""
    with pytest.raises(PortalError) as caught:
        _lookup(_client(mtls_portal, ca_bundle=tls.ca), ("TraCuuHoSo", {"mahoso": "KHONG-CO"}))
    assert caught.value.service == "auth"  # refused at the first exchange: nothing was processed
    assert "login failed" in str(caught.value) or str(caught.value).startswith("auth: TLS:")


# ---------------------------------------------------------------------- the payment side


def _query_body() -> dict[str, Any]:
    return QueryRequest(MaDoiTac="H40-QNINH", MaThamChieu="KHONG-CO", ThoiGianGD="20260102030405").to_wire()


def test_payments_get_their_own_client_with_the_payment_tls_settings(
    mtls_portal: str, tls: TlsFiles, tmp_path: Path
) -> None:
    """``[payment]`` trusts the test CA and has a client certificate; ``[portal]`` has neither: the
    runtime's payment client gets through, the portal's is refused by the same server."""
    sqlite3.connect(tmp_path / "onestop.db").close()
    settings = Settings.load(
        None,
        province={"source_url": f"sqlite:///{tmp_path / 'onestop.db'}", "mappings": str(REPO / "mappings")},
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        portal={"adapter_url": f"{mtls_portal}/dvcqg"},
        payment={
            "query_url": f"{mtls_portal}/payment/query",
            "ca_bundle": str(tls.ca),
            "client_cert": str(tls.client_cert),
            "client_key": str(tls.client_key),
        },
    )

    async def scenario() -> tuple[int, Exception | None]:
        async with open_runtime(settings) as rt:
            assert rt.payment_http is not rt.client.http
            reply = await rt.payment_http.post(settings.payment.query_url, json=_query_body())
            try:
                await rt.client.http.post(settings.payment.query_url, json=_query_body())
            except httpx.HTTPError as exc:
                return reply.status_code, exc
            return reply.status_code, None

    status, portal_failure = asyncio.run(scenario())
    assert status == 200
    assert isinstance(portal_failure, httpx.ConnectError)  # the portal's client does not trust the CA


# ---------------------------------------------------------------------- configuration errors


def test_a_missing_ca_bundle_is_a_clear_error_naming_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "khong-co" / "ca.pem"
    with pytest.raises(ConfigError) as caught:
        make_http_client(PortalSettings(ca_bundle=missing))
    assert str(caught.value).startswith(f"[portal] ca_bundle: cannot read {missing}:")
    assert "No such file" in str(caught.value)


def test_a_missing_payment_client_key_names_the_payment_setting(tmp_path: Path, tls: TlsFiles) -> None:
    with pytest.raises(ConfigError, match=r"^\[payment\] client_key: cannot read .*nope\.key"):
        make_http_client(PaymentSettings(client_cert=tls.client_cert, client_key=tmp_path / "nope.key"))


def test_a_ca_bundle_that_holds_no_certificate_is_a_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("không phải chứng chỉ\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^\[portal\] ca_bundle: .*ca\.pem holds no usable CA certificate"):
        make_http_client(PortalSettings(ca_bundle=garbage))


def test_a_certificate_and_a_key_that_do_not_match_is_a_clear_error(tls: TlsFiles) -> None:
    with pytest.raises(ConfigError, match=r"^\[portal\] client_cert/client_key: "):
        make_http_client(PortalSettings(client_cert=tls.client_cert, client_key=tls.ca))


def test_the_runtime_refuses_to_open_with_a_missing_payment_ca_bundle(tmp_path: Path) -> None:
    settings = Settings.load(
        None,
        province={"mappings": str(REPO / "mappings")},
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        payment={"ca_bundle": str(tmp_path / "payment-ca.pem")},
    )

    async def scenario() -> None:
        async with open_runtime(settings):
            pass

    with pytest.raises(ConfigError, match=r"^\[payment\] ca_bundle: cannot read "):
        asyncio.run(scenario())
    assert not (tmp_path / "state.db").exists()  # refused before anything was opened
