"""The attachment store on its own: magic bytes, names, caps, atomic and idempotent writes."""

from __future__ import annotations

import base64
import io
import os
import zipfile
from pathlib import Path

import pytest

from dvcsync.config import Settings
from dvcsync.sync.attachments import (
    AttachmentRefused,
    AttachmentStore,
    check_name,
    decode,
    documents_dir,
    sniff,
    without_content,
)

PDF = b"%PDF-1.7\n%%EOF\n"


def _zip(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


def _item(name: str, content: bytes) -> dict[str, str]:
    return {"TenTepDinhKem": name, "Base64": base64.b64encode(content).decode()}


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (PDF, "pdf"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 10, "jpeg"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 10, "png"),
        (_zip("[Content_Types].xml", "word/document.xml"), "docx"),
        (_zip("[Content_Types].xml", "xl/workbook.xml"), "xlsx"),
        (_zip("[Content_Types].xml", "ppt/presentation.xml"), None),  # Office, but not accepted
        (_zip("readme.txt"), None),
        (b"PK\x03\x04 not really a zip", None),
        (b"MZ\x90\x00", None),
        (b"<html><script>", None),
    ],
)
def test_sniff_by_content(content: bytes, kind: str | None) -> None:
    assert sniff(content) == kind


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "a/b.pdf", "..\\x.pdf", "C:evil.pdf", "..", ".htaccess", "a\x00.pdf", "x\n.pdf", ""],
)
def test_names_that_address_a_folder_or_hide_characters_are_refused(name: str) -> None:
    with pytest.raises(AttachmentRefused):
        check_name(name)


def test_names_are_nfc() -> None:
    assert check_name("Đơn đề nghị.pdf".encode().decode("utf-8")) == "Đơn đề nghị.pdf"
    import unicodedata

    assert check_name(unicodedata.normalize("NFD", "ảnh.png")) == unicodedata.normalize("NFC", "ảnh.png")


def test_decode_refuses_by_length_before_decoding_and_bad_base64() -> None:
    assert decode(base64.b64encode(PDF).decode(), 100) == PDF
    assert decode("data:application/pdf;base64," + base64.b64encode(PDF).decode(), 100) == PDF
    with pytest.raises(AttachmentRefused, match="giới hạn"):
        decode("A" * 4000, 100)
    with pytest.raises(AttachmentRefused, match="Base64"):
        decode("not base64!!", 100)
    with pytest.raises(AttachmentRefused):
        decode("", 100)


def test_store_is_content_addressed_atomic_and_idempotent(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    first = store.take("H40-1", [_item("Đơn.pdf", PDF), {"TenTepDinhKem": "x", "DuongDanTaiTepTin": "u"}])
    assert [f.written for f in first.stored] == [True] and not first.refused
    path = first.stored[0].path
    assert path.read_bytes() == PDF and path.suffix == ".pdf" and path.parent.parent == tmp_path
    assert os.stat(path).st_mode & 0o077 == 0
    assert first.items[0]["DuongDanTaiTepTin"] == str(path) and "Base64" not in first.items[0]
    assert first.items[1] == {"TenTepDinhKem": "x", "DuongDanTaiTepTin": "u"}
    again = store.take("H40-1", [_item("Đơn.pdf", PDF)])
    assert [f.written for f in again.stored] == [False]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [path.name]


def test_a_half_written_temporary_file_is_never_referenced(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    taken = store.take("H40-1", [_item("a.pdf", PDF)])
    path = taken.stored[0].path
    path.unlink()
    (path.parent / f".{taken.stored[0].sha256}.1.dead.tmp").write_bytes(PDF[:3])  # a crash's leftover
    again = store.take("H40-1", [_item("a.pdf", PDF)])
    assert again.stored[0].written and path.read_bytes() == PDF


def test_refusals_name_the_file_and_reason_and_keep_the_rest(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path, max_file_bytes=64, max_dossier_bytes=20)
    taken = store.take(
        "../H40/2",
        [
            _item("b.docx", PDF),  # a PDF named as a Word document
            _item("c.pdf", PDF + b"x" * 100),  # over the file cap
            _item("a.pdf", PDF),
            _item("d.pdf", PDF + b"y"),  # fits a file, not what the dossier has left
        ],
    )
    assert [f.name for f in taken.stored] == ["a.pdf"]
    reasons = {r.name: r.reason for r in taken.refused}
    assert "PDF" in reasons["b.docx"] and "'.docx'" in reasons["b.docx"]
    assert "64 byte" in reasons["c.pdf"]
    assert "tổng dung lượng" in reasons["d.pdf"]
    assert "hồ sơ ../H40/2" in str(taken.refused[0]) and "b.docx" in str(taken.refused[0])
    folder = taken.stored[0].path.parent  # the dossier's code does not choose the folder either
    assert folder.parent == tmp_path and ".." not in folder.name and "/" not in folder.name


def test_inbox_copy_has_no_content() -> None:
    raw = {"MaHoSo": "X", "TaiLieuNop": [_item("a.pdf", PDF), {"TenTepDinhKem": "u"}]}
    kept = without_content(raw)
    assert base64.b64encode(PDF).decode() not in str(kept) and kept["TaiLieuNop"][1] == {"TenTepDinhKem": "u"}
    assert without_content({"MaHoSo": "Y"}) == {"MaHoSo": "Y"}


def test_documents_folder_is_beside_the_state(tmp_path: Path) -> None:
    settings = Settings.load(None, state={"url": f"sqlite:///{tmp_path}/s.db"})
    assert documents_dir(settings) == tmp_path.resolve() / "documents"
