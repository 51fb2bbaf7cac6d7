"""The inbound server over TLS, and mutual TLS: a client certificate from the configured CA is the
caller's credential. Certificates are made in the test by trustme."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from dvcsync.config import Settings
from dvcsync.province.sample import generate
from dvcsync.server import listen_problems
from mock_portal.testing import free_port

from .test_server_access import REPO, serving


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    server_ca, client_ca, stranger_ca = trustme.CA(), trustme.CA(), trustme.CA()
    server = server_ca.issue_cert("127.0.0.1", "localhost")
    client = client_ca.issue_cert("payment-platform.example")
    stranger = stranger_ca.issue_cert("payment-platform.example")
    files = {
        "server_ca": folder / "server-ca.pem",
        "client_ca": folder / "client-ca.pem",
        "server_cert": folder / "server.pem",
        "server_key": folder / "server.key",
        "client": folder / "client.pem",
        "stranger": folder / "stranger.pem",
    }
    server_ca.cert_pem.write_to_path(str(files["server_ca"]))
    client_ca.cert_pem.write_to_path(str(files["client_ca"]))
    server.cert_chain_pems[0].write_to_path(str(files["server_cert"]))
    server.private_key_pem.write_to_path(str(files["server_key"]))
    client.private_key_and_cert_chain_pem.write_to_path(str(files["client"]))
    stranger.private_key_and_cert_chain_pem.write_to_path(str(files["stranger"]))
    return files


@pytest.fixture
def tls_server(tmp_path: Path, pki: dict[str, Path]) -> Iterator[str]:
    onestop = tmp_path / "onestop.db"
    generate(onestop, 10, 1)
    settings = Settings.load(
        None,
        province={"source_url": f"sqlite:///{onestop}", "mappings": str(REPO / "mappings")},
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        server={
            "port": free_port(),
            "tls_cert": str(pki["server_cert"]),
            "tls_key": str(pki["server_key"]),
            "tls_client_ca": str(pki["client_ca"]),
        },
    )
    with serving(settings) as url:
        yield url.replace("http://", "https://")


def _client(pki: dict[str, Path], cert: str | None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(pki["server_ca"]))
    if cert is not None:
        context.load_cert_chain(str(pki[cert]))
    return httpx.Client(verify=context, timeout=10, trust_env=False)


def test_mutual_tls_admits_the_client_certificate_of_the_configured_ca(
    tls_server: str, pki: dict[str, Path]
) -> None:
    with _client(pki, "client") as client:
        answer = client.post(f"{tls_server}/inbound/payment/dptracuuthanhtoanhs", json={"MaHoSo": "unknown"})
    assert answer.status_code == 200 and answer.json() == {"error_code": -1, "message": []}


@pytest.mark.parametrize("cert", [None, "stranger"])
def test_mutual_tls_refuses_a_client_without_a_certificate_of_that_ca(
    tls_server: str, pki: dict[str, Path], cert: str | None
) -> None:
    with _client(pki, cert) as client, pytest.raises(httpx.TransportError):
        client.post(f"{tls_server}/inbound/payment/dptracuuthanhtoanhs", json={"MaHoSo": "unknown"})


def test_plain_http_to_the_tls_port_gets_nothing(tls_server: str) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(tls_server.replace("https://", "http://") + "/healthz", timeout=5, trust_env=False)


def test_mutual_tls_counts_as_a_credential_for_a_public_listen_address(pki: dict[str, Path]) -> None:
    server = {
        "host": "0.0.0.0",
        "tls_cert": str(pki["server_cert"]),
        "tls_key": str(pki["server_key"]),
    }
    assert listen_problems(Settings.load(None, server=server).server)  # TLS alone authenticates nobody
    server["tls_client_ca"] = str(pki["client_ca"])
    assert listen_problems(Settings.load(None, server=server).server) == []
