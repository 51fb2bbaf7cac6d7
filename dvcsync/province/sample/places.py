"""Where a dossier goes and where its applicant lives, as of the dossier's date.

Before 1 July 2025 a commune-level procedure goes to a pre-merger commune and a district-level one
to a district People's Committee; from that day both go to the merged communes (districts are gone).
Department work follows the department mergers of 1 March 2025 through the successor chain.
Communes are weighted by a rough population (wards > townships > rural communes).
"""

from __future__ import annotations

from bisect import bisect
from dataclasses import dataclass
from datetime import date
from itertools import accumulate
from random import Random

from .catalogue import Agency

PROVINCE_NAME = "tỉnh Sơn Hà"
REFORM_DAY = date(2025, 7, 1)


def _weight(agency: Agency) -> float:
    short = agency.ten_don_vi.removeprefix("Ủy ban nhân dân ")
    if short.startswith("phường"):
        return 1.6
    if short.startswith("thị trấn"):
        return 1.3
    return 1.0


def place_of(agency: Agency) -> str:
    """``phường Bắc Sơn, thành phố Hà Sơn, tỉnh Sơn Hà``: the address tail of a commune."""
    return f"{agency.ten_don_vi.removeprefix('Ủy ban nhân dân ')}, {PROVINCE_NAME}"


@dataclass(frozen=True, slots=True)
class _Weighted:
    items: tuple[Agency, ...]
    cumulative: tuple[float, ...]

    def pick(self, rng: Random) -> Agency:
        return self.items[bisect(self.cumulative, rng.random() * self.cumulative[-1])]


def _weighted(items: list[Agency], weights: list[float]) -> _Weighted:
    return _Weighted(tuple(items), tuple(accumulate(weights)))


class Geography:
    """Agencies by role and date, and applicants' home places."""

    def __init__(self, agencies: tuple[Agency, ...]) -> None:
        self.by_key = {a.ma_don_vi: a for a in agencies}
        self.old_communes = [a for a in agencies if a.cap == "xa" and a.valid_to is not None]
        self.new_communes = [a for a in agencies if a.cap == "xa" and a.valid_to is None]
        self.districts = [a for a in agencies if a.cap == "huyen"]
        old_weights = [_weight(a) for a in self.old_communes]
        self._old = _weighted(self.old_communes, old_weights)
        self._new = _weighted(
            self.new_communes,
            [
                sum(
                    w
                    for a, w in zip(self.old_communes, old_weights, strict=True)
                    if a.successor == n.ma_don_vi
                )
                or 1.0
                for n in self.new_communes
            ],
        )
        self._district = _weighted(
            self.districts,
            [
                sum(w for a, w in zip(self.old_communes, old_weights, strict=True) if a.parent == d.ma_don_vi)
                or 1.0
                for d in self.districts
            ],
        )
        self._children: dict[str, _Weighted] = {}
        self._predecessors: dict[str, tuple[Agency, ...]] = {}
        for district in self.districts:
            kids = [a for a in self.old_communes if a.parent == district.ma_don_vi]
            self._children[district.ma_don_vi] = _weighted(kids, [_weight(a) for a in kids])
        for new in self.new_communes:
            self._predecessors[new.ma_don_vi] = tuple(
                a for a in self.old_communes if a.successor == new.ma_don_vi
            )
        self._resolved: dict[tuple[str, date], Agency] = {}

    def resolve(self, key: str, day: date) -> Agency:
        """The agency that does ``key``'s work on ``day`` (following mergers)."""
        memo = self._resolved.get((key, day))
        if memo is not None:
            return memo
        agency = self.by_key[key]
        while agency.valid_to is not None and day > agency.valid_to and agency.successor is not None:
            agency = self.by_key[agency.successor]
        self._resolved[(key, day)] = agency
        return agency

    def handler(self, rng: Random, level: str, department: str | None, day: date) -> Agency:
        """The agency a dossier of a ``level`` procedure is filed with on ``day``."""
        if level == "so":
            assert department is not None
            return self.resolve(department, day)
        if day >= REFORM_DAY:
            return self._new.pick(rng)
        if level == "huyen":
            return self._district.pick(rng)
        return self._old.pick(rng)

    def predecessor(self, rng: Random, new_commune: Agency) -> Agency:
        """One of the pre-merger communes that ``new_commune`` replaced."""
        return rng.choice(self._predecessors[new_commune.ma_don_vi])

    def home(self, rng: Random, handler: Agency, day: date) -> Agency:
        """The commune an applicant of ``handler`` lives in (as written in their address)."""
        if handler.cap == "huyen":
            return self._children[handler.ma_don_vi].pick(rng)
        if handler.cap == "xa":
            if handler.valid_to is None and rng.random() < 0.2:
                return rng.choice(self._predecessors[handler.ma_don_vi])  # still the old address
            return handler
        return self._new.pick(rng) if day >= REFORM_DAY else self._old.pick(rng)
