"""Local procedures matched against the national catalogue: candidates with a score and a reason,
and an automatic acceptance only where a wrong one is out of reach.

The score (0–1) is, for 95 %, the name similarity — the share of the local name's words found in the national
name and of the national name's words found in the local one, each word weighted by how rare it is
in the catalogue (IDF), plus a character-level ratio for what word sets miss — times a penalty for
each family marker on one side only (``cấp lại`` / ``cấp``, ``bán lẻ`` / ``bán buôn``…) and for
conflicting levels; the other 5 % is evidence from the sector, the fees and the processing days.

A candidate is accepted automatically only when all of these hold: its score reaches the
threshold; it leads the runner-up by the margin; no marker is on one side only; the levels do not
conflict; every word of the local name is in the national one; the national name adds no qualifying
word (``Cấp bản sao từ sổ gốc`` is not ``Cấp bản sao văn bằng, chứng chỉ từ sổ gốc``: the shorter
local name may be another procedure the catalogue lists, or the province's own); the local field
(sector) and agency, when known, do not conflict with the national ones. Everything else goes to
a person.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from .normalize import Name, fold, normalize

THRESHOLD = 0.8
MARGIN = 0.05
MARKER_PENALTY = 0.8  # per marker present on one side only
LEVEL_PENALTY = 0.5  # the two names say different levels (cấp tỉnh / cấp xã)
# Evidence beyond the name: at most this share of the score, split between sector, fee and days,
# so that a perfect name with no evidence scores 0.95 and evidence never hides a name difference.
EVIDENCE = 0.05
SECTOR_BONUS, FEES_BONUS, DAYS_BONUS = 0.6, 0.2, 0.2
FIELD_PENALTY = 0.9  # the local field (sector) or agency says another one: ranked below, never automatic
# Words a national name may add to a local one without naming another procedure: function words and
# the generic verbs and nouns of procedure names ("đăng ký", "cấp", "giấy", "việc"). Any other word
# the national name adds qualifies it ("văn bằng, chứng chỉ", "ô tô", "hạng II") and stops an
# automatic acceptance.
FILLER = frozenset(
    {
        "dang", "ki", "cap", "giay", "viec", "ve", "den", "thuoc", "trong", "do", "tai", "theo",
        "cua", "cho", "o", "va", "cac", "nhung", "ma", "hoac", "voi", "doi", "la", "thi", "moi",
        "tu", "thuc", "hien", "thu", "tuc", "mot", "tren", "khi", "de", "co", "len", "tro",
    }
)  # fmt: skip


@dataclass(frozen=True)
class NationalProcedure:
    code: str
    name: str
    active: bool = True
    sector_code: str | None = None
    sector_name: str | None = None
    fees: tuple[int, ...] = ()
    days: float | None = None
    agencies: tuple[str, ...] = ()  # the agencies that carry it out (``COQUANTHUCHIEN``)


@dataclass(frozen=True)
class LocalProcedure:
    code: str
    name: str
    national_code: str | None = None
    unverified: bool = False
    sector_code: str | None = None
    sector_name: str | None = None
    fees: tuple[int, ...] = ()
    days: float | None = None
    agency: str | None = None  # the agency that carries it out locally, when the province says


@dataclass
class Candidate:
    code: str
    name: str
    score: float
    reason: str
    blockers: list[str] = field(default_factory=list)  # why it may not be accepted automatically
    name_words: frozenset[str] = frozenset()
    local_words: frozenset[str] = frozenset()

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "name": self.name, "score": round(self.score, 3)}


@dataclass
class Match:
    local: LocalProcedure
    candidates: list[Candidate]
    accepted: str | None
    why_not: str | None  # why the best candidate was not accepted automatically

    def as_dict(self) -> dict[str, object]:
        return {
            "local_code": self.local.code,
            "local_name": self.local.name,
            "candidates": [c.as_dict() for c in self.candidates],
            "accepted": self.accepted,
        }


@dataclass
class _Indexed:
    proc: NationalProcedure
    name: Name
    words: frozenset[str]


class Matcher:
    """The active procedures of a national catalogue, indexed once, matched many times."""

    def __init__(
        self,
        national: Iterable[NationalProcedure],
        *,
        threshold: float = THRESHOLD,
        margin: float = MARGIN,
        top: int = 5,
    ) -> None:
        self.threshold, self.margin, self.top = threshold, margin, top
        self._items = []
        for proc in national:
            if proc.active:  # a withdrawn procedure is never a candidate
                name = normalize(proc.name)
                self._items.append(_Indexed(proc, name, frozenset(name.tokens)))
        df: Counter[str] = Counter()
        for item in self._items:
            df.update(item.words)
        total = len(self._items) or 1
        self._idf = {word: math.log((total + 1) / (count + 1)) + 1 for word, count in df.items()}
        self._unknown = math.log(total + 1) + 1  # a word the catalogue never uses: rarer than any
        self._postings: dict[str, list[int]] = {}
        for index, item in enumerate(self._items):
            for word in item.words:
                self._postings.setdefault(word, []).append(index)
        self._common_cut = max(3, total // 4)  # words in over a quarter of names do not select candidates

    # ------------------------------------------------------------------ words

    def _correct(self, word: str) -> str:
        """A word the catalogue never uses, one edit from exactly one it does (a typo), becomes it."""
        if word in self._idf or len(word) < 3 or word.isdigit():
            return word
        close = [
            known
            for known in self._idf
            if abs(len(known) - len(word)) <= 1 and Levenshtein.distance(word, known, score_cutoff=1) <= 1
        ]
        if not close:
            return word
        close.sort(key=lambda known: (-_common_prefix(word, known), -len(self._postings[known])))
        return close[0]

    def _weight(self, word: str) -> float:
        return self._idf.get(word, self._unknown)

    # ------------------------------------------------------------------ matching

    def match(self, local: LocalProcedure) -> Match:
        raw = normalize(local.name)
        tokens = tuple(self._correct(w) for w in raw.tokens)
        query = Name(raw.text, raw.folded, tokens, raw.markers, raw.levels)
        words = frozenset(tokens)
        pool: set[int] = set()
        for word in words:
            posting = self._postings.get(word, ())
            if len(posting) <= self._common_cut:
                pool.update(posting)
        if not pool:
            for word in words:
                pool.update(self._postings.get(word, ()))
        scored = sorted(
            (self._score(local, query, words, self._items[i]) for i in pool),
            key=lambda c: (-c.score, c.code),
        )[: self.top]
        accepted, why_not = self._decide(scored)
        return Match(local, scored, accepted, why_not)

    def _score(self, local: LocalProcedure, query: Name, words: frozenset[str], item: _Indexed) -> Candidate:
        common = words & item.words
        mine = sum(self._weight(w) for w in words) or 1.0
        theirs = sum(self._weight(w) for w in item.words) or 1.0
        shared = sum(self._weight(w) for w in common)
        cover_local, cover_national = shared / mine, shared / theirs
        chars = fuzz.token_sort_ratio(" ".join(query.tokens), " ".join(item.name.tokens)) / 100
        name_score = 0.8 * (0.7 * cover_local + 0.3 * cover_national) + 0.2 * chars
        blockers: list[str] = []
        notes = [f"name {name_score:.2f}"]
        missing = sorted(words - item.words)
        if missing:
            blockers.append(f"words of the local name not in the national one: {' '.join(missing)}")
        penalty = _name_penalty(query, item.name, blockers)
        qualifying = [w for w in dict.fromkeys(item.name.tokens) if w not in words and w not in FILLER]
        if qualifying and not missing:
            blockers.append(f"the national name adds qualifying words: {' '.join(qualifying)}")
        bonus, penalty = _evidence(local, item.proc, penalty, notes, blockers)
        score = ((1 - EVIDENCE) * name_score + EVIDENCE * bonus) * penalty
        reason = "; ".join(notes + blockers)
        return Candidate(item.proc.code, item.proc.name, score, reason, blockers, item.words, words)

    def _decide(self, ranked: Sequence[Candidate]) -> tuple[str | None, str | None]:
        if not ranked:
            return None, "no candidate shares a word with the local name"
        best = ranked[0]
        if best.score < self.threshold:
            return None, f"best score {best.score:.2f} is under the threshold {self.threshold:.2f}"
        if len(ranked) > 1 and best.score - ranked[1].score < self.margin:
            return None, f"runner-up {ranked[1].code} within {self.margin:.2f} of the best"
        if best.blockers:
            return None, "; ".join(best.blockers)
        exact = set(best.name_words) == set(best.local_words)
        rival = next((c for c in ranked[1:] if not c.blockers), None)
        if rival is not None and not exact:
            return None, f"the local name fits {rival.code} as well: a qualifier decides"
        return best.code, None


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _name_penalty(query: Name, national: Name, blockers: list[str]) -> float:
    """What the names say against each other: family markers on one side only, another level,
    another subject. Each multiplies the penalty and is listed in ``blockers``."""
    penalty = 1.0
    for marker in sorted(query.markers - national.markers):
        penalty *= MARKER_PENALTY
        blockers.append(f"'{marker}' only in the local name")
    for marker in sorted(national.markers - query.markers):
        if marker not in national.listed:  # one of an enumeration: the local name may name another
            penalty *= MARKER_PENALTY
        blockers.append(f"'{marker}' only in the national name")
    if query.levels and national.levels and query.levels.isdisjoint(national.levels):
        penalty *= LEVEL_PENALTY
        blockers.append(
            f"level: local cấp {'/'.join(sorted(query.levels))}, national cấp "
            f"{'/'.join(sorted(national.levels))}"
        )
    if query.subjects and national.subjects and query.subjects.isdisjoint(national.subjects):
        penalty *= LEVEL_PENALTY
        mine_for, theirs_for = ", ".join(sorted(query.subjects)), ", ".join(sorted(national.subjects))
        blockers.append(f"for: local {mine_for}, national {theirs_for}")
    return penalty


def _evidence(
    local: LocalProcedure, proc: NationalProcedure, penalty: float, notes: list[str], blockers: list[str]
) -> tuple[float, float]:
    """What the rest of the records say: sector, agency, fees, days. The bonus, and ``penalty``
    multiplied further by a field or agency that differs."""
    bonus = 0.0
    if local.sector_code or local.sector_name:
        sector = _sector(local, proc)
        if sector is True:
            bonus += SECTOR_BONUS
            notes.append("same sector")
        elif sector is False:
            penalty *= FIELD_PENALTY
            blockers.append(
                f"field: local {_said(local.sector_name, local.sector_code)}, national "
                f"{_said(proc.sector_name, proc.sector_code)}"
            )
        else:
            notes.append("other sector")
    if local.agency and proc.agencies:
        if _same_agency(local.agency, proc.agencies):
            notes.append("same agency")
        else:
            penalty *= FIELD_PENALTY
            blockers.append(f"agency: local {local.agency}, national {' / '.join(proc.agencies)}")
    return _records_bonus(local, proc, bonus, notes), penalty


def _records_bonus(local: LocalProcedure, proc: NationalProcedure, bonus: float, notes: list[str]) -> float:
    """The same fee, the same processing days: each adds to ``bonus``."""
    if local.fees and proc.fees:
        if set(local.fees) & set(proc.fees):
            bonus += FEES_BONUS
            notes.append("same fee")
        else:
            notes.append(f"fees differ ({_amounts(local.fees)} / {_amounts(proc.fees)})")
    if local.days is not None and proc.days is not None:
        if local.days == proc.days:
            bonus += DAYS_BONUS
            notes.append("same processing days")
        else:
            notes.append(f"days differ ({local.days:g} / {proc.days:g})")
    return bonus


def _sector(local: LocalProcedure, proc: NationalProcedure) -> bool | None:
    """Same field (True), a conflicting one (False: both names, or failing names both codes, differ),
    or unknown (None)."""
    if local.sector_code and proc.sector_code and local.sector_code == proc.sector_code:
        return True
    if local.sector_name and proc.sector_name:
        return fuzz.token_sort_ratio(fold(local.sector_name), fold(proc.sector_name)) >= 90
    if local.sector_code and proc.sector_code:
        return False
    return None


def _same_agency(local: str, national: Sequence[str]) -> bool:
    """The local agency is one of the national ones: the same name, or the same level of People's
    Committee ("UBND xã Tân An" carries out what "Ủy ban nhân dân cấp xã" does)."""
    mine = normalize(local)
    for agency in national:
        theirs = normalize(agency)
        if (
            mine.levels
            and theirs.levels
            and "uy ban nhan dan" in mine.folded
            and "uy ban nhan dan" in theirs.folded
        ):
            if mine.levels & theirs.levels:
                return True
            continue
        if fuzz.token_sort_ratio(mine.folded, theirs.folded) >= 90:
            return True
    return False


def _said(name: str | None, code: str | None) -> str:
    return name or code or "?"


def _amounts(fees: tuple[int, ...]) -> str:
    return ", ".join(f"{fee:,}".replace(",", ".") for fee in sorted(set(fees)))
