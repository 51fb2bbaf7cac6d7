"""A small, valid one-page PDF receipt, built by hand (no PDF library needed).

The base-14 Helvetica font has no Vietnamese glyphs, so text is folded to ASCII (diacritics
dropped, đ → d); the receipt is a test artefact, what matters is that it opens and carries the
payment's reference, amount and transaction id.
"""

from __future__ import annotations

import unicodedata


def ascii_fold(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ord(ch) < 128 and not unicodedata.combining(ch))


def _escape(text: str) -> str:
    return ascii_fold(text).replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def receipt_pdf(title: str, lines: list[tuple[str, str]]) -> bytes:
    """``lines`` are ``(label, value)`` pairs, printed one per row under ``title``."""
    ops = ["BT", "/F1 16 Tf", "60 780 Td", f"({_escape(title)}) Tj", "/F1 11 Tf", "0 -30 Td"]
    for label, value in lines:
        ops += [f"({_escape(label)}: {_escape(value)}) Tj", "0 -18 Td"]
    ops.append("ET")
    stream = "\n".join(ops).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >>"
        b" /Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode() + b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
