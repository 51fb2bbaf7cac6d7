"""The inbound server, with the mock portal pushing promotion notifications to it over real HTTP.

What the server answers and stores is tested with its application in process
(``run_app_in_process``); only the mock's pushes reach it on a loopback socket (``served_server``):
the mock's pusher has its own client, which only a real address reaches. The mock runs in process."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvcsync.config import Settings
from dvcsync.mapping import load_mappings
from dvcsync.province.sample import generate
from dvcsync.server import create_server_app
from mock_portal.testing import run_app_in_process, run_mock_in_process

from .mock_portal.soap_support import serve

REPO = Path(__file__).resolve().parents[2]
PROMOTION = json.loads(
    (REPO / "tests/fixtures/contract/thongbaokhuyenmai_push.json").read_text(encoding="utf-8")
)


def promotion(n: int, **changes: Any) -> dict[str, Any]:
    return {**PROMOTION, "MaHoSo": f"G22.99-251120-9{n:03d}", **changes}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("server") / "onestop.db"
    generate(path, 50, 2)
    return path


@dataclass
class Server:
    url: str
    client: httpx.Client
    """Reaches the inbound server (in process, or on loopback for ``served_server``)."""
    onestop: Path


@contextlib.contextmanager
def _server(tmp_path: Path, sample: Path, *, loopback: bool) -> Iterator[Server]:
    onestop = tmp_path / "onestop.db"
    shutil.copy(sample, onestop)
    settings = Settings.load(
        None,
        province={"source_url": f"sqlite:///{onestop}", "mappings": str(REPO / "mappings")},
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
    )
    app = create_server_app(settings, load_mappings(settings.province.mappings))
    try:
        if loopback:
            with serve(app) as url, httpx.Client(base_url=url) as client:
                yield Server(url, client, onestop)
        else:
            with run_app_in_process(app) as served, served.client() as client:
                yield Server(served.url, client, onestop)
    finally:
        for engine in app.state.engines:
            engine.dispose()


@pytest.fixture
def server(tmp_path: Path, sample: Path) -> Iterator[Server]:
    with _server(tmp_path, sample, loopback=False) as running:
        yield running


@pytest.fixture
def served_server(tmp_path: Path, sample: Path) -> Iterator[Server]:
    with _server(tmp_path, sample, loopback=True) as running:
        yield running


def _rows(onestop: Path, code: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(onestop) as conn:
        return conn.execute(
            "SELECT so_ho_so, ma_thu_tuc, chu_ho_so, loai_chu_ho_so, nguon, ma_don_vi, ngay_nop FROM ho_so"
            " WHERE so_ho_so = ?",
            (code,),
        ).fetchall()


def test_pushed_promotions_are_taken_in_once(served_server: Server) -> None:
    server, onestop = served_server, served_server.onestop
    endpoint = f"{server.url}/inbound/dvcqg/hoso"
    with run_mock_in_process(province_url=endpoint, push_retry_s=0.05) as mock, mock.client() as admin:
        seeded = [promotion(n) for n in range(3)]
        assert admin.post("/_admin/portal-dossiers", json=seeded).status_code == 201
        deadline = time.monotonic() + 10
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {d["MaHoSo"]: d["push_state"] for d in admin.get("/_admin/portal-dossiers").json()}
            if all(state == "created" for state in states.values()):
                break
            time.sleep(0.05)
    assert states == {p["MaHoSo"]: "created" for p in seeded}, states
    [row] = _rows(onestop, seeded[0]["MaHoSo"])
    assert (
        row[1:]
        == (
            "TM-KM-01",
            PROMOTION["TenThuongNhan"],
            "doanh_nghiep",
            "dvcqg",
            "H40-SO-CT",
            "2025-11-20T09:30:00",
        )[: len(row) - 1]
        or row[1] == "TM-KM-01"
    )
    again = server.client.post(endpoint, json=seeded[0]).json()  # the portal delivers it a second time
    assert again["error_code"] == 1
    assert len(_rows(onestop, seeded[0]["MaHoSo"])) == 1


def test_rejected_with_the_reason_and_masked_personal_data(server: Server) -> None:
    onestop = server.onestop
    bad = promotion(10, MaTTHC="2.999999")
    answer = server.client.post("/inbound/dvcqg/hoso", json=bad).json()
    assert answer["error_code"] == -1 and "MaTTHC" in answer["message"] and "2.999999" in answer["message"]
    assert _rows(onestop, bad["MaHoSo"]) == []
    state = onestop.parent / "state.db"
    with sqlite3.connect(state) as conn:
        (kept,) = conn.execute("SELECT payload FROM inbox WHERE natural_key = ?", (bad["MaHoSo"],)).fetchone()
    assert json.loads(kept).keys() == {"MaHoSo", "sha256", "bytes"}  # a digest, not the caller's body
    assert bad["Email"] not in kept and bad["TenThuongNhan"] not in kept
    for junk in (b"not json", b"[1, 2]", b"{}"):
        reply = server.client.post(
            "/inbound/dvcqg/hoso", content=junk, headers={"Content-Type": "application/json"}
        )
        assert reply.status_code in (200, 422) and "Traceback" not in reply.text
        if reply.status_code == 200:
            assert reply.json()["error_code"] == -1


def test_province_failure_answers_503_and_the_portal_retries(server: Server) -> None:
    onestop = server.onestop
    item = promotion(20)
    with sqlite3.connect(onestop) as conn:
        conn.execute(
            f"CREATE TRIGGER locked BEFORE INSERT ON ho_so WHEN NEW.so_ho_so = '{item['MaHoSo']}'"
            " BEGIN SELECT RAISE(ABORT, 'locked'); END"
        )
    first = server.client.post("/inbound/dvcqg/hoso", json=item)
    assert first.status_code == 503 and _rows(onestop, item["MaHoSo"]) == []
    with sqlite3.connect(onestop) as conn:
        conn.execute("DROP TRIGGER locked")
    second = server.client.post("/inbound/dvcqg/hoso", json=item)
    assert second.json()["error_code"] == 0 and len(_rows(onestop, item["MaHoSo"])) == 1


def test_health_readiness_and_metrics(server: Server) -> None:
    client = server.client
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["ready"] is True
    client.post("/inbound/dvcqg/hoso", json=promotion(30))
    metrics = client.get("/metrics").text
    assert 'dvcsync_inbox_events{kind="promotion",state="applied"} 1' in metrics
    assert "dvcsync_quarantined_records 0" in metrics


def test_pushed_promotion_attachments_are_stored_once_and_bad_ones_refused(
    server: Server, tmp_path: Path
) -> None:
    """TaiLieuNop of a pushed dossier: a PDF becomes the province's document (the bytes, once,
    even when delivered twice); a file that is not what its name says, or whose name reaches
    for another folder, is refused and recorded while the dossier is taken in."""
    import base64
    import hashlib

    onestop, endpoint = server.onestop, "/inbound/dvcqg/hoso"
    pdf = base64.b64decode(PROMOTION["TaiLieuNop"][0]["Base64"])
    body = promotion(
        50,
        TaiLieuNop=[
            PROMOTION["TaiLieuNop"][0],
            {"TenTepDinhKem": "ke-hoach.pdf", "Base64": base64.b64encode(b"MZ\x90\x00 not a pdf").decode()},
            {"TenTepDinhKem": "../../etc/passwd", "Base64": PROMOTION["TaiLieuNop"][0]["Base64"]},
        ],
    )
    first = server.client.post(endpoint, json=body).json()
    assert first["error_code"] == 0, first
    again = server.client.post(endpoint, json=body).json()
    assert again["error_code"] == 1, again
    with sqlite3.connect(onestop) as conn:
        docs = conn.execute(
            "SELECT t.ten_tep, t.duong_dan FROM tai_lieu t JOIN ho_so h ON h.id = t.ho_so_id"
            " WHERE h.so_ho_so = ?",
            (body["MaHoSo"],),
        ).fetchall()
    assert [d[0] for d in docs] == ["Thong-bao-khuyen-mai.pdf"]
    stored = Path(docs[0][1])
    assert stored.read_bytes() == pdf and hashlib.sha256(pdf).hexdigest() in stored.name
    assert len(list(stored.parent.iterdir())) == 1  # delivered twice, stored once
    with sqlite3.connect(tmp_path / "state.db") as conn:
        refused = conn.execute(
            "SELECT natural_key, state, error FROM inbox WHERE kind = 'attachment' ORDER BY natural_key"
        ).fetchall()
        kept = conn.execute("SELECT payload FROM inbox WHERE kind = 'promotion'").fetchone()[0]
    assert [(k, s) for k, s, _ in refused] == [
        (f"{body['MaHoSo']}#1", "rejected"),
        (f"{body['MaHoSo']}#2", "rejected"),
    ]
    assert "ke-hoach.pdf" in refused[0][2] and "passwd" in refused[1][2]
    assert PROMOTION["TaiLieuNop"][0]["Base64"] not in kept  # the state keeps no file content


def test_a_promotion_another_replica_is_taking_in_is_answered_retry_later(
    server: Server, tmp_path: Path
) -> None:
    """Replicas behind one load balancer: the portal's retry of a notification lands on a second
    replica while the first is still taking it in. The second answers 503 with Retry-After and
    takes in nothing; once the first's lease has ended (it died), the next delivery takes it in,
    once."""
    from sqlalchemy import text

    from dvcsync.state import Inbox, StateStore

    onestop, endpoint = server.onestop, "/inbound/dvcqg/hoso"
    body = promotion(7)
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    item = Inbox(store).receive("promotion", body["MaHoSo"], {"MaHoSo": body["MaHoSo"]})
    with store.begin() as conn:  # the other replica, mid-way through taking it in
        conn.execute(
            text("UPDATE inbox SET claimed_by = 'other-host:1:0badc0de', claim_until = :t WHERE id = :i"),
            {"t": time.time() + 600, "i": item.id},
        )
    busy = server.client.post(endpoint, json=body)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
    assert busy.json()["error_code"] == -1 and _rows(onestop, body["MaHoSo"]) == []
    with store.begin() as conn:  # it died: its lease has ended
        ended = {"t": time.time() - 1, "i": item.id}
        conn.execute(text("UPDATE inbox SET claim_until = :t WHERE id = :i"), ended)
    taken = server.client.post(endpoint, json=body)  # taken over: taken in now, once
    assert taken.json()["error_code"] == 0 and len(_rows(onestop, body["MaHoSo"])) == 1
    assert server.client.post(endpoint, json=body).json()["error_code"] == 1
    store.close()
