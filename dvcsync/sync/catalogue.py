"""The catalogue job: read the national catalogue (``LayDanhSachTTHC``, then ``LayThuTuc`` for
each procedure's details and fees, ``LayDanhMucCoQuan``, ``LayDanhMucLinhVuc``) into the state,
say what changed since the last pull, and report the local codes it makes wrong: procedures mapped
to a withdrawn (or unknown) national code or charging other fees, agencies abolished nationally.

``run_catalogue_pull(settings, mappings)`` is one recorded cycle (run ``catalogue``), for
``dvcsync catalogue pull`` and the scheduler alike.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine

from dvcsync.catalogue.local import mapped_code, read_local
from dvcsync.catalogue.national import days_of, fees_of
from dvcsync.config import Settings
from dvcsync.contract import VN_TZ, CoQuan, LinhVuc, ThuTuc, ThuTucTomTat
from dvcsync.errors import DvcsyncError
from dvcsync.mapping import CodeLookupError, MappingSet
from dvcsync.portal import PortalClient, PortalError
from dvcsync.province.schema import load_schema
from dvcsync.state import EnqueueCounts, StateStore
from dvcsync.state.catalogue import (
    AgencyRecord,
    ProcedureRecord,
    SectorRecord,
    Snapshot,
    agencies,
    procedures,
    save_pull,
)

from .cycles import _recorded
from .runtime import Runtime

log = logging.getLogger(__name__)


class CatalogueError(DvcsyncError, RuntimeError):
    """The portal refused a catalogue service: the pull is not saved (a partial list would read
    as withdrawals)."""


@dataclass
class CatalogueSummary:
    pull_id: int = 0
    catalogue_date: str = ""
    procedures: int = 0
    active: int = 0
    agencies: int = 0
    sectors: int = 0
    changes: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: int = 0
    elapsed_s: float = 0.0

    @property
    def problems(self) -> int:
        """Local codes a person must look at: withdrawn, unknown, other fees, and agencies
        abolished with no successor active nationally (one with such a successor is handled)."""
        agencies = self.reports.get("agencies_abolished", [])
        unhandled = [a for a in agencies if not (a["successor"] and a["successor"]["active"])]
        return sum(len(v) for k, v in self.reports.items() if k != "agencies_abolished") + len(unhandled)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pull_id": self.pull_id,
            "catalogue_date": self.catalogue_date,
            "procedures": self.procedures,
            "active": self.active,
            "agencies": self.agencies,
            "sectors": self.sectors,
            "changes": self.changes,
            "reports": self.reports,
            "calls": self.calls,
            "elapsed_s": round(self.elapsed_s, 3),
        }


async def fetch_snapshot(client: PortalClient, concurrency: int = 8) -> tuple[Snapshot, int]:
    """The whole catalogue, details of every listed procedure included; (snapshot, calls made)."""
    listing = await _result(client, "LayDanhSachTTHC", {})
    summaries = [ThuTucTomTat.model_validate(item) for item in listing]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def detail(summary: ThuTucTomTat) -> ProcedureRecord:
        async with gate:
            items = await _result(client, "LayThuTuc", {"maTTHC": summary.MATTHC})
        if not items:  # listed but without details: kept by name, known to be listed
            return ProcedureRecord(summary.MATTHC, summary.TENTTHC, True, None, None, None, (), None, {})
        raw = items[0] if isinstance(items[0], dict) else dict(items[0])
        item = ThuTuc.model_validate(raw)
        sector = item.LINHVUCTHUCHIEN[0] if item.LINHVUCTHUCHIEN else None
        return ProcedureRecord(
            code=summary.MATTHC,
            name=item.TENTTHC or summary.TENTTHC,
            active=(item.TRANGTHAI or "1") == "1",
            status=item.TRANGTHAI,
            sector_code=sector.MALINHVUC if sector else None,
            sector_name=sector.TENLINHVUC if sector else None,
            fees=fees_of(raw),
            days=days_of(raw),
            detail=raw,
        )

    details = await asyncio.gather(*(detail(s) for s in summaries))
    agency_items = await _result(client, "LayDanhMucCoQuan", {})
    sector_items = await _result(client, "LayDanhMucLinhVuc", {})
    agency_records = []
    for raw in agency_items:
        agency = CoQuan.model_validate(raw)
        extra = agency.model_extra or {}
        status = str(extra.get("TRANGTHAI") or "1")
        agency_records.append(
            AgencyRecord(
                agency.MADONVI,
                agency.TENDONVI,
                agency.CAPDONVI,
                status == "1",
                extra.get("NGAYHETHIEULUC") or None,
            )
        )
    sector_records = [
        SectorRecord(s.MALINHVUC, s.TENLINHVUC, s.MANGANH)
        for s in (LinhVuc.model_validate(r) for r in sector_items)
    ]
    calls = len(summaries) + 3
    return Snapshot(list(details), agency_records, sector_records), calls


async def _result(client: PortalClient, service: str, fields: dict[str, Any]) -> list[Any]:
    reply = await client.call(service, fields, typed=False)
    if not reply.ok:
        raise CatalogueError(f"{service}: the portal answered {reply.error_code}: {reply.message}")
    return list(reply.result or [])


async def pull(rt: Runtime, *, concurrency: int | None = None, now: float | None = None) -> CatalogueSummary:
    """Fetch, save with the changes, then report the local codes the catalogue makes wrong."""
    started = time.perf_counter()
    snapshot, calls = await fetch_snapshot(rt.client, concurrency or rt.settings.portal.concurrency)
    pull_id, changes = save_pull(rt.store, snapshot, now)
    summary = CatalogueSummary(
        pull_id=pull_id,
        catalogue_date=datetime.fromtimestamp(now or time.time(), VN_TZ).date().isoformat(),
        procedures=len(snapshot.procedures),
        active=sum(p.active for p in snapshot.procedures),
        agencies=len(snapshot.agencies),
        sectors=len(snapshot.sectors),
        changes=changes.as_dict(),
        reports=local_reports(rt.store, rt.mappings, rt.source),
        calls=calls,
    )
    summary.elapsed_s = time.perf_counter() - started
    return summary


def local_reports(
    store: StateStore, mappings: MappingSet, source: Engine | None, today: date | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The local codes the pulled catalogue makes wrong (empty lists when all is well)."""
    national = {p.code: p for p in procedures(store)}
    withdrawn: list[dict[str, Any]] = []
    unknown: list[dict[str, Any]] = []
    fees: list[dict[str, Any]] = []
    if national and source is not None:
        for local in read_local(source, load_schema(mappings.folder)):
            code = mapped_code(mappings, local.code).code
            if code is None:
                continue
            proc = national.get(code[:8])
            row = {"local_code": local.code, "local_name": local.name, "national_code": code}
            if proc is None:
                unknown.append(row)
            elif not proc.active:
                withdrawn.append({**row, "national_name": proc.name, "status": proc.status})
            elif local.fees and proc.fees and not _fees_agree(local.fees, proc.fees):
                fees.append({**row, "local_fees": list(local.fees), "national_fees": list(proc.fees)})
    return {
        "withdrawn": withdrawn,
        "unknown_code": unknown,
        "fees_differ": fees,
        "agencies_abolished": agency_reports(store, mappings, today),
    }


def _fees_agree(local: tuple[int, ...], national: tuple[int, ...]) -> bool:
    """The fee charged is one of the national record's, or a whole number of one of them (a fee
    per page or per copy: a dossier of five copies pays five times the national amount)."""
    return any(
        amount == fee or (fee > 0 and amount % fee == 0 and amount // fee <= 100)
        for amount in local
        for fee in national
    )


def agency_reports(
    store: StateStore, mappings: MappingSet, today: date | None = None, table: str = "agencies"
) -> list[dict[str, Any]]:
    """Local agency keys whose national agency was abolished, with the successor the local dated
    table gives (``successor`` None: the local table has none, add one) and whether that one is
    still active nationally."""
    national = {a.code: a for a in agencies(store)}
    codes = mappings.codes.get(table)
    if not national or codes is None or not codes.dated:
        return []
    today = today or datetime.now(VN_TZ).date()
    out = []
    for key in codes:
        entry = codes.dated_entry(key)
        value = entry.value if entry is not None else None
        ma = value.get("ma") if isinstance(value, dict) else value
        agency = national.get(str(ma)) if ma else None
        if agency is None or agency.active:
            continue
        successor: dict[str, Any] | None = None
        try:
            now_value = codes.lookup(key, today)
            now_ma = now_value.get("ma") if isinstance(now_value, dict) else now_value
            if now_ma != ma:
                after = national.get(str(now_ma))
                successor = {
                    "local_key": _last_successor(codes, key),
                    "national_code": now_ma,
                    "name": now_value.get("ten") if isinstance(now_value, dict) else None,
                    "active": bool(after and after.active),
                }
        except CodeLookupError:
            successor = None
        out.append(
            {
                "local_key": key,
                "national_code": ma,
                "national_name": agency.name,
                "abolished_on": agency.valid_to,
                "local_valid_to": entry.valid_to.isoformat() if entry and entry.valid_to else None,
                "successor": successor,
            }
        )
    return out


def _last_successor(codes: Any, key: str) -> str:
    seen = {key}
    entry = codes.dated_entry(key)
    while entry is not None and entry.successor and entry.successor not in seen:
        key = entry.successor
        seen.add(key)
        entry = codes.dated_entry(key)
    return key


async def run_catalogue_pull(settings: Settings, mappings: MappingSet) -> CatalogueSummary:
    """One catalogue pull, recorded as run ``catalogue`` (status ``ok``, or ``problems`` when local
    codes need a person): what the scheduler's ``[schedule] catalogue`` job calls."""

    async def cycle(rt: Runtime) -> CatalogueSummary:
        try:
            return await pull(rt)
        except PortalError:
            raise
        except CatalogueError as exc:
            log.warning("catalogue pull failed: %s", exc)
            raise

    return await _recorded(
        "catalogue", settings, mappings, cycle, lambda s: "ok" if s.problems == 0 else "problems"
    )


# ---------------------------------------------------------------- after a review is applied


def quarantined_for_procedure(store: StateStore, mappings: MappingSet, mapping: str = "dossier") -> list[str]:
    """Keys of the records quarantined only because of their procedure code (every error on a
    field the procedures table fills): a decision may release them, but the push cursor will not
    read them again while their source row stays the same."""
    from dvcsync.catalogue.local import procedure_table

    table = procedure_table(mappings, mapping)[0]
    fields = {name for name, spec in mappings.specs[mapping].fields.items() if spec.code == table}
    keys = []
    for row in store.quarantined(limit=10_000_000):
        if row["mapping"] != mapping:
            continue
        errors = json.loads(row["errors"])
        if errors and all(error.get("field") in fields for error in errors):
            keys.append(str(row["record_key"]))
    return keys


@dataclass
class RequeueCounts:
    candidates: int = 0  # quarantined for the procedure code only
    released: int = 0  # map now: enqueued for the next push cycle
    skipped: int = 0  # no national equivalent: not sent
    still_quarantined: int = 0
    missing: int = 0  # no longer in the source


def requeue(rt: Runtime, keys: list[str], page: int = 500) -> RequeueCounts:
    """Map these records again with the current mappings and enqueue what maps now (the cursor
    is left where it is): the next push cycle delivers them."""
    from .push import PushJob

    counts = RequeueCounts(candidates=len(keys))
    job = PushJob(rt.settings, rt.mappings, rt.store, rt.client, rt.source)
    dossier = rt.mappings.get(job.options.dossier_mapping)
    for start in range(0, len(keys), page):
        records = []
        for key in keys[start : start + page]:
            record = job.source.get(key)
            if record is None:
                counts.missing += 1
                continue
            if dossier.map(record).skipped:
                counts.skipped += 1
            records.append(job.map_record(record))
        enqueued = rt.store.enqueue_page(records, cursor_name=None, watermark="", last_key=0)
        counts.released += enqueued.released
        counts.still_quarantined += enqueued.quarantined
    if "skipped" not in EnqueueCounts.__dataclass_fields__:  # a store not counting skips holds them
        counts.still_quarantined -= counts.skipped
    return counts
