"""The national procedure catalogue the mock serves (``fixtures/catalogue.json``).

It contains every national code of the sample one-stop system (a test checks it), so the adapter's
catalogue sync and the dossiers it pushes agree with what the portal knows.
"""

from __future__ import annotations

import json
from functools import cached_property
from importlib import resources
from typing import Any

from adapter.contract import MA_TTHC_RE


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
