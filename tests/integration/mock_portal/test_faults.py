"""Each fault kind, deterministic for a seed; the answers in process, and over real HTTP what needs a
socket: a hang outlasts the client's timeout, reset and lost reply really drop the TCP connection
(the client sees a transport error) and a lost reply's write is stored."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from mock_portal.testing import run_mock_in_process

from .support import Mock, PortalClient, sample_dossier, step


def rule(**fields: Any) -> dict[str, Any]:
    return {"seed": 7, "rules": [{"service": "*", **fields}]}


def faulty(portal: PortalClient, **fields: Any) -> None:
    response = portal.admin("PUT", "/faults", json=rule(**fields))
    assert response.status_code == 200, response.text


def push_raw(portal: PortalClient, *dossiers: dict[str, Any], timeout: float = 5.0) -> httpx.Response:
    body = {
        "session": portal.session,
        "madonvi": "000.00.01.H40",
        "service": "DongBoHoSoMC",
        "isUpdating": "False",
        "data": list(dossiers),
    }
    return portal.http.post("/dvcqg/integration", json=body, timeout=timeout)


def stored_total(portal: PortalClient) -> int:
    return int(portal.admin("GET", "/dossiers").json()["total"])


def test_latency_and_jitter(portal: PortalClient) -> None:
    faulty(portal, latency_ms=300, jitter_ms=100)
    start = time.monotonic()
    assert push_raw(portal, sample_dossier(1)).json()["error_code"] == 0
    assert 0.3 <= time.monotonic() - start < 10.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_error_status_without_applying(portal: PortalClient, status: int) -> None:
    faulty(portal, status_rates={str(status): 1.0})
    response = push_raw(portal, sample_dossier(1))
    assert response.status_code == status and "gateway" in response.text
    portal.admin("PUT", "/faults", json={"rules": []})
    assert stored_total(portal) == 0
    assert portal.admin("GET", "/stats").json()["services"]["DongBoHoSoMC"] == {f"fault:{status}": 1}


def test_throttle_429_with_retry_after(portal: PortalClient) -> None:
    faulty(portal, throttle_rate=1.0, retry_after_s=3)
    response = push_raw(portal, sample_dossier(1))
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    assert response.json()["error_code"] == 429


def test_hang_outlasts_the_client_timeout(served_portal: PortalClient) -> None:
    portal = served_portal
    faulty(portal, hang_rate=1.0, hang_s=30)
    start = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        push_raw(portal, sample_dossier(1), timeout=0.5)
    assert time.monotonic() - start < 5
    faulty(portal)
    assert stored_total(portal) == 0


def test_reset_drops_the_connection_and_applies_nothing(served_portal: PortalClient) -> None:
    portal = served_portal
    faulty(portal, reset_rate=1.0)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        push_raw(portal, sample_dossier(1))
    faulty(portal)
    assert stored_total(portal) == 0
    assert portal.admin("GET", "/stats").json()["services"]["DongBoHoSoMC"]["fault:reset"] == 1


def test_lost_reply_stores_the_write_then_drops_the_connection(served_portal: PortalClient) -> None:
    portal = served_portal
    code = sample_dossier(1)["MaHoSo"]
    portal.push(sample_dossier(1))
    faulty(portal, lost_reply_rate=1.0)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        portal.http.post(
            "/dvcqg/integration",
            json={
                "session": portal.session,
                "madonvi": "000.00.01.H40",
                "service": "CapNhatTienDoHoSoMC",
                "data": [step(code)],
            },
        )
    faulty(portal)
    assert len(portal.admin("GET", f"/dossiers/{code}").json()["QuaTrinhXuLy"]) == 1, "the write was applied"
    portal.history(step(code))
    assert len(portal.admin("GET", f"/dossiers/{code}").json()["QuaTrinhXuLy"]) == 2, (
        "a blind retry duplicates"
    )


def test_malformed_reply_body(portal: PortalClient) -> None:
    faulty(portal, malformed_rate=1.0)
    response = push_raw(portal, sample_dossier(1))
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    faulty(portal)
    assert stored_total(portal) == 1


def test_session_expiry_fault(portal: PortalClient) -> None:
    faulty(portal, session_expire_rate=1.0)
    assert push_raw(portal, sample_dossier(1)).json() == {
        "error_code": 401,
        "message": "Phiên làm việc hết hạn",
    }
    faulty(portal)
    assert push_raw(portal, sample_dossier(1)).json()["error_code"] == 401, "the session is gone"
    portal.login()
    assert push_raw(portal, sample_dossier(1)).json()["error_code"] == 0


def test_per_service_session_ttl(portal: PortalClient) -> None:
    portal.admin("PUT", "/faults", json={"rules": [{"service": "TraCuuHoSo", "session_ttl_s": 0}]})
    time.sleep(0.01)
    assert portal.call("LayDanhSachTTHC", endpoint="share")["error_code"] == 0
    assert portal.call("TraCuuHoSo", mahoso="x")["error_code"] == 401


def test_rules_per_service_and_soap_and_payment(portal: PortalClient) -> None:
    portal.admin(
        "PUT",
        "/faults",
        json={
            "seed": 1,
            "rules": [
                {"service": "TraCuuHoSo", "status_rates": {"503": 1.0}},
                {"service": "soap", "status_rates": {"502": 1.0}},
                {"service": "payment", "throttle_rate": 1.0},
            ],
        },
    )
    assert (
        portal.http.post(
            "/dvcqg/integration",
            json={
                "session": portal.session,
                "madonvi": "000.00.01.H40",
                "service": "TraCuuHoSo",
                "mahoso": "x",
            },
        ).status_code
        == 503
    )
    assert portal.call("LayDanhSachTTHC", endpoint="share")["error_code"] == 0
    assert portal.http.post("/soap", content=b"<x/>", headers={"content-type": "text/xml"}).status_code == 502
    assert portal.http.post("/payment/query", json={}).status_code == 429
    stats = portal.admin("GET", "/stats").json()["services"]
    assert stats["soap"] == {"fault:502": 1} and stats["payment"] == {"fault:throttle": 1}


def sequence(mock: Mock, n: int = 40) -> list[int]:
    client = PortalClient(mock)
    client.login()
    out = [
        client.http.post(
            "/dvcqg/share",
            json={"session": client.session, "madonvi": "000.00.01.H40", "service": "LayDanhMucLinhVuc"},
        ).status_code
        for _ in range(n)
    ]
    client.close()
    return out


def test_faults_are_deterministic_for_a_seed() -> None:
    spec = {"seed": 42, "rules": [{"service": "LayDanhMucLinhVuc", "status_rates": {"500": 0.3, "503": 0.2}}]}
    with run_mock_in_process(faults=spec) as first, run_mock_in_process(faults=spec) as second:
        a, b = sequence(first), sequence(second)
    assert a == b and {200, 500, 503} <= set(a)
    other = {**spec, "seed": 43}
    with run_mock_in_process(faults=other) as third:
        assert sequence(third) != a


def test_fault_spec_validation_and_read_back(portal: PortalClient) -> None:
    bad = portal.admin("PUT", "/faults", json={"rules": [{"service": "*", "status_rates": {"418": 0.5}}]})
    assert bad.status_code == 422 and "418" in bad.text
    assert portal.admin("PUT", "/faults", json={"rules": [{"reset_rate": 2}]}).status_code == 422
    faulty(portal, latency_ms=5)
    got = portal.admin("GET", "/faults").json()
    assert got["seed"] == 7 and got["rules"][0]["latency_ms"] == 5


def test_a_service_rule_also_covers_its_soap_operation(portal: PortalClient) -> None:
    portal.admin("PUT", "/faults", json={"rules": [{"service": "TraCuuHoSo", "status_rates": {"503": 1.0}}]})
    envelope = (
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        b' xmlns:d="urn:dvcqg:lgsp:v1">'
        b"<soapenv:Body><d:TraCuuHoSo><session>x</session></d:TraCuuHoSo></soapenv:Body></soapenv:Envelope>"
    )
    soap = portal.http.post("/soap", content=envelope, headers={"content-type": "text/xml"})
    assert soap.status_code == 503
    other = envelope.replace(b"TraCuuHoSo", b"LayDanhSachTTHC")
    assert portal.http.post("/soap", content=other, headers={"content-type": "text/xml"}).status_code != 503
    assert portal.admin("GET", "/stats").json()["services"]["soap"] == {"fault:503": 1}
