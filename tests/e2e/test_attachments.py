"""Attachments sent with their content (``TaiLieuNop[].Base64``) with a dossier submitted on the
portal: stored as the province's documents, once, type-checked by content, size-capped, with
the sender's file name unable to choose where a file goes; a refused one is recorded and the rest
of the dossier is still taken in."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from dvcsync.config import Settings
from dvcsync.mapping import MappingSet, load_mappings
from dvcsync.province.source import make_engine
from dvcsync.sync.attachments import AttachmentStore
from dvcsync.sync.pull import PullJob, PullSummary
from dvcsync.sync.runtime import open_runtime
from mock_portal.testing import RunningMock

from .conftest import settings_for

PDF = b"%PDF-1.4\n1 0 obj<< /Type /Catalog >>endobj\ntrailer<< /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EXE = b"MZ\x90\x00" + b"\x00" * 200
CODE = "G22.99-261123-777001"
FILE_CAP = 4096


def _b64(content: bytes) -> str:
    return base64.b64encode(content).decode("ascii")


def _dossier(mset: MappingSet) -> dict[str, Any]:
    procedure = mset.codes["procedures"]
    ma_tthc = procedure.lookup(next(iter(procedure)))["ma_tthc"]
    return {
        "MaHoSo": CODE,
        "MaTTHC": ma_tthc,
        "ChuHoSo": "Nguyễn Thu Hà",
        "LoaiDoiTuong": "1",
        "TrichYeuHoSo": "Hồ sơ có tệp đính kèm",
        "NgayNopHoSo": "20261123090000",
        "TaiLieuNop": [
            {"TepDinhKemId": "1", "TenTepDinhKem": "Đơn đề nghị.pdf", "Base64": _b64(PDF)},
            {"TepDinhKemId": "2", "TenTepDinhKem": "ảnh chân dung.png", "Base64": _b64(PNG)},
            {"TepDinhKemId": "3", "TenTepDinhKem": "giay-to.pdf", "Base64": _b64(EXE)},  # not a PDF
            {"TepDinhKemId": "4", "TenTepDinhKem": "../../etc/passwd", "Base64": _b64(PDF)},
            {"TepDinhKemId": "5", "TenTepDinhKem": "quá-lớn.pdf", "Base64": _b64(PDF + b"0" * FILE_CAP)},
            {"TepDinhKemId": "6", "TenTepDinhKem": "ban-ve.png", "DuongDanTaiTepTin": "https://x/6"},
        ],
    }


async def _pull(settings: Settings, mset: MappingSet, root: Path) -> PullSummary:
    """The pull as ``run_pull`` runs it, with a small file cap (a 20 MiB body is not a test)."""
    store = AttachmentStore(root, max_file_bytes=FILE_CAP, max_dossier_bytes=4 * FILE_CAP)
    async with open_runtime(settings, mset) as rt:
        engine = make_engine(settings.province.effective_sink_url)
        try:
            job = PullJob(settings, mset, rt.store, rt.client, engine, attachments=store)
            return await job.run_cycle()
        finally:
            engine.dispose()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_attachments_stored_once_refusals_recorded(mock: RunningMock, onestop: Path, tmp_path: Path) -> None:
    settings = settings_for(mock, onestop, tmp_path / "state.db", max_attempts=1)
    mset = load_mappings(settings.province.mappings)
    root = tmp_path / "documents"
    seeded = httpx.post(
        f"{mock.url}/_admin/portal-dossiers", params={"push": "false"}, json={"dossiers": [_dossier(mset)]}
    )
    assert seeded.status_code == 201, seeded.text
    # the acknowledgement fails the first time, so the portal lists the dossier again: a second delivery
    httpx.put(
        f"{mock.url}/_admin/faults",
        json={"rules": [{"service": "XacNhanHoSo", "status_rates": {"500": 1.0}}]},
    ).raise_for_status()

    first = asyncio.run(_pull(settings, mset, root))
    assert first.created == 1
    assert (first.attachments_stored, first.attachments_refused) == (2, 3)
    files = _files(root)
    assert sorted(p.read_bytes() for p in files) == sorted([PDF, PNG])
    assert all(".." not in p.relative_to(root).parts for p in files)
    assert not any(p.name == "passwd" for p in root.rglob("*"))

    with sqlite3.connect(onestop) as conn:
        rows = conn.execute(
            "SELECT t.loai, t.ten_tep, t.duong_dan FROM tai_lieu t JOIN ho_so h ON h.id = t.ho_so_id"
            " WHERE h.ma_ho_so_qg = ? ORDER BY t.id",
            (CODE,),
        ).fetchall()
    assert [(loai, ten) for loai, ten, _ in rows] == [
        ("nop", "Đơn đề nghị.pdf"),
        ("nop", "ảnh chân dung.png"),
        ("nop", "ban-ve.png"),  # a URL-only item as before
    ]
    assert Path(rows[0][2]).read_bytes() == PDF and Path(rows[1][2]).read_bytes() == PNG
    assert rows[2][2] == "https://x/6"

    with sqlite3.connect(tmp_path / "state.db") as conn:
        refused = dict(
            conn.execute(
                "SELECT natural_key, error FROM inbox WHERE kind = 'attachment' AND state = 'rejected'"
            ).fetchall()
        )
        dossier_payload = conn.execute(
            "SELECT payload FROM inbox WHERE kind = 'portal_dossier' AND natural_key = ?", (CODE,)
        ).fetchone()[0]
    assert set(refused) == {f"{CODE}#2", f"{CODE}#3", f"{CODE}#4"}
    assert all(CODE in error for error in refused.values())
    assert "giay-to.pdf" in refused[f"{CODE}#2"] and "loại tệp" in refused[f"{CODE}#2"]
    assert "../../etc/passwd" in refused[f"{CODE}#3"] and "đường dẫn" in refused[f"{CODE}#3"]
    assert "quá-lớn.pdf" in refused[f"{CODE}#4"] and "giới hạn" in refused[f"{CODE}#4"]
    assert _b64(PDF) not in dossier_payload  # the state keeps no file content

    httpx.put(f"{mock.url}/_admin/faults", json={"rules": []}).raise_for_status()
    second = asyncio.run(_pull(settings, mset, root))
    assert (second.listed, second.created, second.already_in_province, second.acknowledged) == (1, 0, 1, 1)
    assert (second.attachments_stored, second.attachments_refused) == (0, 0)  # nothing new
    assert _files(root) == files
    with sqlite3.connect(onestop) as conn:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM tai_lieu t JOIN ho_so h ON h.id = t.ho_so_id WHERE h.ma_ho_so_qg = ?",
            (CODE,),
        ).fetchone()
    assert count == 3
    assert not list(root.rglob("*.tmp"))
