"""Attachments that arrive with a portal dossier as Base64 (``TaiLieuNop[{TenTepDinhKem, Base64}]``)
stored as the province's documents.

Everything about an attachment is the sender's word, so nothing of it is trusted:

* the **name** only labels the document (the file name of its document row); a name that tries to leave its
  folder (``../``, ``/``, ``\\``, a drive) or carries control characters is refused, and the file on
  disk is named by its content's SHA-256 with the extension of the *detected* type, so no name can
  choose where a file goes;
* the **type** is read from the content's magic bytes (PDF, JPEG, PNG, DOCX, XLSX); a name whose
  extension says something else is a mismatch and refused, since a one-stop clerk opens the file
  by what its name says;
* the **size** is capped per file and per dossier *before* decoding (Base64 length gives it).

A refusal affects that attachment only: the dossier is still taken in, and the refusal is
returned (dossier, file name, reason) for the caller to record. Files are written to a temporary
name, flushed and renamed, so a crash leaves either the whole file or none under its real name,
and a file only becomes referenced (a document row) after it is complete. The same content
received again finds its file and writes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import secrets
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from dvcsync.config import Settings
from dvcsync.errors import TerminalError

MIB = 1024 * 1024
MAX_FILE_BYTES = 20 * MIB
MAX_DOSSIER_BYTES = 50 * MIB
MAX_NAME_CHARS = 255

# detected type → (extension the stored file gets, extensions a name may carry for it)
KINDS: dict[str, tuple[str, frozenset[str]]] = {
    "pdf": (".pdf", frozenset({".pdf"})),
    "jpeg": (".jpg", frozenset({".jpg", ".jpeg", ".jpe", ".jfif"})),
    "png": (".png", frozenset({".png"})),
    "docx": (".docx", frozenset({".docx"})),
    "xlsx": (".xlsx", frozenset({".xlsx"})),
}
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_B64_SPACE = re.compile(rb"\s+")


class AttachmentRefused(TerminalError, ValueError):
    """One attachment is not stored; the message says why (in Vietnamese, for the clerk)."""


class TooLarge(AttachmentRefused):
    """Over the size a file may still have (its own cap, or what the dossier's total leaves)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"tệp lớn hơn giới hạn {_size(limit)}")
        self.size = size


@dataclass(frozen=True)
class StoredFile:
    name: str  # the sender's name, checked (it labels the document)
    path: Path  # where the content is, named by its hash
    kind: str
    size: int
    sha256: str
    written: bool  # False: the same content was already there (a second delivery)


@dataclass(frozen=True)
class Refusal:
    dossier: str
    index: int
    name: str
    reason: str

    def __str__(self) -> str:
        return f"hồ sơ {self.dossier}: tệp {self.name!r} (TaiLieuNop[{self.index}]) bị từ chối: {self.reason}"


@dataclass
class TakenAttachments:
    """What became of a dossier's ``TaiLieuNop``: items rewritten to point at the stored copy (the
    rest as they came, minus the refused ones), and what was refused."""

    items: list[dict[str, Any]] = field(default_factory=list)
    stored: list[StoredFile] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def documents_dir(settings: Settings) -> Path:
    """``[province] documents_dir``, or ``documents/`` beside the state database (or in the working
    folder), like the receipts; a tenant's in its own ``<code>/`` under it."""
    from dvcsync.tenants import tenant_folder

    configured = getattr(settings.province, "documents_dir", None)
    if configured:
        return tenant_folder(settings, Path(configured))
    url = make_url(settings.state.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return tenant_folder(settings, Path(url.database).resolve().parent / "documents")
    return tenant_folder(settings, Path("documents"))


def sniff(content: bytes) -> str | None:
    """The content's type by its magic bytes, or None when it is none of the accepted ones. An
    Office file is a ZIP whose directory names the part that makes it a document or a workbook;
    only the directory is read (nothing is decompressed, so a ZIP bomb costs nothing here)."""
    if content.startswith(b"%PDF-"):
        return "pdf"
    if content.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if content.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, ValueError, OSError):
            return None
        if "[Content_Types].xml" in names:
            if "word/document.xml" in names:
                return "docx"
            if "xl/workbook.xml" in names:
                return "xlsx"
    return None


def check_name(raw: object) -> str:
    """The sender's file name, NFC, if it is only a name: anything that could address another
    folder or hide characters is refused rather than repaired (it was written on purpose)."""
    if not isinstance(raw, str) or not raw.strip():
        raise AttachmentRefused("không có tên tệp")
    name = unicodedata.normalize("NFC", raw.strip())
    if _UNSAFE_NAME.search(name):
        raise AttachmentRefused("tên tệp chứa ký tự điều khiển")
    if "/" in name or "\\" in name or _DRIVE.match(name) or name in (".", ".."):
        raise AttachmentRefused("tên tệp chứa đường dẫn thư mục (không được phép)")
    if name.startswith("."):
        raise AttachmentRefused("tên tệp bắt đầu bằng dấu chấm")
    if len(name) > MAX_NAME_CHARS:
        raise AttachmentRefused(f"tên tệp dài hơn {MAX_NAME_CHARS} ký tự")
    return name


def decode(data: object, limit: int) -> bytes:
    """Strict Base64 (whitespace and a ``data:...;base64,`` prefix tolerated), refused by its
    length before decoding when the content would exceed ``limit``."""
    if not isinstance(data, str) or not data:
        raise AttachmentRefused("không có nội dung Base64")
    if data.startswith("data:") and "," in data[:200]:
        data = data.split(",", 1)[1]
    compact = _B64_SPACE.sub(b"", data.encode("ascii", "replace"))
    approximate = len(compact) // 4 * 3 - compact[-2:].count(b"=")
    if approximate > limit:
        raise TooLarge(approximate, limit)
    try:
        content = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise AttachmentRefused("nội dung Base64 không hợp lệ") from None
    if not content:
        raise AttachmentRefused("tệp rỗng")
    if len(content) > limit:
        raise TooLarge(len(content), limit)
    return content


def _size(n: int) -> str:
    return f"{n / MIB:g} MiB" if n >= MIB else f"{n} byte"


def _folder_name(code: str) -> str:
    """A dossier's folder: its code when that is a plain name, else a safe form plus a short hash
    (the code is the sender's too, and two codes must not share a folder)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in code)[:80]
    safe = safe.lstrip(".") or "_"
    if safe != code:
        safe += "-" + hashlib.sha256(code.encode("utf-8")).hexdigest()[:10]
    return safe


class AttachmentStore:
    def __init__(
        self,
        root: Path,
        *,
        max_file_bytes: int = MAX_FILE_BYTES,
        max_dossier_bytes: int = MAX_DOSSIER_BYTES,
    ) -> None:
        self.root = Path(root)
        self.max_file_bytes = max_file_bytes
        self.max_dossier_bytes = max_dossier_bytes

    def take(self, dossier: str, items: object) -> TakenAttachments:
        """Store the Base64 attachments of one dossier's ``TaiLieuNop``. Items without ``Base64``
        (the portal's URL form) pass through unchanged; stored ones point at their file in
        ``DuongDanTaiTepTin``; refused ones are left out and listed."""
        outcome = TakenAttachments()
        if not isinstance(items, list):
            return outcome
        total = 0
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            if "Base64" not in item:
                outcome.items.append(item)
                continue
            shown = str(item.get("TenTepDinhKem") or "")[:300]
            left = self.max_dossier_bytes - total
            try:
                name = check_name(item.get("TenTepDinhKem"))
                content = decode(item.get("Base64"), min(self.max_file_bytes, max(left, 0)))
                kind = sniff(content)
                if kind is None:
                    raise AttachmentRefused("loại tệp không được chấp nhận (chỉ PDF, JPEG, PNG, DOCX, XLSX)")
                ext = os.path.splitext(name)[1].lower()
                if ext and ext not in KINDS[kind][1]:  # the clerk would open it by its name
                    raise AttachmentRefused(f"nội dung là {kind.upper()} nhưng tên tệp có đuôi {ext!r}")
                stored = self._write(dossier, name, kind, content)
            except TooLarge as exc:
                reason = (
                    f"tệp lớn hơn giới hạn {_size(self.max_file_bytes)}"
                    if exc.size > self.max_file_bytes
                    else f"tổng dung lượng các tệp của hồ sơ vượt {_size(self.max_dossier_bytes)}"
                )
                outcome.refused.append(Refusal(dossier, index, shown, reason))
                continue
            except AttachmentRefused as exc:
                outcome.refused.append(Refusal(dossier, index, shown, str(exc)))
                continue
            total += stored.size
            outcome.stored.append(stored)
            rewritten = {k: v for k, v in item.items() if k != "Base64"}
            rewritten["TenTepDinhKem"] = stored.name
            rewritten["DuongDanTaiTepTin"] = str(stored.path)
            outcome.items.append(rewritten)
        return outcome

    def _write(self, dossier: str, name: str, kind: str, content: bytes) -> StoredFile:
        """Content-addressed and atomic: the temporary file is flushed to disk before it takes
        its real name, so a file under a real name is always whole; an existing one with the
        same hash is the same content, and nothing is written again."""
        digest = hashlib.sha256(content).hexdigest()
        folder = self.root / _folder_name(dossier)
        path = folder / f"{digest}{KINDS[kind][0]}"
        if path.is_file() and path.stat().st_size == len(content):
            return StoredFile(name, path, kind, len(content), digest, written=False)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # citizens' documents: owner only
        tmp = folder / f".{digest}.{os.getpid()}.{secrets.token_hex(4)}.tmp"  # never another writer's
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, path)
        try:  # the rename itself survives a power cut only once the folder is flushed
            dir_fd = os.open(folder, os.O_RDONLY)
        except OSError:
            pass
        else:
            try:
                os.fsync(dir_fd)
            except OSError:
                pass
            finally:
                os.close(dir_fd)
        return StoredFile(name, path, kind, len(content), digest, written=True)


def without_content(raw: dict[str, Any]) -> dict[str, Any]:
    """A dossier as the inbox keeps it: each attachment's Base64 replaced by its size and hash
    (the content is in the documents folder, or was refused; the state is no file store)."""
    items = raw.get("TaiLieuNop")
    if not isinstance(items, list) or not any(isinstance(i, dict) and "Base64" in i for i in items):
        return raw
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict) and "Base64" in item:
            data = item["Base64"]
            text = data if isinstance(data, str) else ""
            digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
            item = {k: v for k, v in item.items() if k != "Base64"}
            item["Base64"] = f"<{len(text)} ký tự Base64, sha256 {digest[:16]}>"
        kept.append(item)
    return {**raw, "TaiLieuNop": kept}


__all__ = [
    "MAX_DOSSIER_BYTES",
    "MAX_FILE_BYTES",
    "AttachmentRefused",
    "AttachmentStore",
    "Refusal",
    "StoredFile",
    "TakenAttachments",
    "TooLarge",
    "check_name",
    "decode",
    "documents_dir",
    "sniff",
    "without_content",
]
