"""The national procedure catalogue the mock serves (``fixtures/catalogue.json``).

It contains every national code of the sample one-stop system (a test checks it), so the adapter's
catalogue sync and the dossiers it pushes agree with what the portal knows.
"""

from __future__ import annotations

import json
from functools import cached_property
from importlib import resources
from typing import Any

from dvcsync.contract import MA_TTHC_RE


class Catalogue:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    @classmethod
    def load(cls) -> Catalogue:
        text = resources.files("mock_portal").joinpath("fixtures/catalogue.json").read_text(encoding="utf-8")
        return cls(json.loads(text))

    @cached_property
    def _by_code(self) -> dict[str, dict[str, Any]]:
        return {item["MATTHC"]: item for item in self.doc["procedures"]}

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(self._by_code)

    def procedure(self, code: str) -> dict[str, Any] | None:
        """By national code; a localised code (``1.001193.000.00.00.H40``) finds its base procedure."""
        code = code.strip()
        if code in self._by_code:
            return self._by_code[code]
        if MA_TTHC_RE.fullmatch(code):
            return self._by_code.get(code[:8])
        return None

    def summaries(self) -> list[dict[str, str]]:
        return [{"MATTHC": p["MATTHC"], "TENTTHC": p["TENTTHC"]} for p in self.doc["procedures"]]

    def agencies(self) -> list[dict[str, Any]]:
        return list(self.doc["agencies"])

    def sectors(self) -> list[dict[str, Any]]:
        return list(self.doc["sectors"])

    # ------------------------------------------------------------ changed at run time (admin)
    # What a test needs to make the national catalogue move under the adapter: a procedure added,
    # renamed, withdrawn (TRANGTHAI 0) or removed from the list, its fees or time changed; an
    # agency added, renamed or abolished.

    def _changed(self) -> None:
        self.__dict__.pop("_by_code", None)

    def add_procedure(self, item: dict[str, Any]) -> dict[str, Any]:
        code = str(item.get("MATTHC") or "")
        if not MA_TTHC_RE.fullmatch(code) or len(code) != 8:
            raise ValueError(f"MATTHC {code!r}: a national code like 1.001193")
        if code in self._by_code:
            raise ValueError(f"procedure {code} exists already")
        if not str(item.get("TENTTHC") or "").strip():
            raise ValueError("TENTTHC is required")
        record = {
            "MATTHC": code,
            "TENTTHC": item["TENTTHC"],
            "MACOQUANCONGBO": item.get("MACOQUANCONGBO", ""),
            "TRANGTHAI": str(item.get("TRANGTHAI", "1")),
            "LINHVUCTHUCHIEN": item.get("LINHVUCTHUCHIEN", []),
            "CACHTHUCTHUCHIEN": item.get("CACHTHUCTHUCHIEN", []),
            "THANHPHANHOSO": item.get("THANHPHANHOSO", []),
            "KETQUATHUCHIEN": item.get("KETQUATHUCHIEN", []),
            "COQUANTHUCHIEN": item.get("COQUANTHUCHIEN", []),
        }
        self.doc["procedures"].append(record)
        self._changed()
        return record

    def change_procedure(self, code: str, changes: dict[str, Any]) -> dict[str, Any]:
        """``TENTTHC``, ``TRANGTHAI`` as given; ``fees``: amounts for the record's fee codes in order
        of appearance (one amount: every fee); ``days``: every processing time."""
        record = self._by_code.get(code)
        if record is None:
            raise KeyError(code)
        unknown = set(changes) - {"TENTTHC", "TRANGTHAI", "fees", "days"}
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)}: TENTTHC, TRANGTHAI, fees, days")
        for key in ("TENTTHC", "TRANGTHAI"):
            if key in changes:
                record[key] = str(changes[key])
        fee_codes: list[str] = []
        for way in record.get("CACHTHUCTHUCHIEN", []):
            for time in way.get("THOIGIAN", []):
                if "days" in changes:
                    time["THOIGIANGIAIQUYET"] = str(changes["days"])
                for fee in time.get("PHILEPHI", []):
                    if "fees" in changes:
                        if fee.get("MAPHILEPHI") not in fee_codes:
                            fee_codes.append(fee.get("MAPHILEPHI"))
                        amounts = list(changes["fees"])
                        index = fee_codes.index(fee.get("MAPHILEPHI"))
                        fee["SOTIEN"] = str(amounts[min(index, len(amounts) - 1)])
        return record

    def remove_procedure(self, code: str) -> None:
        """Gone from the list and from LayThuTuc (a withdrawal the portal does not announce)."""
        if code not in self._by_code:
            raise KeyError(code)
        self.doc["procedures"] = [p for p in self.doc["procedures"] if p["MATTHC"] != code]
        self._changed()

    def change_agency(self, code: str, changes: dict[str, Any], *, create: bool = False) -> dict[str, Any]:
        unknown = set(changes) - {"MADONVI", "TENDONVI", "CAPDONVI", "TRANGTHAI", "NGAYHETHIEULUC"}
        if unknown:
            raise ValueError(
                f"cannot change {sorted(unknown)}: TENDONVI, CAPDONVI, TRANGTHAI, NGAYHETHIEULUC"
            )
        agency = next((a for a in self.doc["agencies"] if a["MADONVI"] == code), None)
        if agency is None:
            if not create:
                raise KeyError(code)
            agency = {"MADONVI": code, "TENDONVI": "", "CAPDONVI": "", "TRANGTHAI": "1", "NGAYHETHIEULUC": ""}
            self.doc["agencies"].append(agency)
        elif create:
            raise ValueError(f"agency {code} exists already")
        for key, value in changes.items():
            if key != "MADONVI":
                agency[key] = str(value)
        return agency
