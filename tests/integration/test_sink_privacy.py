"""A province that refuses a write: the error names the table, the record and the database's own
message, never the row's values — they are citizens' ID numbers, phones and e-mails, and the
error goes to the log at WARNING and into ``inbox.error``."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine

from dvcsync.config import Settings
from dvcsync.mapping import load_mappings
from dvcsync.province.sample import generate
from dvcsync.province.sink import SinkError, SqlSink
from dvcsync.province.source import make_engine
from dvcsync.sync.cycles import run_pull
from mock_portal.testing import run_mock

REPO = Path(__file__).resolve().parents[2]
ID_NUMBER, PHONE, EMAIL = "079204001234", "0912345678", "an.nguyen@example.vn"
PERSONAL = (ID_NUMBER, PHONE, EMAIL)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("privacy") / "onestop.db"
    generate(path, 20, 7)
    return path


@pytest.fixture
def onestop(tmp_path: Path, sample: Path) -> Path:
    path = tmp_path / "onestop.db"
    path.write_bytes(sample.read_bytes())
    return path


def _refuse_phones(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON ho_so WHEN NEW.dien_thoai LIKE '09%' "
            "BEGIN SELECT RAISE(ABORT, 'hồ sơ bị khóa'); END"
        )


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "so_ho_so": "G22.99.99-251120-000001",
        "ma_ho_so_qg": "G22.99.99-251120-000001",
        "ma_thu_tuc": "TT-1",
        "chu_ho_so": "Nguyễn Văn An",
        "loai_chu_ho_so": "cong_dan",
        "so_giay_to": ID_NUMBER,
        "dien_thoai": PHONE,
        "email": EMAIL,
        "kenh_nop": "truc_tuyen",
        "trang_thai": "moi",
        "ma_don_vi": "DV-1",
        "le_phi": [{"ten_phi": "Lệ phí", "ma_phi": f"{PHONE}/{EMAIL}"}],
    }
    row.update(changes)
    return row


def _leaks(*texts: str) -> list[str]:
    return [value for value in PERSONAL if any(value in text for text in texts)]


@pytest.mark.parametrize("hidden", [True, False], ids=["make_engine", "plain-engine"])
@pytest.mark.parametrize("fault", ["trigger", "not-null", "child-not-null"])
def test_a_refused_write_says_why_without_the_values(onestop: Path, hidden: bool, fault: str) -> None:
    url = f"sqlite:///{onestop}"
    # a plain engine shows that the message is built safely, not only that the engine hides values
    engine = make_engine(url) if hidden else create_engine(url)
    if fault == "trigger":
        _refuse_phones(onestop)
        row = _row()
    elif fault == "not-null":
        row = _row(chu_ho_so=None)
    else:
        row = _row(le_phi=[{"ten_phi": None, "ma_phi": f"{PHONE}/{EMAIL}"}])
    with pytest.raises(SinkError) as caught:
        SqlSink(engine, key_column="ma_ho_so_qg").create("ho_so", row)
    engine.dispose()
    message = str(caught.value)
    assert message.startswith("ho_so G22.99.99-251120-000001: IntegrityError: ")
    assert ("hồ sơ bị khóa" if fault == "trigger" else "NOT NULL constraint failed") in message
    assert "parameters" not in message and not _leaks(message)
    with sqlite3.connect(onestop) as conn:  # and nothing of the record was written
        assert conn.execute("SELECT COUNT(*) FROM ho_so WHERE so_ho_so LIKE 'G22.%'").fetchone() == (0,)


def test_the_province_engine_hides_parameters_from_its_own_errors(onestop: Path) -> None:
    from sqlalchemy import text

    engine = make_engine(f"sqlite:///{onestop}")
    with pytest.raises(Exception) as caught, engine.begin() as conn:
        conn.execute(text("INSERT INTO ho_so (so_ho_so, email) VALUES (:k, :e)"), {"k": "X", "e": EMAIL})
    engine.dispose()
    assert not _leaks(str(caught.value))


def _portal_dossier(n: int) -> dict[str, Any]:
    return {
        "MaHoSo": f"G22.99.99-251120-{n:06d}",
        "MaTTHC": "1.001193",
        "ChuHoSo": "Nguyễn Văn An",
        "LoaiDoiTuong": "1",
        "SoGiayToChuHoSo": ID_NUMBER,
        "SoDienThoai": PHONE,
        "Email": EMAIL,
        "TrichYeuHoSo": "Hồ sơ nộp trực tuyến",
        "NgayNopHoSo": "20251110101530",
    }


def test_a_pull_the_province_refuses_logs_and_stores_no_personal_data(
    onestop: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _refuse_phones(onestop)
    state = tmp_path / "state.db"
    # run_pull builds its portal client from the settings: the mock serves a loopback port, from a
    # thread of this process (its own log records are captured too, and must not leak either)
    with run_mock() as mock:
        reply = httpx.post(
            f"{mock.url}/_admin/portal-dossiers", json={"dossiers": [_portal_dossier(1)]}, timeout=60
        )
        assert reply.status_code == 201, reply.text
        settings = Settings.load(
            None,
            province={"source_url": f"sqlite:///{onestop}", "mappings": str(REPO / "mappings")},
            portal={"adapter_url": mock.adapter_url, "soap_url": f"{mock.url}/soap", "timeout": 5.0},
            state={"url": f"sqlite:///{state}"},
        )
        with caplog.at_level(logging.DEBUG):
            summary = asyncio.run(run_pull(settings, load_mappings(settings.province.mappings)))
    assert (summary.listed, summary.failed, summary.created) == (1, 1, 0)
    logged = [record.getMessage() for record in caplog.records]
    assert any("hồ sơ bị khóa" in line for line in logged)  # the refusal was told…
    assert not _leaks(*logged, caplog.text)  # …without the citizen's data
    with sqlite3.connect(state) as conn:
        [(error,)] = conn.execute("SELECT error FROM inbox").fetchall()
        runs = [cell for row in conn.execute("SELECT error, counts FROM run") for cell in row if cell]
    assert "hồ sơ bị khóa" in error and "parameters" not in error
    assert not _leaks(error, *runs)
