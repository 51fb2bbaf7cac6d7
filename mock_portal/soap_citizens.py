"""``TraCuuThongTinCongDan``: the population database's citizen lookup, answered from a fixture.

The real lookup lives in another system behind the integration platform, which authenticates the
caller; so this operation takes no portal session (a choice, documented in the WSDL). The fixture
people are fictitious. IDs are personal data: nothing here logs them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

_ID = re.compile(r"\d{12}")
_DATE = re.compile(r"\d{8}")


@cache
def citizens() -> tuple[dict[str, Any], ...]:
    """The fixture people, in the reply shape (``CongDan``), read once."""
    text = resources.files("mock_portal").joinpath("fixtures/citizens.json").read_text(encoding="utf-8")
    return tuple(json.loads(text))


def _norm(name: str) -> str:
    """Names compare as NFC, case-insensitive, with runs of spaces folded (as clerks type them)."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def full_name(person: dict[str, Any]) -> str:
    parts = person["HoVaTen"]
    return " ".join(p for p in (parts.get("Ho"), parts.get("ChuDem"), parts.get("Ten")) if p)


def _refuse(field: str, problem: str) -> dict[str, Any]:
    message = f"TraCuuThongTinCongDan: {field} {problem}"
    return {"error_code": "1", "message": message, "CongdanCollection": {}}


def lookup(request: dict[str, Any]) -> dict[str, Any]:
    """Match on ``SoDinhDanh`` and, when given, ``HoVaTen`` and ``NgayThangNam`` (yyyyMMdd).

    No match is a success with an empty collection (the database answers "nobody"), a malformed
    request a non-zero ``error_code`` naming the field.
    """
    number = request.get("SoDinhDanh")
    if not isinstance(number, str) or not number:
        return _refuse("SoDinhDanh", "is required (12-digit citizen ID)")
    if not _ID.fullmatch(number):
        return _refuse("SoDinhDanh", f"{number!r} is not a 12-digit citizen ID")
    name = request.get("HoVaTen") or ""
    born = request.get("NgayThangNam") or ""
    if not isinstance(name, str):
        return _refuse("HoVaTen", "must be text (the full name)")
    if born:
        if not isinstance(born, str) or not _DATE.fullmatch(born):
            return _refuse("NgayThangNam", f"{born!r} is not a date yyyyMMdd")
        try:
            datetime.strptime(born, "%Y%m%d")
        except ValueError:
            return _refuse("NgayThangNam", f"{born!r} is not a real date")
    found = [
        person
        for person in citizens()
        if person["SoDinhDanh"] == number
        and (not name or _norm(full_name(person)) == _norm(name))
        and (not born or person["NgayThangNamSinh"]["NgayThangNam"] == born)
    ]
    message = "Thành công" if found else "Không tìm thấy công dân"
    return {"error_code": "0", "message": message, "CongdanCollection": {"CongDan": found}}
