"""The national catalogue in the state: a pull is saved in one transaction together with what
changed since the pull before (new, renamed, withdrawn, reinstated procedures, fees or times
changed; agencies new, renamed, abolished; sectors), so the change report of a pull is exact and
can be read again later (``catalogue_pull.changes``)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from dvcsync.contract import VN_TZ

from .models import CatalogueAgency, CatalogueProcedure, CataloguePull, CatalogueSector
from .records import dumps
from .store import StateStore

PULL_T = CataloguePull.__table__  # type: ignore[attr-defined]
PROCEDURE_T = CatalogueProcedure.__table__  # type: ignore[attr-defined]
AGENCY_T = CatalogueAgency.__table__  # type: ignore[attr-defined]
SECTOR_T = CatalogueSector.__table__  # type: ignore[attr-defined]
CATALOGUE_TABLES = (PULL_T, PROCEDURE_T, AGENCY_T, SECTOR_T)


@dataclass
class ProcedureRecord:
    """One national procedure as a pull read it."""

    code: str
    name: str
    active: bool
    status: str | None
    sector_code: str | None
    sector_name: str | None
    fees: tuple[int, ...]
    days: float | None
    detail: dict[str, Any]


@dataclass
class AgencyRecord:
    code: str
    name: str
    level: str | None
    active: bool
    valid_to: str | None


@dataclass
class SectorRecord:
    code: str
    name: str
    industry: str | None


@dataclass
class Snapshot:
    """Everything one pull read from the portal."""

    procedures: list[ProcedureRecord]
    agencies: list[AgencyRecord]
    sectors: list[SectorRecord]


@dataclass
class Changes:
    """What a pull found different from the pull before (empty lists on the first pull)."""

    first: bool = False
    new: list[dict[str, Any]] = field(default_factory=list)
    renamed: list[dict[str, Any]] = field(default_factory=list)
    withdrawn: list[dict[str, Any]] = field(default_factory=list)
    reinstated: list[dict[str, Any]] = field(default_factory=list)
    fees_changed: list[dict[str, Any]] = field(default_factory=list)
    days_changed: list[dict[str, Any]] = field(default_factory=list)
    agencies_new: list[dict[str, Any]] = field(default_factory=list)
    agencies_renamed: list[dict[str, Any]] = field(default_factory=list)
    agencies_abolished: list[dict[str, Any]] = field(default_factory=list)
    sectors_new: list[dict[str, Any]] = field(default_factory=list)
    sectors_renamed: list[dict[str, Any]] = field(default_factory=list)
    sectors_removed: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.as_dict().values() if isinstance(v, list))


def save_pull(store: StateStore, snapshot: Snapshot, now: float | None = None) -> tuple[int, Changes]:
    """Record a pull and its changes in one transaction; returns the pull's id and the changes."""
    now = time.time() if now is None else now
    with store.begin() as conn:
        first = conn.execute(select(PULL_T.c.id).limit(1)).first() is None
        inserted = conn.execute(
            insert(PULL_T).values(
                pulled_at=now,
                catalogue_date=datetime.fromtimestamp(now, VN_TZ).date().isoformat(),  # the province's day
                procedures=len(snapshot.procedures),
                agencies=len(snapshot.agencies),
                sectors=len(snapshot.sectors),
                changes="{}",
            )
        ).inserted_primary_key
        assert inserted is not None
        pull_id = int(inserted[0])
        changes = Changes(first=first)
        _save_procedures(conn, snapshot.procedures, pull_id, now, changes)
        _save_agencies(conn, snapshot.agencies, pull_id, now, changes)
        _save_sectors(conn, snapshot.sectors, pull_id, changes)
        if first:  # the first pull is the baseline: everything is "new", which says nothing
            changes = Changes(first=True)
        conn.execute(update(PULL_T).where(PULL_T.c.id == pull_id).values(changes=dumps(changes.as_dict())))
    return pull_id, changes


def _save_procedures(
    conn: Connection, records: list[ProcedureRecord], pull_id: int, now: float, changes: Changes
) -> None:
    known = {row.code: row for row in conn.execute(select(PROCEDURE_T))}
    seen = set()
    for rec in records:
        seen.add(rec.code)
        values: dict[str, Any] = {
            "name": rec.name,
            "active": rec.active,
            "status": rec.status,
            "sector_code": rec.sector_code,
            "sector_name": rec.sector_name,
            "fees": json.dumps(list(rec.fees)),
            "days": rec.days,
            "detail": dumps(rec.detail),
            "last_pull": pull_id,
        }
        old = known.get(rec.code)
        brief = {"code": rec.code, "name": rec.name}
        if old is None:
            conn.execute(
                insert(PROCEDURE_T).values(code=rec.code, first_pull=pull_id, changed_at=now, **values)
            )
            (changes.new if rec.active else changes.withdrawn).append(brief)
            continue
        changed = False
        if old.name != rec.name:
            changes.renamed.append({**brief, "old_name": old.name})
            changed = True
        if old.active and not rec.active:
            changes.withdrawn.append(brief)
            changed = True
        elif rec.active and not old.active:
            changes.reinstated.append(brief)
            changed = True
        old_fees = tuple(json.loads(old.fees))
        if old_fees != rec.fees:
            changes.fees_changed.append({**brief, "old_fees": list(old_fees), "fees": list(rec.fees)})
            changed = True
        if old.days != rec.days:
            changes.days_changed.append({**brief, "old_days": old.days, "days": rec.days})
            changed = True
        if changed:
            values["changed_at"] = now
        conn.execute(update(PROCEDURE_T).where(PROCEDURE_T.c.code == rec.code).values(**values))
    for code, old in known.items():
        if code not in seen and old.active:  # left the list: withdrawn
            changes.withdrawn.append({"code": code, "name": old.name})
            conn.execute(
                update(PROCEDURE_T).where(PROCEDURE_T.c.code == code).values(active=False, changed_at=now)
            )


def _save_agencies(
    conn: Connection, records: list[AgencyRecord], pull_id: int, now: float, changes: Changes
) -> None:
    known = {row.code: row for row in conn.execute(select(AGENCY_T))}
    seen = set()
    for rec in records:
        seen.add(rec.code)
        values: dict[str, Any] = {
            "name": rec.name,
            "level": rec.level,
            "active": rec.active,
            "valid_to": rec.valid_to,
            "last_pull": pull_id,
        }
        old = known.get(rec.code)
        brief = {"code": rec.code, "name": rec.name}
        if old is None:
            conn.execute(insert(AGENCY_T).values(code=rec.code, first_pull=pull_id, changed_at=now, **values))
            changes.agencies_new.append(brief)
            if not rec.active:
                changes.agencies_abolished.append({**brief, "valid_to": rec.valid_to})
            continue
        changed = False
        if old.name != rec.name:
            changes.agencies_renamed.append({**brief, "old_name": old.name})
            changed = True
        if old.active and not rec.active:
            changes.agencies_abolished.append({**brief, "valid_to": rec.valid_to})
            changed = True
        if changed:
            values["changed_at"] = now
        conn.execute(update(AGENCY_T).where(AGENCY_T.c.code == rec.code).values(**values))
    for code, old in known.items():
        if code not in seen and old.active:
            changes.agencies_abolished.append({"code": code, "name": old.name, "valid_to": None})
            conn.execute(update(AGENCY_T).where(AGENCY_T.c.code == code).values(active=False, changed_at=now))


def _save_sectors(conn: Connection, records: list[SectorRecord], pull_id: int, changes: Changes) -> None:
    known = {row.code: row for row in conn.execute(select(SECTOR_T))}
    seen = set()
    for rec in records:
        seen.add(rec.code)
        values: dict[str, Any] = {
            "name": rec.name,
            "industry": rec.industry,
            "active": True,
            "last_pull": pull_id,
        }
        old = known.get(rec.code)
        if old is None:
            conn.execute(insert(SECTOR_T).values(code=rec.code, **values))
            changes.sectors_new.append({"code": rec.code, "name": rec.name})
            continue
        if old.name != rec.name:
            changes.sectors_renamed.append({"code": rec.code, "name": rec.name, "old_name": old.name})
        conn.execute(update(SECTOR_T).where(SECTOR_T.c.code == rec.code).values(**values))
    for code, old in known.items():
        if code not in seen and old.active:
            changes.sectors_removed.append({"code": code, "name": old.name})
            conn.execute(update(SECTOR_T).where(SECTOR_T.c.code == code).values(active=False))


# ---------------------------------------------------------------------- reading


def last_pull(store: StateStore) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(select(PULL_T).order_by(PULL_T.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    data = dict(row._mapping)
    data["changes"] = json.loads(data["changes"])
    return data


def procedures(store: StateStore) -> list[ProcedureRecord]:
    """Every procedure ever pulled, withdrawn ones included (``active`` False)."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(PROCEDURE_T).order_by(PROCEDURE_T.c.code)).all()
    return [
        ProcedureRecord(
            code=r.code,
            name=r.name,
            active=bool(r.active),
            status=r.status,
            sector_code=r.sector_code,
            sector_name=r.sector_name,
            fees=tuple(json.loads(r.fees)),
            days=r.days,
            detail=json.loads(r.detail),
        )
        for r in rows
    ]


def agencies(store: StateStore) -> list[AgencyRecord]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(AGENCY_T).order_by(AGENCY_T.c.code)).all()
    return [AgencyRecord(r.code, r.name, r.level, bool(r.active), r.valid_to) for r in rows]
