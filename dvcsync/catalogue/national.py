"""The national catalogue's records (``LayThuTuc`` items, UPPER-CASE keys) as the matcher reads them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .matcher import NationalProcedure


def fees_of(detail: Mapping[str, Any]) -> tuple[int, ...]:
    """Every amount the record lists, over channels and times (whole VND; unreadable ones left out)."""
    amounts: set[int] = set()
    for way in detail.get("CACHTHUCTHUCHIEN") or []:
        for time in way.get("THOIGIAN") or []:
            for fee in time.get("PHILEPHI") or []:
                text = str(fee.get("SOTIEN") or "").replace(".", "").replace(",", "").strip()
                if text.isdigit():
                    amounts.add(int(text))
    return tuple(sorted(amounts))


def days_of(detail: Mapping[str, Any]) -> float | None:
    """The shortest processing time the record states, in its unit (working days in practice)."""
    found: list[float] = []
    for way in detail.get("CACHTHUCTHUCHIEN") or []:
        for time in way.get("THOIGIAN") or []:
            try:
                found.append(float(str(time.get("THOIGIANGIAIQUYET") or "").replace(",", ".")))
            except ValueError:
                continue
    return min(found) if found else None


def procedure_from_portal(detail: Mapping[str, Any]) -> NationalProcedure:
    sectors = detail.get("LINHVUCTHUCHIEN") or [{}]
    return NationalProcedure(
        code=str(detail["MATTHC"]),
        name=str(detail["TENTTHC"]),
        active=str(detail.get("TRANGTHAI") or "1") == "1",
        sector_code=sectors[0].get("MALINHVUC"),
        sector_name=sectors[0].get("TENLINHVUC"),
        fees=fees_of(detail),
        days=days_of(detail),
        agencies=tuple(str(a["TENDONVI"]) for a in detail.get("COQUANTHUCHIEN") or [] if a.get("TENDONVI")),
    )


def procedures_from_portal(details: Iterable[Mapping[str, Any]]) -> list[NationalProcedure]:
    return [procedure_from_portal(d) for d in details]
