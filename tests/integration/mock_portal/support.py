"""A small client of the mock for its integration tests (httpx: in process or over loopback)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from dvcsync.contract import sign
from mock_portal.testing import InProcessMock, RunningMock, sample_dossier

__all__ = ["Mock", "PortalClient", "Receiver", "http_client", "init_body", "receiver", "sample_dossier"]

Mock = RunningMock | InProcessMock
"""A mock served over loopback (``run_mock``) or run in process (``run_mock_in_process``)."""


def http_client(mock: Mock, timeout: float = 10.0, **kwargs: Any) -> httpx.Client:
    """A client on ``mock``'s base URL: through the in-process transport, or over real HTTP."""
    if isinstance(mock, InProcessMock):
        return mock.client(timeout=timeout, **kwargs)
    return httpx.Client(base_url=mock.url, timeout=timeout, trust_env=False, **kwargs)


class PortalClient:
    def __init__(self, mock: Mock, timeout: float = 10.0) -> None:
        self.mock = mock
        self.creds = mock.config.credentials
        self.http = http_client(mock, timeout, headers={"dstcode": self.creds.dstcode})
        self.session = ""

    def close(self) -> None:
        self.http.close()

    def login(self) -> str:
        reply = self.http.post(
            "/dvcqg/auth", json={"username": self.creds.username, "password": self.creds.password}
        ).json()
        assert reply["error_code"] == self.mock.config.success_code, reply
        self.session = reply["session"]
        return self.session

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, json=body, **kwargs)

    def call(self, service: str, endpoint: str = "integration", **fields: Any) -> dict[str, Any]:
        """One service call on a logged-in session; asserts HTTP 200 and the reply shape."""
        if not self.session:
            self.login()
        body = {"session": self.session, "madonvi": self.creds.madonvi, "service": service, **fields}
        response = self.http.post(f"/dvcqg/{endpoint}", json=body)
        return check_reply(response)

    def push(self, *dossiers: dict[str, Any], updating: bool = False) -> dict[str, Any]:
        return self.call("DongBoHoSoMC", isUpdating="True" if updating else "False", data=list(dossiers))

    def history(self, *entries: dict[str, Any]) -> dict[str, Any]:
        return self.call("CapNhatTienDoHoSoMC", data=list(entries))

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"/_admin{path}", **kwargs)


def check_reply(response: httpx.Response) -> dict[str, Any]:
    """Every portal answer: HTTP 200, JSON, ``error_code`` and ``message`` (never a stack trace)."""
    assert response.status_code == 200, response.text
    reply = response.json()
    assert "error_code" in reply and "message" in reply, reply
    assert "Traceback" not in response.text
    return reply


def step(
    code: str, status: str = "4", when: str = "20251120100000", who: str = "Lê Văn Tâm"
) -> dict[str, Any]:
    return {
        "MaHoSo": code,
        "NguoiXuLy": who,
        "ChucDanh": "Công chức",
        "PhongBanXuLy": "Tư pháp",
        "ThoiDiemXuLy": when,
        "NoiDungXuLy": "Thẩm định hồ sơ",
        "TrangThai": status,
        "NgayBatDau": when,
        "NgayKetThucTheoQuyDinh": "",
    }


def init_body(
    ref: str,
    amount: int = 8000,
    secret: str = "khoa-bi-mat-thu-nghiem",
    partner: str = "H40-QNINH",
    items: list[int] | None = None,
) -> dict[str, Any]:
    """A signed INIT with its receipt data (``items`` are the DSKhoanNop amounts, default one item)."""
    body: dict[str, Any] = {
        "LoaiBanTin": "INIT",
        "PhienBan": "1.0.6",
        "MaDoiTac": partner,
        "MaThamChieu": ref,
        "SoTien": str(amount),
        "LoaiHinhThanhToan": "PAY",
        "MaKenhThanhToan": "1",
        "MaThietBi": "1",
        "NgonNgu": "vi-VN",
        "MaTienTe": "VND",
        "MaNganHang": "PAYMENT",
        "ThongTinGiaoDich": f"THANH TOAN HO SO {ref}",
        "ThoiGianGD": "20251120093015",
        "Ip": "10.20.30.40",
    }
    body["MaXacThuc"] = sign("INIT", body, secret)
    body["ThongTinBienLai"] = {
        "MaDichVu": "2",
        "MaTTHC": "1.001193",
        "TenTTHC": "Đăng ký khai sinh",
        "MaDonVi": "000.00.01.H40",
        "TenDonVi": "Ủy ban nhân dân phường Hà Sơn",
        "MaHoSo": "000.00.01.H40-251120-000001",
        "HoTenNguoiNop": "Nguyễn Thị Hồng Nhung",
        "DSKhoanNop": [
            {"NoiDung": f"Khoản {i + 1}", "SoTien": str(a)} for i, a in enumerate(items or [amount])
        ],
    }
    return body


class Receiver:
    """What a tiny province endpoint received; ``answers`` scripts its replies, then the default."""

    def __init__(self, default: dict[str, Any], answers: list[tuple[int, Any]] | None = None) -> None:
        self.default = default
        self.answers = list(answers or [])
        self.received: list[dict[str, Any]] = []
        self.event = threading.Event()
        self.url = ""

    def wait_for(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        import time

        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.received) >= n, f"received {len(self.received)} of {n}"
        return self.received


@contextmanager
def receiver(
    default: dict[str, Any], answers: list[tuple[int, Any]] | None = None, path: str = "/inbound"
) -> Iterator[Receiver]:
    """A real HTTP server on a free loopback port recording JSON POSTs."""
    state = Receiver(default, answers)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            state.received.append(json.loads(self.rfile.read(length)))
            status, answer = state.answers.pop(0) if state.answers else (200, state.default)
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)
