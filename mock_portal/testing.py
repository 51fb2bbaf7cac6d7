"""Run the mock for tests and benchmarks: on a free loopback port over real HTTP, or in process.

``run_mock`` serves it from a background thread of this process (fast to start, state reachable
through ``.app``); ``run_mock_process`` starts ``python -m mock_portal`` as a child process, for
benchmarks (its own CPU) and kill/restart tests. ``run_mock_in_process`` serves no socket at all:
its clients hand each request to the app through ``httpx.ASGITransport``, for tests of the mock's
answers where the network is not what is tested (no port, no server thread to start and stop);
``run_app_in_process`` does the same for any application (the adapter's inbound server's too).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from .app import create_app
from .config import MockConfig


@dataclass
class RunningMock:
    url: str
    """Base URL, ``http://127.0.0.1:PORT``."""
    config: MockConfig
    app: FastAPI | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def adapter_url(self) -> str:
        return f"{self.url}/dvcqg"

    def kill(self) -> None:
        """Kill the child process at once (SIGKILL): no shutdown, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _config(config: MockConfig | None, overrides: dict[str, Any]) -> MockConfig:
    """``overrides`` are validated like any setting (a fault spec may be given as a dict)."""
    base = config or MockConfig()
    if not overrides:
        return base
    return MockConfig.model_validate({**dict(base), **overrides})


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def run_mock(config: MockConfig | None = None, **overrides: Any) -> Iterator[RunningMock]:
    """Serve ``create_app(config)`` with uvicorn in a thread; ``overrides`` replace config fields."""
    cfg = _config(config, overrides)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((cfg.host, 0))
    cfg = cfg.model_copy(update={"port": sock.getsockname()[1]})
    app = create_app(cfg)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=30,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"mock-portal-{cfg.port}"
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("mock portal did not start")
        time.sleep(0.01)
    try:
        yield RunningMock(url=f"http://{cfg.host}:{cfg.port}", config=cfg, app=app)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def config_argv(cfg: MockConfig) -> list[str]:
    """The command line that starts ``python -m mock_portal`` with ``cfg`` (secrets go by environment,
    see ``config_env``, so they never show in a process list)."""
    creds = cfg.credentials
    argv = [
        "--host",
        cfg.host,
        "--port",
        str(cfg.port),
        "--state",
        cfg.state,
        "--faults",
        cfg.faults.model_dump_json(),
        "--username",
        creds.username,
        "--dstcode",
        creds.dstcode,
        "--madonvi",
        creds.madonvi,
        "--partner-code",
        creds.partner_code,
        "--success-code",
        {0: "int", "0": "string", "00": "00"}[cfg.success_code],
        "--batch-limit",
        str(cfg.batch_limit),
        "--session-ttl",
        str(cfg.session_ttl_s),
        "--payment-reply",
        cfg.payment_reply_form,
        "--callback-type",
        cfg.callback_type,
        "--callback-retry-s",
        str(cfg.callback_retry_s),
        "--callback-max-attempts",
        str(cfg.callback_max_attempts),
        "--callback-delay-s",
        str(cfg.callback_delay_s),
        "--push-retry-s",
        str(cfg.push_retry_s),
        "--push-max-attempts",
        str(cfg.push_max_attempts),
        "--quiet",
        "--lenient" if not cfg.strict else "--strict",
    ]
    if cfg.callback_duplicate:
        argv.append("--callback-duplicate")
    if cfg.callback_url:
        argv += ["--callback-url", cfg.callback_url]
    if cfg.province_url:
        argv += ["--province-url", cfg.province_url]
    if cfg.public_url:
        argv += ["--public-url", cfg.public_url]
    if cfg.seed_dossiers:
        argv += ["--seed-dossiers", cfg.seed_dossiers]
    return argv


def config_env(cfg: MockConfig) -> dict[str, str]:
    return {
        "MOCK_PORTAL_PASSWORD": cfg.credentials.password,
        "MOCK_PORTAL_PAYMENT_SECRET": cfg.credentials.payment_secret,
        **({"MOCK_PORTAL_CALLBACK_TOKEN": cfg.callback_token} if cfg.callback_token else {}),
        **({"MOCK_PORTAL_PROVINCE_TOKEN": cfg.province_token} if cfg.province_token else {}),
        **({"MOCK_PORTAL_ADMIN_TOKEN": cfg.admin_token} if cfg.admin_token else {}),
    }


@contextlib.contextmanager
def run_mock_process(
    config: MockConfig | None = None, startup_timeout_s: float = 30.0, **overrides: Any
) -> Iterator[RunningMock]:
    """Start ``python -m mock_portal`` in a child process on a free port; terminated on exit."""
    cfg = _config(config, overrides)
    cfg = cfg.model_copy(update={"port": free_port(cfg.host)})
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_PORTAL_")} | config_env(cfg)
    process = subprocess.Popen([sys.executable, "-m", "mock_portal", *config_argv(cfg)], env=env)
    running = RunningMock(url=f"http://{cfg.host}:{cfg.port}", config=cfg, process=process)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mock portal exited with {process.returncode} at start-up")
            try:
                answer = httpx.get(f"{running.url}/_admin/stats", timeout=1.0, trust_env=False)
                if answer.status_code in (200, 401):  # 401: it answers, and asks for its admin token
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mock portal process did not answer in time")
            time.sleep(0.05)
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


_T = TypeVar("_T")

IN_PROCESS_URL = "http://127.0.0.1:9"
"""The base URL of an in-process mock: requests never leave the process (nothing listens on the
discard port, so a client that bypasses the in-process transport fails at once)."""


class InProcessTransport(httpx.BaseTransport):
    """A synchronous httpx transport that runs each request through ``httpx.ASGITransport`` on the
    in-process mock's event loop (``httpx.ASGITransport`` alone serves only async clients).

    Client timeouts do not apply and no connection can be dropped: tests of those stay on loopback.
    An exception the app lets through is raised in the caller (a server would answer 500).
    """

    def __init__(self, app: FastAPI, loop: asyncio.AbstractEventLoop) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        status, headers, raw = _on(self._loop, self._send(request, body))
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(raw), request=request)

    async def _send(self, request: httpx.Request, body: bytes) -> tuple[int, httpx.Headers, bytes]:
        forwarded = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        response = await self._asgi.handle_async_request(forwarded)
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        return response.status_code, response.headers, raw


IN_PROCESS_WAIT_S = 120.0
"""The longest a request to, or the start of, an in-process mock is waited for: a test that hangs
fails with a timeout instead of blocking the run (nothing in the mock takes near this long)."""


def _on(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` on ``loop`` (another thread's) and wait, bounded, for its result."""
    return asyncio.run_coroutine_threadsafe(coro, loop).result(IN_PROCESS_WAIT_S)


@dataclass
class InProcessMock:
    """A mock app running in this process on its own event loop (a thread), with its lifespan run."""

    url: str
    """Base URL its clients use, ``IN_PROCESS_URL``; the app derives served URLs from it."""
    config: MockConfig
    app: FastAPI
    loop: asyncio.AbstractEventLoop = field(repr=False)

    @property
    def adapter_url(self) -> str:
        return f"{self.url}/dvcqg"

    def transport(self) -> InProcessTransport:
        return InProcessTransport(self.app, self.loop)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` on ``url`` whose requests reach the app in process."""
        return httpx.Client(transport=self.transport(), base_url=self.url, **kwargs)


@contextlib.contextmanager
def run_mock_in_process(config: MockConfig | None = None, **overrides: Any) -> Iterator[InProcessMock]:
    """``create_app(config)`` on an event loop in a thread, its lifespan run as a server would (the
    callback deliverer and the province pusher work; the state file is closed at exit); no socket."""
    cfg = _config(config, overrides)
    app = create_app(cfg)
    with run_app_in_process(app, name="the in-process mock", thread="mock-portal-in-process") as served:
        yield InProcessMock(url=served.url, config=cfg, app=app, loop=served.loop)


@dataclass
class InProcessApp:
    """Any ASGI application (the adapter's inbound server too) running in this process on its own
    event loop (a thread), with its lifespan run; ``client()`` reaches it with no socket."""

    url: str
    """Base URL its clients use, ``IN_PROCESS_URL``."""
    app: FastAPI
    loop: asyncio.AbstractEventLoop = field(repr=False)

    def transport(self) -> InProcessTransport:
        return InProcessTransport(self.app, self.loop)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` on ``url`` whose requests reach the app in process."""
        return httpx.Client(transport=self.transport(), base_url=self.url, **kwargs)


@contextlib.contextmanager
def run_app_in_process(
    app: FastAPI, name: str = "the in-process app", thread: str = "app-in-process"
) -> Iterator[InProcessApp]:
    """``app`` on an event loop in a thread, its lifespan run as a server would; no socket. For tests
    of what an application answers where the network is not what is tested: requests arrive from
    ``127.0.0.1`` (``httpx.ASGITransport``'s client address), an app exception reaches the caller.
    ``name`` is what a start-up that hangs is reported as, ``thread`` its event loop thread's name."""
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True, name=thread)
    runner.start()
    started = threading.Event()
    stop = asyncio.Event()

    async def lifespan() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await stop.wait()

    running = asyncio.run_coroutine_threadsafe(lifespan(), loop)
    try:
        deadline = time.monotonic() + IN_PROCESS_WAIT_S
        while not started.wait(0.01):
            if running.done():
                running.result()  # the lifespan failed at start-up: raise its error
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not start in {IN_PROCESS_WAIT_S:.0f} s")
        yield InProcessApp(url=IN_PROCESS_URL, app=app, loop=loop)
    finally:
        loop.call_soon_threadsafe(stop.set)
        try:
            running.result(15)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            runner.join(15)
            loop.close()


def sample_dossier(serial: int, status: str = "4", day: str = "251120", **fields: Any) -> dict[str, Any]:
    """A realistic, valid ``DongBoHoSoMC`` dossier (birth registration), unique per ``serial``."""
    code = f"000.00.01.H40-{day}-{serial:06d}"
    dossier: dict[str, Any] = {
        "MaHoSo": code,
        "MaTTHC": "1.001193",
        "TenTTHC": "Đăng ký khai sinh",
        "MaLinhVuc": "TP-HT",
        "TenLinhVuc": "Hộ tịch",
        "SoBienNhan": f"BN-{serial}",
        "ChuHoSo": "Nguyễn Thị Hồng Nhung",
        "LoaiDoiTuong": "1",
        "MaDoiTuong": "",
        "SoGiayToChuHoSo": "001203004567",
        "ThongTinKhac": "",
        "Email": "nhung.nguyen@example.vn",
        "Fax": "",
        "SoDienThoai": "0912345678",
        "TrichYeuHoSo": "Đăng ký khai sinh cho con Nguyễn Minh Khang",
        "NgayNopHoSo": "20251120083000",
        "NgayTiepNhan": "20251120090000" if status != "1" else "",
        "NgayHenTra": "20251121170000",
        "NgayTra": "",
        "NgayKetThucXuLy": "",
        "NgayTuChoi": "",
        "TrangThaiHoSo": status,
        "KenhThucHien": "2",
        "HinhThuc": "0",
        "ThongTinTra": "",
        "DonViXuLy": "Ủy ban nhân dân phường Hà Sơn",
        "GhiChu": "",
        "DuocThanhToanTrucTuyen": "0",
        "NoiNopHoSo": "2",
        "HoSoCoThanhPhanSoHoa": "1",
        "TaiKhoanDuocXacThucVoiVNeID": "1",
        "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "001203004567"}],
        "TaiLieuNop": [
            {
                "TepDinhKemId": f"{serial}-{k}",
                "TenTepDinhKem": name,
                "IsDeleted": "False",
                "MaThanhPhanHoSo": f"HT-KS-01-TP0{k + 1}",
                "DuongDanTaiTepTin": f"https://motcua.h40.example/files/{serial}/{k}.pdf",
            }
            for k, name in enumerate(["To khai dang ky khai sinh.pdf", "Giay chung sinh.pdf"])
        ],
        "DanhSachLePhi": [
            {
                "TenPhiLePhi": "Lệ phí đăng ký khai sinh",
                "MaPhiLePhi": "LP-HT-KS",
                "HinhThucThu": "3",
                "Gia": "0",
                "LoaiPhiLePhi": "2",
            }
        ],
    }
    dossier.update(fields)
    return dossier
