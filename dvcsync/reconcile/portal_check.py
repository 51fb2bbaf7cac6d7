"""Adapter state ⋈ portal: read the period's dossiers back with ``TraCuuHoSo`` and compare what
the portal holds with what the province's record maps to today.

Reads go through the ordinary portal client, so they share its rate budget and concurrency
(``[portal] rate_limit``, ``concurrency``): a reconciliation never crowds out the push. Answers
are written to the run's working file a chunk at a time, so a run stopped by an outage resumes
where it stopped. Only dossiers the state believes in step with the portal are compared field by
field; one still travelling (pending, or changed after the last push read) has nothing to say yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from dvcsync.config import Settings
from dvcsync.contract import HoSoDaLuu
from dvcsync.mapping import MappingSet
from dvcsync.portal import AuthError, PortalClient, PortalError, UnreachableError
from dvcsync.province.instants import later, zone
from dvcsync.state import StateStore, payload_hash
from dvcsync.sync.job_config import PushConfig
from dvcsync.sync.push import PushJob, history_fingerprint

from .period import Period, older_than
from .workbook import WorkBook

log = logging.getLogger(__name__)

DATE_FIELDS = ("NgayNopHoSo", "NgayTiepNhan", "NgayHenTra", "NgayTra", "NgayKetThucXuLy", "NgayTuChoi")
FEE_FIELDS = ("TenPhiLePhi", "MaPhiLePhi", "HinhThucThu", "Gia", "LoaiPhiLePhi")
WITHDRAWN = "7"
CHUNK = 500  # answers recorded (and resumable) this many at a time


@dataclass
class ReadBackCounts:
    candidates: int = 0
    sampled: int = 0
    read: int = 0
    resumed: int = 0
    failed: int = 0
    compared: int = 0
    in_flight: int = 0
    listed_unacknowledged: int = 0


@dataclass(frozen=True)
class PortalCheckConfig:
    """What the read-back reads of the configuration: the push job's (it maps records as a push
    would, and its limits and time zone are the portal's and the source's) and ``[reconcile]``'s
    staleness."""

    push: PushConfig
    stale_after_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> PortalCheckConfig:
        return cls(push=PushConfig.from_settings(settings), stale_after_s=settings.reconcile.stale_after_s)


class PortalCheck:
    """``config`` is a ``PortalCheckConfig``; a whole ``Settings`` is still accepted (older
    callers') and narrowed at once, never kept."""

    def __init__(
        self,
        config: PortalCheckConfig | Settings,
        mappings: MappingSet,
        store: StateStore,
        client: PortalClient,
        source: Engine,
        book: WorkBook,
        *,
        now: datetime,
        period: Period,
    ) -> None:
        self.config = config = (
            PortalCheckConfig.from_settings(config) if isinstance(config, Settings) else config
        )
        self.client = client
        self.book = book
        self.now = now
        self.period = period
        self.counts = ReadBackCounts()
        self._job = PushJob(config.push, mappings, store, client, source)
        self._semaphore = asyncio.Semaphore(config.push.limits.concurrency)

    # ------------------------------------------------------------------ reading

    async def read(self, sample: int | None, seed: int, progress: Callable[[int, int], None] | None) -> None:
        """Ask the portal for every candidate not yet answered (all, or a random ``sample``)."""
        self.counts.candidates = self.book.candidate_count()
        if sample is not None and not self.book.resumed:
            self.book.keep_sample(sample, seed)
        total = self.book.candidate_count()
        self.counts.sampled = total
        self.counts.resumed = self.book.read_count()
        done = self.counts.resumed
        last = ""  # a read that failed is not asked again in this run (the next run retries it)
        barren = 0
        while True:
            chunk = self.book.unread(CHUNK, after=last)
            if not chunk:
                break
            last = chunk[-1][0]
            answers = await asyncio.gather(*(self._read_one(key) for key, _, _ in chunk))
            got = [(key, body) for (key, _, _), (ok, body) in zip(chunk, answers, strict=True) if ok]
            self.book.record_reads(got)
            self.counts.read += len(got)
            self.counts.failed += len(chunk) - len(got)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
            barren = 0 if got else barren + 1
            if barren >= 3:  # three chunks without one answer: the portal refuses them all; stop
                break

    async def _read_one(self, key: str) -> tuple[bool, dict[str, Any] | None]:
        async with self._semaphore:
            try:
                reply = await self.client.call("TraCuuHoSo", {"mahoso": key}, typed=False)
            except (AuthError, UnreachableError):
                raise  # the run stops here; what was read is kept for the next one
            except PortalError as exc:
                log.warning("read-back of %s failed: %s", key, exc)
                return False, None
        if not reply.ok:
            log.warning("read-back of %s refused: %s %s", key, reply.error_code, reply.message)
            return False, None
        items = reply.result or []
        first = items[0] if items and isinstance(items[0], dict) else None
        return True, first

    # ------------------------------------------------------------------ comparing

    def compare(self) -> None:
        spec = self._job.source.spec
        for batch in self.book.reads():
            local_keys = [info["local_key"] for _, present, info, _ in batch if present]
            records = self._records(spec.record_key, local_keys)
            for key, present, info, body in batch:
                if not present:
                    if body is not None:
                        state = info.get("state") or {}
                        self._add(
                            "unknown_to_province",
                            key,
                            None,
                            state,
                            _portal_summary(body),
                            since=state.get("source_updated_at"),
                        )
                    continue
                record = records.get(info["local_key"])
                if record is None:  # deleted since the merge: the next report sees it
                    continue
                self._compare_one(key, info, record, body)

    def _records(self, column: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        where = f"{column} IN ({', '.join(f':k{n}' for n in range(len(keys)))})"
        params = {f"k{n}": k for n, k in enumerate(keys)}
        out: dict[str, dict[str, Any]] = {}
        for page in self._job.source.iter_pages(page_size=len(keys), where=where, params=params):
            for record in page:
                out[str(record[column])] = record
        return out

    def _compare_one(self, key: str, info: dict[str, Any], record: dict[str, Any], body: Any) -> None:
        province, state = info["province"], info["state"]
        if body is None:
            self._add("missing_on_portal", key, province, state, {"found": False})
            return
        mapped = self._job.map_record(record)
        if mapped.errors or mapped.dossier is None:
            return  # the next push quarantines it; the report after says so
        digest = payload_hash(mapped.dossier)
        if info["pending"] or digest != info["acked_hash"]:
            updated = str(info.get("updated_at") or "")
            after_cursor = later(updated, info.get("watermark", ""), zone(self.config.push.timezone))
            if info["pending"] or digest == info["payload_hash"] or after_cursor:
                self.counts.in_flight += 1
                return
            # Changed without the push seeing it (edited in place, or committed behind its cursor):
            # stale once that is older than stale_after, by the record's own time
            if updated and not self._older_than_stale(updated):
                self.counts.in_flight += 1
                return
            self._add(
                "stale",
                key,
                province,
                {**state, "reason": "changed without a new updated_at"},
                None,
                since=updated or None,
            )
            return
        self.counts.compared += 1
        try:
            portal = HoSoDaLuu.model_validate(body).to_wire()
        except ValueError:
            portal = dict(body)
        self._compare_fields(key, province, state, mapped.dossier, portal, mapped.steps)

    def _older_than_stale(self, moment: str) -> bool:
        return older_than(self.now, moment, self.config.stale_after_s, unknown=True)

    def _compare_fields(
        self,
        key: str,
        province: dict[str, Any],
        state: dict[str, Any],
        mine: dict[str, Any],
        portal: dict[str, Any],
        steps: list[tuple[str, dict[str, Any]]],
    ) -> None:
        ours, theirs = str(mine.get("TrangThaiHoSo") or ""), str(portal.get("TrangThaiHoSo") or "")
        if ours != theirs:
            category = "withdrawal_conflict" if theirs == WITHDRAWN else "status_differs"
            self._add(category, key, {**province, "TrangThaiHoSo": ours}, state, {"TrangThaiHoSo": theirs})
        dates_ours = {
            f: mine.get(f) or "" for f in DATE_FIELDS if (mine.get(f) or "") != (portal.get(f) or "")
        }
        if dates_ours:
            self._add(
                "dates_differ",
                key,
                {**province, **dates_ours},
                state,
                {f: portal.get(f) or "" for f in dates_ours},
            )
        fees_ours, fees_theirs = _fees(mine), _fees(portal)
        if fees_ours != fees_theirs:
            self._add(
                "fees_differ",
                key,
                {**province, "fees": _fee_list(fees_ours)},
                state,
                {"fees": _fee_list(fees_theirs)},
            )
        wanted = Counter(history_fingerprint(entry) for _, entry in steps)
        held = Counter(history_fingerprint(entry) for entry in portal.get("QuaTrinhXuLy") or [])
        missing = wanted - held
        doubled = Counter({mark: held[mark] - wanted[mark] for mark in wanted if held[mark] > wanted[mark]})
        if missing:
            self._add(
                "history_missing",
                key,
                province,
                {**state, "entries_sent": sum(wanted.values())},
                {"entries_held": sum(held.values()), "missing": _entries(missing)},
            )
        if doubled:
            self._add(
                "history_duplicated",
                key,
                province,
                state,
                {"entries_held": sum(held.values()), "duplicated": _entries(doubled)},
            )

    def _add(
        self,
        category: str,
        key: str,
        province: dict[str, Any] | None,
        state: dict[str, Any] | None,
        portal: dict[str, Any] | None,
        since: str | None = None,
    ) -> None:
        # when the mismatch began, as far as anyone can tell: the province's last change
        self.book.finding(category, key, province, state, portal, since or (province or {}).get("updated_at"))


def _fees(body: dict[str, Any]) -> list[tuple[str, ...]]:
    return sorted(tuple(str(fee.get(f) or "") for f in FEE_FIELDS) for fee in body.get("DanhSachLePhi") or [])


def _fee_list(fees: list[tuple[str, ...]]) -> list[dict[str, str]]:
    return [dict(zip(FEE_FIELDS, fee, strict=True)) for fee in fees]


def _entries(marks: Counter[tuple[str, ...]]) -> list[dict[str, Any]]:
    return [
        {"ThoiDiemXuLy": m[1], "NoiDungXuLy": m[3], "TrangThai": m[4], "times": n}
        for m, n in sorted(marks.items())
    ]


def _portal_summary(body: dict[str, Any]) -> dict[str, Any]:
    return {f: body.get(f) for f in ("TrangThaiHoSo", "MaTTHC", "NgayTiepNhan", "DonViXuLy") if body.get(f)}


__all__ = ["PortalCheck", "ReadBackCounts"]
