"""Province ⋈ adapter state: a merge of two key-ordered streams, one from each database.

Neither side is loaded: the province's dossiers and the state's records arrive ordered by the
portal's dossier code and are walked together, so memory stays flat at a million dossiers (see
``bench/reconcile.py``). The comparison is structural (cursor, outbox, quarantine), never a
re-mapping of every dossier: mapping costs ~0.5 ms a record, the merge a few microseconds. The
mapped comparison happens for the dossiers read back from the portal (``portal_check``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from dvcsync.config import ReconcileSettings, Settings
from dvcsync.mapping import MappingSet, mask
from dvcsync.province import reconcile as province
from dvcsync.province.instants import later, zone
from dvcsync.province.schema import ProvinceSchema, load_schema
from dvcsync.state import StateStore
from dvcsync.state.reads import state_records

from .period import Period, local_iso, older_than
from .workbook import WorkBook

PUSH_CURSOR = "push:dossier"


@dataclass
class MergeCounts:
    province: int = 0
    state: int = 0
    in_period: int = 0
    candidates: int = 0


@dataclass(frozen=True)
class ProvinceStateConfig:
    """What the merge reads of the configuration: ``[reconcile]`` and the source's time zone."""

    reconcile: ReconcileSettings
    timezone: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ProvinceStateConfig:
        return cls(reconcile=settings.reconcile, timezone=settings.province.timezone)


def _section(settings: ReconcileSettings | Settings) -> ReconcileSettings:
    return settings.reconcile if isinstance(settings, Settings) else settings


def dossier_columns(
    settings: ReconcileSettings | Settings, schema: ProvinceSchema
) -> province.DossierColumns:
    """The province schema's dossier columns; a ``[reconcile] *_column`` setting changed from its
    default still wins (configurations written before ``province.yaml``). ``settings``: the
    ``[reconcile]`` section (a whole ``Settings`` is accepted too)."""
    cfg, defaults = _section(settings), ReconcileSettings.model_fields
    base = province.DossierColumns.of(schema)

    def pick(name: str, own: str | None) -> str | None:
        value = getattr(cfg, name)
        return str(value) if value != defaults[name].default else own

    return province.DossierColumns(
        received=pick("received_column", base.received),
        agency=pick("agency_column", base.agency) or base.agency,
        procedure=pick("procedure_column", base.procedure) or base.procedure,
        owner=pick("owner_column", base.owner),
        portal_code=pick("origin_column", base.portal_code) or base.portal_code,
    )


def province_rows(
    engine: Engine, mappings: MappingSet, settings: ReconcileSettings | Settings, period: Period
) -> Iterator[dict[str, Any]]:
    """Every dossier of the province (filters applied), by the portal's code: the local number,
    or the portal's own code for a dossier submitted there. Unfiltered by date: a state record
    without a province row must be told apart from one merely outside the period."""
    schema = load_schema(mappings.folder)
    return province.dossier_rows(
        engine,
        schema,
        dossier_columns(settings, schema),
        agency=period.agency,
        procedure=period.procedure,
    )


def held_portal_codes(
    engine: Engine, mappings: MappingSet, settings: ReconcileSettings | Settings, codes: list[str]
) -> set[str]:
    """Which of the portal's codes the province holds (taken in, acknowledged or not)."""
    schema = load_schema(mappings.folder)
    return province.held_portal_codes(engine, schema, codes, dossier_columns(settings, schema).portal_code)


def state_rows(store: StateStore) -> Iterator[dict[str, Any]]:
    """Every record the state knows of (a sync record, a quarantine, an undelivered entry), by
    code, with what is pending or dead for it."""
    # a long read on the reader: no write lock held (the service keeps writing meanwhile)
    return state_records(store.reader)


def _merged(
    province: Iterator[dict[str, Any]], state: Iterator[dict[str, Any]]
) -> Iterator[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]:
    """Pairs by key; a stream that goes backwards is an error, not a silent mismatch flood."""
    p, s = next(province, None), next(state, None)
    last_p = last_s = ""
    while p is not None or s is not None:
        pk = str(p["k"]) if p is not None else None
        sk = str(s["k"]) if s is not None else None
        for now, before, side in ((pk, last_p, "province"), (sk, last_s, "state")):
            if now is not None and now < before:
                raise RuntimeError(f"the {side} rows are not in code order ({before!r} then {now!r})")
        if sk is None or (pk is not None and pk < sk):
            yield str(pk), p, None
            last_p, p = str(pk), next(province, None)
        elif pk is None or sk < pk:
            yield sk, None, s
            last_s, s = sk, next(state, None)
        else:
            yield pk, p, s
            last_p, last_s = pk, sk
            p, s = next(province, None), next(state, None)


class ProvinceStateCheck:
    """The merge. ``config`` is what it reads of the configuration (``ProvinceStateConfig``); a
    whole ``Settings`` is still accepted (older callers') and narrowed at once, never kept."""

    def __init__(
        self,
        config: ProvinceStateConfig | Settings,
        mappings: MappingSet,
        store: StateStore,
        source: Engine,
        period: Period,
        book: WorkBook,
        *,
        now: datetime,
        read_back: bool,
        show_personal: bool = False,
    ) -> None:
        self.config = config = (
            ProvinceStateConfig.from_settings(config) if isinstance(config, Settings) else config
        )
        self.mappings = mappings
        self.store = store
        self.source = source
        self.period = period
        self.book = book
        self.now = now
        self.read_back = read_back
        self.show_personal = show_personal
        self.stale_after_s = config.reconcile.stale_after_s
        self.counts = MergeCounts()
        procedures = mappings.codes.get("procedures")
        overlay = getattr(procedures, "overlay", None)
        # local procedures decided "no national equivalent": their dossiers are not sent, by design
        self.not_sent = frozenset(str(k) for k in getattr(overlay, "skip", {}) or {})
        statuses = mappings.codes.get("statuses")
        self._status_code = (
            (lambda keyword: _safe_lookup(statuses, keyword)) if statuses is not None else (lambda _: None)
        )

    def run(self, progress: Any = None) -> MergeCounts:
        watermark, _ = self.store.cursor(PUSH_CURSOR)
        candidates: list[tuple[str, bool, dict[str, Any]]] = []
        rows = _merged(
            province_rows(self.source, self.mappings, self.config.reconcile, self.period),
            state_rows(self.store),
        )
        for n, (key, p, s) in enumerate(rows, 1):
            if progress is not None and n % 10_000 == 0:
                progress(n)
            self.counts.province += p is not None
            self.counts.state += s is not None
            candidate = self._compare(key, p, s, watermark)
            if candidate is not None:
                candidates.append(candidate)
                if len(candidates) >= 5000:
                    self.book.add_candidates(candidates)
                    self.counts.candidates += len(candidates)
                    candidates = []
        if candidates:
            self.book.add_candidates(candidates)
            self.counts.candidates += len(candidates)
        self.book.flush()
        return self.counts

    # ------------------------------------------------------------------ one dossier

    def _in_scope(self, p: dict[str, Any] | None, s: dict[str, Any] | None) -> bool:
        """Whether the record is the report's: changed or received in the period (a record only
        the state holds: changed there, and no filter on province columns), of a procedure sent."""
        if p is not None:
            if not (self.period.contains(p["updated_at"]) or self.period.contains(p["received_at"])):
                return False
        elif s is None or self.period.agency or self.period.procedure:
            return False  # a filter names province columns: a record the province lacks has none
        elif not self.period.contains(s["source_updated_at"]):
            return False
        return not (p is not None and str(p["procedure"]) in self.not_sent)

    def _held_back(self, key: str, province: dict[str, Any] | None, s: dict[str, Any]) -> bool:
        """Whether the state holds the record back (quarantined, dead letters), each a finding."""
        held_back = False
        if s["q_errors"]:
            held_back = True
            errors = _json_list(s["q_errors"])
            self.book.finding(
                "quarantined",
                key,
                province,
                {"mapping": s["q_mapping"], "errors": errors},
                None,
                local_iso(s["q_first"]),
            )
        if s["dead"]:
            held_back = True
            self.book.finding(
                "dead_letter",
                key,
                province,
                {
                    "dead_entries": int(s["dead"]),
                    "attempts": s["dead_attempts"],
                    "last_error": s["dead_error"],
                },
                None,
                local_iso(s["dead_at"]),
            )
        return held_back

    def _compare(
        self, key: str, p: dict[str, Any] | None, s: dict[str, Any] | None, watermark: str
    ) -> tuple[str, bool, dict[str, Any]] | None:
        if not self._in_scope(p, s):
            return None
        self.counts.in_period += 1
        province = self._province_evidence(p) if p is not None else None
        state = _state_evidence(s) if s is not None else None
        if p is None:
            assert s is not None
            if not s["on_portal"]:
                return None
            if self.read_back:
                return key, False, {"state": state}
            self.book.finding("unknown_to_province", key, None, state, None, local_iso(s["state_updated_at"]))
            return None
        if s is not None and self._held_back(key, province, s):
            return None
        stale_since, reason = self._stale(p, s, watermark)
        if stale_since is not None and self._older_than_stale(stale_since):
            self.book.finding("stale", key, province, {**(state or {}), "reason": reason}, None, stale_since)
            return None
        origin = p.get("origin")
        if s is None or not s["on_portal"] or (origin not in (None, "")):
            return None  # not (yet) on the portal, or submitted there (TraCuuHoSo does not return those)
        if not self.read_back:
            return None
        return (
            key,
            True,
            {
                "province": province,
                "state": state,
                "local_key": p["local_key"],
                "in_sync": s["payload_hash"] == s["acked_hash"] and not s["pending"],
                "acked_hash": s["acked_hash"],
                "payload_hash": s["payload_hash"],
                "pending": int(s["pending"] or 0),
                "updated_at": p["updated_at"],
                "watermark": watermark,
            },
        )

    def _stale(self, p: dict[str, Any], s: dict[str, Any] | None, watermark: str) -> tuple[str | None, str]:
        updated = str(p["updated_at"] or "")
        if s is not None and s["pending"]:
            return local_iso(s["pending_since"]), "waiting in the outbox"
        tz = zone(self.config.timezone)  # instants, not text (T and space forms differ)
        seen = (
            s is not None and bool(s["source_updated_at"]) and not later(updated, s["source_updated_at"], tz)
        )
        if updated and later(updated, watermark, tz) and not seen:  # a one-off push or repair saw it already
            return updated, "changed after the last push read"
        if s is None:
            return updated or None, "never recorded by the push"
        if s["payload_hash"] and s["payload_hash"] != s["acked_hash"]:
            return local_iso(s["state_updated_at"]), "sent, not acknowledged"
        return None, ""

    def _older_than_stale(self, since: str) -> bool:
        return older_than(self.now, since, self.stale_after_s, unknown=False)

    def _province_evidence(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "local_key": p["local_key"],
            "status": p["status"],
            "TrangThaiHoSo": self._status_code(p["status"]),
            "updated_at": p["updated_at"],
            "received_at": p["received_at"],
            "agency": p["agency"],
            "procedure": p["procedure"],
            "origin": "portal" if p.get("origin") else "province",
            "owner": p.get("owner") if self.show_personal else (mask(p["owner"]) if p.get("owner") else None),
        }


def _state_evidence(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "on_portal": bool(s["on_portal"]),
        "in_sync": bool(s["payload_hash"]) and s["payload_hash"] == s["acked_hash"],
        "status_sent": s["status"],
        "pending": int(s["pending"] or 0),
        "source_updated_at": s["source_updated_at"],
    }


def _json_list(raw: str) -> list[Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return [raw]
    return value if isinstance(value, list) else [value]


def _safe_lookup(table: Any, keyword: Any) -> str | None:
    try:
        return str(table.lookup(str(keyword)))
    except Exception:
        return None


__all__ = ["MergeCounts", "ProvinceStateCheck", "held_portal_codes", "province_rows", "state_rows"]
