"""The citizen check (``[citizen_check]``, off by default): before a dossier is pushed, the
population database (``TraCuuThongTinCongDan``, SOAP only, soap-facade.md §2) confirms that its
citizen owner's ID number exists and carries the dossier's name and, when the source has one, birth
date. A mismatch quarantines the dossier with the field named and the value masked; the population
service being down never stops the push: the dossier goes unchecked and is counted.

What is checked: dossiers of the push kind (not the statuses of portal-submitted dossiers, whose
owner the portal already identified) owned by a citizen (``LoaiDoiTuong`` "1"), and only when their
payload is new or changed against the state: an unchanged dossier was checked when it last changed.
The sample one-stop schema carries no birth date (only the owner's ID number and name), so by
default the ID and name are compared; ``birth_date_column`` names a source column when a
province has one.

One lookup asks by ID only and the name and birth date are compared here (NFC, case and runs of
spaces folded, as the population database compares): a single request then says *which* field
differs. The citizen record that comes back is reduced to a verdict at once; it is never stored,
logged or cached.

Why a worker thread with its own event loop: the enqueue is synchronous and runs either inside
the cycle's running event loop (the first page) or in the forked producer process
(``_producer.py``), which has no loop and must not touch the parent's connections. Each page's
lookups therefore run by ``asyncio.run`` in a short-lived thread, over a ``PortalClient`` of their
own (its own connections, session, and rate budget). That client keeps to the portal's budget: in
the cycle's own process the enqueue and the delivery never overlap, so the checks use the portal's
rate and concurrency as delivery would; in the forked producer they run beside delivery, so they
take half the rate there. Counts go through shared memory (``RawArray``), so the producer's checks
are counted in the cycle's summary too.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import multiprocessing
import os
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import Engine

from dvcsync import metrics
from dvcsync.config import PortalSettings, Settings
from dvcsync.contract import PortalReply
from dvcsync.errors import TransientError
from dvcsync.mapping.errors import FieldError, mask
from dvcsync.portal import PortalClient, PortalError, RateBudget, make_http_client
from dvcsync.state import MappedRecord, OutboxKind, payload_hash
from dvcsync.state.reads import payload_hashes
from dvcsync.sync.job_config import CitizenCheckConfig

log = logging.getLogger(__name__)

SERVICE = "TraCuuThongTinCongDan"
CITIZEN = "1"  # LoaiDoiTuong of a citizen (owner_types: cong_dan)
ID_FIELD, NAME_FIELD, BIRTH_FIELD = "SoGiayToChuHoSo", "ChuHoSo", "NgaySinhChuHoSo"
DOWN_PAUSE_S = 60.0  # after the service was found down, checks are skipped this long (no waiting per dossier)
LOOKUP_ATTEMPTS = 2  # one retry of a blip; a longer outage only delays the push
CACHE_MAX = 200_000  # verdicts kept at most (about 40 MB); the oldest go first past it
_ID = re.compile(r"\d{12}")
_COUNTS = ("checked", "lookups", "cached", "mismatched", "skipped", "uncheckable")


@dataclass
class CitizenCheckCounts:
    """What the check did in a cycle (``PushSummary.citizen``)."""

    checked: int = 0  # owners confirmed or refuted (by a lookup or from the cache)
    lookups: int = 0  # requests sent to the population service
    cached: int = 0  # verdicts reused within the time-to-live
    mismatched: int = 0  # dossiers quarantined for a mismatch
    skipped: int = 0  # the service was down (unreachable, 5xx, timeout): pushed unchecked
    uncheckable: int = 0  # no 12-digit citizen ID (an old 9-digit ID, a passport): pushed unchecked

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Owner:
    """A dossier's owner as the source states it (personal data: never logged)."""

    record_key: str
    id_number: str
    name: str
    birth_date: str = ""  # yyyyMMdd, "" when the source has none


@dataclass(frozen=True)
class Verdict:
    """``field`` None: the population database agrees; else the first field that differs."""

    field: str | None
    reason: str = ""


MATCH = Verdict(None)


class VerdictCache:
    """Verdicts by a keyed hash of (ID, name, birth date), with a time-to-live.

    In-process is enough: a verdict saves one lookup, so losing the cache on a restart costs one
    lookup per changed dossier, the price of the first check anyway; and not persisting it keeps
    personal data (even hashed: a 12-digit ID with a known structure is quickly brute-forced from an
    unkeyed hash) out of the state database and its backups. The hash is keyed with a random
    per-process key for the same reason. A forked enqueue producer fills its own copy, which ends
    with it: those dossiers are asked again only if they change again within the time-to-live.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._key = os.urandom(32)
        self._items: dict[str, tuple[float, Verdict]] = {}
        self._lock = threading.Lock()

    def _digest(self, owner: Owner) -> str:
        text = "\x1f".join((owner.id_number, _norm(owner.name), owner.birth_date))
        return hashlib.blake2b(text.encode("utf-8"), key=self._key, digest_size=20).hexdigest()

    def get(self, owner: Owner) -> Verdict | None:
        digest = self._digest(owner)
        with self._lock:
            item = self._items.get(digest)
            if item is None:
                return None
            if item[0] <= self._clock():
                del self._items[digest]
                return None
            return item[1]

    def put(self, owner: Owner, verdict: Verdict, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        now = self._clock()
        digest = self._digest(owner)
        with self._lock:
            self._items.pop(digest, None)  # re-inserted last: the dict's order is the expiry order
            self._items[digest] = (now + ttl_s, verdict)
            if len(self._items) > CACHE_MAX:
                for key in [k for k, (until, _) in self._items.items() if until <= now]:
                    del self._items[key]
                while len(self._items) > CACHE_MAX:
                    del self._items[next(iter(self._items))]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


CACHE = VerdictCache()
"""The process's verdicts: a push job lives one cycle, the cache across cycles."""


class LookupClient(Protocol):
    async def call(
        self,
        service: str,
        fields: dict[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
        max_attempts: int | None = None,
        typed: bool = True,
    ) -> PortalReply: ...

    async def aclose(self) -> None: ...


ClientFactory = Callable[[PortalSettings, int, float], LookupClient]


def portal_client(settings: PortalSettings, concurrency: int, rate: float) -> LookupClient:
    """The lookups' own client: SOAP for this service whatever ``[portal] transport`` says (the
    population lookup has no JSON face)."""
    return PortalClient(
        settings,
        make_http_client(settings, concurrency=concurrency),
        rate=RateBudget(rate, burst=float(concurrency)),
    )


class _Down(TransientError):
    """The population service did not give a usable answer: the dossier goes unchecked."""


class CitizenCheck:
    """One push job's check. ``check_page`` is synchronous (the enqueue path is); counts are shared
    with a forked producer through shared memory. ``config`` names the two sections it reads
    (``CitizenCheckConfig``); a whole ``Settings`` is still accepted and narrowed at once."""

    def __init__(
        self,
        config: CitizenCheckConfig | Settings,
        *,
        source_columns: dict[str, str] | None = None,
        cache: VerdictCache = CACHE,
        client_factory: ClientFactory = portal_client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(config, Settings):
            config = CitizenCheckConfig.from_settings(config)
        self.section = config.citizen_check
        self.cache = cache
        self._factory = client_factory
        self._clock = clock
        self._columns = source_columns or {}
        portal = config.portal
        self._portal = portal.model_copy(
            update={
                "transport_by_service": {**portal.transport_by_service, SERVICE: "soap"},
                "timeout": self.section.timeout_s,
            }
        )
        self._concurrency = min(self.section.concurrency, portal.concurrency)
        self._rate = portal.rate_limit
        self._pid = os.getpid()
        self._down_until = 0.0
        self._shared = multiprocessing.RawArray("q", len(_COUNTS))

    # ------------------------------------------------------------------ counts

    def counts(self) -> CitizenCheckCounts:
        return CitizenCheckCounts(**{name: int(self._shared[i]) for i, name in enumerate(_COUNTS)})

    def _count(self, name: str, n: int = 1) -> None:
        self._shared[_COUNTS.index(name)] += n

    def observe(self) -> CitizenCheckCounts:
        """The cycle's counts, into the metrics once (the producer's included: it cannot reach
        the parent's registry)."""
        counts = self.counts()
        for outcome, n in (
            ("match", counts.checked - counts.mismatched),
            ("mismatch", counts.mismatched),
            ("skipped", counts.skipped),
            ("uncheckable", counts.uncheckable),
        ):
            if n:
                metrics.CITIZEN_CHECKS.labels(outcome).inc(n)
        return counts

    # ------------------------------------------------------------------ the page

    def check_page(
        self, engine: Engine, records: Sequence[dict[str, Any]], mapped: list[MappedRecord]
    ) -> list[MappedRecord]:
        """``mapped`` with the dossiers whose owner the population database contradicts turned
        into quarantined records; everything else as it was."""
        sources = {m.record_key: r for r, m in zip(records, mapped, strict=True)}
        candidates = [m for m in mapped if _eligible(m)]
        if not candidates:
            return mapped
        known = _known_hashes(engine, [m.record_key for m in candidates])
        changed = [m for m in candidates if known.get(m.record_key) != payload_hash(m.dossier)]
        verdicts: dict[str, Verdict] = {}
        asks: list[Owner] = []
        for record in changed:
            owner, problem = self._owner(record, sources.get(record.record_key) or {})
            if problem is not None:
                verdicts[record.record_key] = problem
            elif owner is None:
                self._count("uncheckable")
            else:
                cached = self.cache.get(owner)
                if cached is not None:
                    self._count("cached")
                    verdicts[record.record_key] = cached
                else:
                    asks.append(owner)
        if asks:
            verdicts.update(self._ask(asks))
        if not verdicts:
            return mapped
        self._count("checked", len(verdicts))
        out = []
        for record in mapped:
            verdict = verdicts.get(record.record_key)
            if verdict is None or verdict.field is None:
                out.append(record)
                continue
            self._count("mismatched")
            log.warning(
                "citizen check: dossier %s quarantined: %s does not match the population database",
                record.record_key,
                verdict.field,
            )
            out.append(self._quarantined(record, verdict, sources.get(record.record_key) or {}))
        return out

    def _owner(self, record: MappedRecord, source: dict[str, Any]) -> tuple[Owner | None, Verdict | None]:
        """The owner to look up; None when the ID is no 12-digit citizen ID (nothing to ask by);
        or a verdict already (a birth date in the source that is no date)."""
        assert record.dossier is not None
        number = str(record.dossier.get(ID_FIELD) or "").strip()
        if not _ID.fullmatch(number):
            return None, None
        born = ""
        column = self.section.birth_date_column
        if column:
            born_value = source.get(column)
            if born_value not in (None, ""):
                parsed = _yyyymmdd(born_value)
                if parsed is None:
                    return None, Verdict(BIRTH_FIELD, "is not a date")
                born = parsed
        return Owner(record.record_key, number, str(record.dossier.get(NAME_FIELD) or ""), born), None

    def _quarantined(self, record: MappedRecord, verdict: Verdict, source: dict[str, Any]) -> MappedRecord:
        assert record.dossier is not None and verdict.field is not None
        if verdict.field == BIRTH_FIELD:
            column, value = self.section.birth_date_column, source.get(self.section.birth_date_column)
        else:
            column, value = self._columns.get(verdict.field, ""), record.dossier.get(verdict.field)
        error = FieldError(
            record=record.record_key,
            field=verdict.field,
            source=column,
            value=repr(mask(value)),
            reason=f"citizen check: {verdict.reason}",
        )
        return replace(record, dossier=None, steps=[], errors=[*record.errors, error.as_dict()])

    # ------------------------------------------------------------------ lookups

    def _ask(self, owners: list[Owner]) -> dict[str, Verdict]:
        """Look the owners up, ``concurrency`` at a time, in a thread with its own event loop (see
        the module's docstring). A dossier whose lookup failed has no verdict: it goes unchecked."""
        if self._clock() < self._down_until:
            self._count("skipped", len(owners))
            return {}
        forked = os.getpid() != self._pid
        rate = self._rate / 2 if forked else self._rate
        with ThreadPoolExecutor(1, thread_name_prefix="dvcsync-citizen-check") as pool:
            # the caller's context goes along: the tenant of its metrics and log lines
            context = contextvars.copy_context()
            results = pool.submit(context.run, asyncio.run, self._lookup_all(owners, rate)).result()
        verdicts: dict[str, Verdict] = {}
        down: list[str] = []
        for owner, result in zip(owners, results, strict=True):
            if isinstance(result, Verdict):
                verdicts[owner.record_key] = result
                self.cache.put(owner, result, self.section.ttl_s)
            else:
                down.append(result)
        if down:
            self._count("skipped", len(down))
            log.warning(
                "citizen check: population service not answering (%s): %d dossiers pushed unchecked",
                down[0],
                len(down),
            )
        return verdicts

    async def _lookup_all(self, owners: list[Owner], rate: float) -> list[Verdict | str]:
        client = self._factory(self._portal, self._concurrency, rate)
        semaphore = asyncio.Semaphore(self._concurrency)

        async def one(owner: Owner) -> Verdict | str:
            async with semaphore:
                if self._clock() < self._down_until:
                    return "skipped while down"
                try:
                    return await asyncio.wait_for(self._lookup(client, owner), self._bound_s())
                except TimeoutError:
                    why = f"no answer within {self._bound_s():.0f} s"
                except _Down as exc:
                    why = str(exc)
                self._down_until = self._clock() + DOWN_PAUSE_S
                return why

        try:
            return list(await asyncio.gather(*(one(o) for o in owners)))
        finally:
            await client.aclose()

    def _bound_s(self) -> float:
        """A lookup's whole time, retries included: past it the dossier goes unchecked."""
        return self.section.timeout_s * LOOKUP_ATTEMPTS + 2.0

    async def _lookup(self, client: LookupClient, owner: Owner) -> Verdict:
        self._count("lookups")
        try:
            reply = await client.call(
                SERVICE,
                {"SoDinhDanh": owner.id_number},
                idempotent=True,  # a lookup changes nothing
                max_attempts=LOOKUP_ATTEMPTS,
                typed=False,
            )
        except PortalError as exc:
            raise _Down(type(exc).__name__) from None  # its detail may quote the request: not logged
        if not reply.ok:  # a refused request is no verdict on the owner (the message may quote the ID)
            raise _Down(f"error_code {reply.error_code}")
        return judge(owner, _people(reply))


def judge(owner: Owner, people: list[dict[str, Any]]) -> Verdict:
    """The verdict on ``owner`` from what the population database holds for its ID."""
    if not people:
        return Verdict(ID_FIELD, "no citizen with this ID in the population database")
    person = people[0]
    if _norm(full_name(person)) != _norm(owner.name):
        return Verdict(NAME_FIELD, "is not the name the population database holds for this ID")
    held = str((person.get("NgayThangNamSinh") or {}).get("NgayThangNam") or "")
    if owner.birth_date and held and held != owner.birth_date:
        return Verdict(BIRTH_FIELD, "is not the birth date the population database holds for this ID")
    return MATCH


def full_name(person: dict[str, Any]) -> str:
    parts = person.get("HoVaTen") or {}
    if isinstance(parts, str):
        return parts
    return " ".join(str(parts.get(k)) for k in ("Ho", "ChuDem", "Ten") if parts.get(k))


def _people(reply: PortalReply) -> list[dict[str, Any]]:
    collection = (reply.model_extra or {}).get("CongdanCollection") or {}
    people = collection.get("CongDan") if isinstance(collection, dict) else None
    if isinstance(people, dict):
        return [people]
    return [p for p in people or [] if isinstance(p, dict)]


def _norm(name: str) -> str:
    """Names compare as NFC, case-insensitive, with runs of spaces folded (as clerks type them)."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def _yyyymmdd(value: Any) -> str | None:
    if isinstance(value, datetime | date):
        return value.strftime("%Y%m%d")
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text).strftime("%Y%m%d")
    except ValueError:
        pass
    try:
        return datetime.strptime(text, "%Y%m%d").strftime("%Y%m%d")
    except ValueError:
        return None


def _eligible(record: MappedRecord) -> bool:
    return (
        record.kind == OutboxKind.DOSSIER
        and not record.skipped
        and not record.errors
        and record.dossier is not None
        and str(record.dossier.get("LoaiDoiTuong", "")) == CITIZEN
    )


def _known_hashes(engine: Engine, keys: list[str]) -> dict[str, str]:
    """The payload hash the state holds per dossier: a dossier whose payload is the same was checked
    when it last changed (or pushed before the check was on) and is not asked again."""
    return payload_hashes(engine, keys)
