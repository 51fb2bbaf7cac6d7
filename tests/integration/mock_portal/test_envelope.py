"""Transport, session and envelope rules (national-portal.md §1): every refusal is a contract reply."""

from __future__ import annotations

import time

import httpx
import pytest

from mock_portal.testing import run_mock_in_process

from .support import PortalClient, check_reply, sample_dossier


def test_login_gives_an_opaque_session(portal: PortalClient) -> None:
    assert len(portal.session) >= 20
    assert portal.call("LayDanhSachTTHC", endpoint="share")["error_code"] == 0


def test_wrong_password_is_refused(http: httpx.Client) -> None:
    reply = check_reply(
        http.post(
            "/dvcqg/auth",
            headers={"dstcode": "H40"},
            json={"username": "dvcsync", "password": "sai"},
        )
    )
    assert reply["error_code"] == 401 and "session" not in reply


@pytest.mark.parametrize("headers, fragment", [({}, "Thiếu header dstcode"), ({"dstcode": "H99"}, "'H99'")])
def test_dstcode_is_required_and_checked(
    portal: PortalClient, http: httpx.Client, headers: dict[str, str], fragment: str
) -> None:
    body = {"session": portal.session, "madonvi": "000.00.01.H40", "service": "LayDanhSachTTHC"}
    response = http.post("/dvcqg/share", json=body, headers=headers)
    reply = check_reply(response)
    assert reply["error_code"] == 403 and fragment in reply["message"]


def test_missing_unknown_and_foreign_sessions(portal: PortalClient) -> None:
    base = {"madonvi": "000.00.01.H40", "service": "TraCuuHoSo", "mahoso": "x"}
    missing = check_reply(portal.post("/dvcqg/integration", base))
    unknown = check_reply(portal.post("/dvcqg/integration", {**base, "session": "not-a-session"}))
    other_unit = check_reply(
        portal.post("/dvcqg/integration", {**base, "session": portal.session, "madonvi": "000.00.02.H40"})
    )
    assert missing["error_code"] == 401 and "Thiếu session" in missing["message"]
    assert unknown["error_code"] == 401
    assert other_unit["error_code"] == 403 and "000.00.02.H40" in other_unit["message"]


def test_expired_session_answers_401_then_relogin_works() -> None:
    with run_mock_in_process(session_ttl_s=1.0) as mock:
        client = PortalClient(mock)
        client.login()
        assert client.call("TraCuuHoSo", mahoso="x")["error_code"] == 0
        time.sleep(1.1)
        assert client.call("TraCuuHoSo", mahoso="x") == {
            "error_code": 401,
            "message": "Phiên làm việc hết hạn",
        }
        client.login()
        assert client.call("TraCuuHoSo", mahoso="x")["error_code"] == 0
        client.close()


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b""])
def test_malformed_bodies_get_the_error_shape(portal: PortalClient, raw: bytes) -> None:
    reply = check_reply(portal.http.post("/dvcqg/integration", content=raw))
    assert reply["error_code"] == "1"


def test_unknown_missing_service_and_wrong_endpoint(portal: PortalClient) -> None:
    unknown = portal.call("XoaHoSo")
    assert unknown["error_code"] == "6" and "XoaHoSo" in unknown["message"]
    assert portal.call("")["error_code"] == "1"
    wrong = portal.call("LayDanhSachTTHC", endpoint="integration")
    assert wrong["error_code"] == "6" and "share" in wrong["message"]
    assert portal.call("TraCuuHoSo", endpoint="share", mahoso="x")["error_code"] == "6"


@pytest.mark.parametrize("style", [0, "0", "00"])
def test_success_code_style_is_configurable(style: int | str) -> None:
    with run_mock_in_process(success_code=style) as mock:
        client = PortalClient(mock)
        client.login()
        reply = client.push(sample_dossier(1))
        assert reply["error_code"] == style and type(reply["error_code"]) is type(style)
        assert reply["result"][0]["error_code"] == style
        client.close()


def test_only_post_is_served(portal: PortalClient) -> None:
    response = portal.http.get("/dvcqg/integration")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json()["error_code"] == "6" and "POST" in response.json()["message"]
