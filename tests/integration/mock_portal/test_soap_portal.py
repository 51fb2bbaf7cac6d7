"""The SOAP face on the real mock: a plain zeep client calls every operation over real HTTP.

Two mocks run side by side: one is driven through REST, the other through SOAP, with the same
golden cases (tests/fixtures/contract). Every reply must say the same thing and, at the end, both
must hold the same stored state (``GET /_admin/dossiers/{MaHoSo}``). Hostile XML must get a Fault
and change nothing.
"""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import zeep
from lxml import etree

from dvcsync.contract import SHARE_SERVICES
from dvcsync.contract.wsdl import BINDING_QNAME, OPERATIONS, TARGET_NAMESPACE, wsdl_bytes
from mock_portal.testing import RunningMock, run_mock

from .soap_support import HARDENED, as_xml_carries_it, to_wire, to_zeep, zeep_reads_it, zeep_service

GOLDEN = Path(__file__).parents[2] / "fixtures" / "contract"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
BAD_SESSION = "khong-hop-le"


def golden(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((GOLDEN / name).read_text(encoding="utf-8"))
    return body


class Face:
    """One way of talking to one mock: ``call(body)`` sends a JSON body and answers the JSON reply."""

    def __init__(self, mock: RunningMock, kind: str) -> None:
        self.mock = mock
        self.kind = kind
        self.dstcode = mock.config.credentials.dstcode
        self.madonvi = mock.config.credentials.madonvi
        self.session = self._login()
        self._service: Any = None

    def _login(self) -> str:
        creds = self.mock.config.credentials
        reply = httpx.post(
            f"{self.mock.url}/dvcqg/auth",
            json={"username": creds.username, "password": creds.password},
            headers={"dstcode": self.dstcode},
        ).json()
        session: str = reply["session"]
        return session

    def soap_service(self) -> Any:
        if self._service is None:
            self._service = zeep_service(f"{self.mock.url}/soap")
            self._service._client.transport.session.headers["dstcode"] = self.dstcode
        return self._service

    def call(self, body: dict[str, Any]) -> Any:
        session = BAD_SESSION if body.get("session") == BAD_SESSION else self.session  # goldens carry one
        body = {**copy.deepcopy(body), "session": session, "madonvi": self.madonvi}
        if self.kind == "rest":
            endpoint = "share" if body["service"] in SHARE_SERVICES else "integration"
            response = httpx.post(
                f"{self.mock.url}/dvcqg/{endpoint}", json=body, headers={"dstcode": self.dstcode}
            )
            assert response.status_code == 200, response.text
            return zeep_reads_it(response.json())
        service = self.soap_service()
        operation = body.pop("service")
        kwargs = to_zeep(service._client.get_element(f"{{{TARGET_NAMESPACE}}}{operation}").type, body)
        return to_wire(getattr(service, operation)(**kwargs))

    def admin(self, path: str) -> Any:
        response = httpx.get(f"{self.mock.url}/_admin/{path}")
        return response.json() if response.status_code == 200 else response.status_code


@pytest.fixture(scope="module")
def twins() -> Iterator[tuple[Face, Face]]:
    with run_mock() as rest_mock, run_mock() as soap_mock:
        yield Face(rest_mock, "rest"), Face(soap_mock, "soap")


@pytest.fixture
def fresh(twins: tuple[Face, Face]) -> tuple[Face, Face]:
    for face in twins:
        assert httpx.post(f"{face.mock.url}/_admin/reset").status_code == 200
    return twins


def _with(body: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    change(body)
    return body


def _set_status(status: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        for item in body["data"]:
            item["TrangThaiHoSo"] = status

    return change


CREATE = golden("dongbohosomc_request_create.json")
UPDATE = golden("dongbohosomc_request_update.json")  # 000.00.01.H40-191209-0001 to status 10
PORTAL_STATUS = golden("dongbotrangthaihoso_request.json")
READS = {
    "look up a stored dossier": golden("tracuuhoso_request.json"),
    "look up the OpenCPS-shaped one": {"service": "TraCuuHoSo", "mahoso": "000.00.04.H40-251118-0023"},
    "look up an unknown dossier": {"service": "TraCuuHoSo", "mahoso": "KHONG-CO-0001"},
    "one procedure": golden("laythutuc_request.json"),
    "an unknown procedure": {"service": "LayThuTuc", "maTTHC": "1.000000"},
    "the procedure list": golden("laydanhsachtthc_request.json"),
}
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("create two", CREATE),
    ("create OpenCPS-shaped, unknown field kept", golden("dongbohosomc_request_opencps.json")),
    ("create with only the required fields", golden("dongbohosomc_request_minimal.json")),
    ("create again: 3, đã tồn tại", CREATE),
    ("update 2 -> 9", _with(UPDATE, _set_status("9"))),
    ("update 9 -> 10", UPDATE),
    ("update 10 -> 4: illegal move", _with(UPDATE, _set_status("4"))),
    ("update of an unknown dossier", _with(UPDATE, lambda b: b["data"][0].update(MaHoSo="KHONG-CO-0002"))),
    ("history", golden("capnhattiendohosomc_request.json")),
    ("history again: appended, not deduplicated", golden("capnhattiendohosomc_request.json")),
    (
        "bad data: named field",
        _with(CREATE, lambda b: b["data"][0].update(MaHoSo="X-1", NgayTiepNhan="2025")),
    ),
    ("expired or foreign session: 401", {**golden("tracuuhoso_request.json"), "session": BAD_SESSION}),
    *READS.items(),
    ("portal dossiers listed", golden("danhsachhoso_request.json")),
    ("portal status 1 -> 2", _with(PORTAL_STATUS, lambda b: b["data"].update(TrangThai="2"))),
    ("portal status 2 -> 10: illegal move", PORTAL_STATUS),
    ("portal dossier acknowledged", golden("xacnhanhoso_request.json")),
    ("portal dossiers listed again", golden("danhsachhoso_request.json")),
    ("acknowledge an unknown portal dossier", {"service": "XacNhanHoSo", "mahoso": "G22.99-000000-0000"}),
]
STORED = [
    "000.00.01.H40-191209-0001",
    "000.21.31.H40-191209-0014",
    "000.00.04.H40-251118-0023",
    "000.00.07.H40-200315-0102",
]


def _seed_portal_dossiers(face: Face) -> None:
    listed = golden("danhsachhoso_reply.json")["result"]
    response = httpx.post(f"{face.mock.url}/_admin/portal-dossiers?push=false", json=listed)
    assert response.status_code == 201, response.text


def _comparable(stored: Any) -> Any:
    """A stored dossier without the mock's clock readings, as SOAP can carry it (no empty lists)."""
    if not isinstance(stored, dict):
        return stored
    stored = {k: v for k, v in stored.items() if k not in ("created_at", "updated_at")}
    stored["warnings"] = [{k: v for k, v in w.items() if k != "at"} for w in stored.get("warnings", [])]
    return as_xml_carries_it(stored)


def test_every_operation_answers_as_rest_and_leaves_the_same_state(fresh: tuple[Face, Face]) -> None:
    rest, soap = fresh
    for face in fresh:
        _seed_portal_dossiers(face)
    used: set[str] = set()
    for label, body in STEPS:
        expected, got = rest.call(body), soap.call(body)
        assert got == expected, label
        used.add(body["service"])
    assert used == set(OPERATIONS) - {"TraCuuThongTinCongDan"}

    for code in STORED:
        assert _comparable(soap.admin(f"dossiers/{code}")) == _comparable(rest.admin(f"dossiers/{code}")), (
            code
        )
    assert soap.admin("dossiers/X-1") == rest.admin("dossiers/X-1") == 404
    portal_side = [_without_clock(p) for p in soap.admin("portal-dossiers")]
    assert portal_side == [_without_clock(p) for p in rest.admin("portal-dossiers")]


def _without_clock(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_clock(v) for k, v in value.items() if k not in ("created_at", "at", "received_at")
        }
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


def test_the_golden_sequence_did_real_work(fresh: tuple[Face, Face]) -> None:
    """Guards the comparison above against two faces that agree because nothing happened."""
    _, soap = fresh
    _seed_portal_dossiers(soap)
    replies = {label: soap.call(body) for label, body in STEPS}
    assert [item["error_code"] for item in replies["create two"]["result"]] == ["0", "0"]
    duplicate = replies["create again: 3, đã tồn tại"]["result"]
    assert {item["error_code"] for item in duplicate} == {"3"} and "đã tồn tại" in duplicate[0]["message"]
    assert replies["update 10 -> 4: illegal move"]["result"][0]["error_code"] == "4"
    assert replies["expired or foreign session: 401"]["error_code"] == "401"
    stored = soap.admin("dossiers/000.00.01.H40-191209-0001")
    assert stored["TrangThaiHoSo"] == "10" and len(stored["QuaTrinhXuLy"]) == 6
    assert soap.admin("dossiers/000.00.04.H40-251118-0023")["MaHoSoLienThong"] == ""  # unknown field kept
    looked_up = replies["look up a stored dossier"]["result"][0]
    assert looked_up["MaHoSo"] == "000.00.01.H40-191209-0001" and len(looked_up["QuaTrinhXuLy"]) == 6
    assert replies["one procedure"]["result"][0]["MATTHC"] == "1.001193"
    assert len(replies["the procedure list"]["result"]) >= 50
    listed = [d["MaHoSo"] for d in replies["portal dossiers listed"]["result"]]
    listed_after = [d["MaHoSo"] for d in replies["portal dossiers listed again"].get("result", [])]
    assert "G22.99-251120-0003" in listed and "G22.99-251120-0003" not in listed_after


# ---------------------------------------------------------------- the WSDL on the real mock


def test_the_real_mock_serves_the_shipped_wsdl_and_zeep_loads_it(twins: tuple[Face, Face]) -> None:
    url = twins[1].mock.url
    response = httpx.get(f"{url}/soap?wsdl")
    shipped = wsdl_bytes().replace(b"http://127.0.0.1:8080/soap", f"{url}/soap".encode())
    assert response.status_code == 200 and response.content == shipped, "the shipped file, at this address"
    client = zeep.Client(f"{url}/soap?wsdl", settings=HARDENED)
    assert sorted(client.wsdl.bindings[BINDING_QNAME]._operations) == sorted(OPERATIONS)


def test_citizen_lookup_on_the_real_mock(twins: tuple[Face, Face]) -> None:
    reply = twins[1].soap_service().TraCuuThongTinCongDan(SoDinhDanh="040190192064", HoVaTen="Trần Thị Bích")
    people = to_wire(reply)["CongdanCollection"]["CongDan"]
    assert [p["HoVaTen"] for p in people] == [{"Ho": "Trần", "ChuDem": "Thị", "Ten": "Bích"}]


# ---------------------------------------------------------------- hostile and broken XML change nothing


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback port that records whether anything tried to fetch an external entity from it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        sock.settimeout(0.3)
        yield sock


def _create_envelope(face: Face, prolog: str, owner: str) -> bytes:
    return (
        f'<?xml version="1.0"?>{prolog}<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body>'
        f'<DongBoHoSoMC xmlns="{TARGET_NAMESPACE}"><session>{face.session}</session>'
        f"<madonvi>{face.madonvi}</madonvi><isUpdating>False</isUpdating><data>"
        "<MaHoSo>000.00.01.H40-251123-0666</MaHoSo><MaTTHC>1.001193</MaTTHC>"
        f"<ChuHoSo>{owner}</ChuHoSo><NgayTiepNhan>20251123080000</NgayTiepNhan>"
        "<TrangThaiHoSo>2</TrangThaiHoSo><DonViXuLy>UBND xã</DonViXuLy>"
        "</data></DongBoHoSoMC></s:Body></s:Envelope>"
    ).encode()


def _laughs() -> str:
    entities = ['<!ENTITY l0 "lollollollollollollollollollol">']
    entities += [f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)]
    return f"<!DOCTYPE s:Envelope [{''.join(entities)}]>"


@pytest.mark.parametrize("attack", ["xxe-file", "xxe-network", "billion-laughs", "dtd-present", "malformed"])
def test_xml_attacks_get_a_fault_and_change_nothing(
    fresh: tuple[Face, Face], listener: socket.socket, attack: str
) -> None:
    _, face = fresh
    port = listener.getsockname()[1]
    bodies = {
        "xxe-file": _create_envelope(
            face, '<!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;"
        ),
        "xxe-network": _create_envelope(
            face, f'<!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/x">]>', "&x;"
        ),
        "billion-laughs": _create_envelope(face, _laughs(), "&l9;"),
        "dtd-present": _create_envelope(face, "<!DOCTYPE s:Envelope>", "Nguyễn Văn An"),
        "malformed": _create_envelope(face, "", "Nguyễn Văn An").replace(b"</data>", b"</dat>"),
    }
    before = (face.admin("dossiers"), face.admin("stats"))
    response = httpx.post(
        f"{face.mock.url}/soap",
        content=bodies[attack],
        headers={"dstcode": face.dstcode, "Content-Type": "text/xml"},
    )
    assert response.status_code == 500
    fault = etree.fromstring(response.content).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None and fault.findtext("faultcode") == "soap:Client"
    expected = "malformed XML" if attack == "malformed" else "DTDs and entity declarations are refused"
    assert expected in (fault.findtext("faultstring") or "")
    assert "root:" not in response.text and "Traceback" not in response.text and "lollol" not in response.text
    assert (face.admin("dossiers"), face.admin("stats")) == before
    assert face.admin("dossiers/000.00.01.H40-251123-0666") == 404
    with pytest.raises(TimeoutError):
        listener.accept()  # nobody fetched the external entity
    # and the same envelope without the attack is accepted: the refusal was about the attack
    clean = _create_envelope(face, "", "Nguyễn Văn An")
    ok = httpx.post(f"{face.mock.url}/soap", content=clean, headers={"dstcode": face.dstcode})
    assert (
        ok.status_code == 200
        and face.admin("dossiers/000.00.01.H40-251123-0666")["ChuHoSo"] == "Nguyễn Văn An"
    )
