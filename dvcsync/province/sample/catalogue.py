"""The sample province's static data: its procedure catalogue and its agencies (``data/*.json``).

Kept as JSON package data, not code, because other parts read it too: the mock portal builds its
national catalogue from ``procedures.json`` and ``export_codes`` turns both files into the mapping
code tables. Loading validates the shape, so a bad edit fails here with the record and field named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from dvcsync.errors import TerminalError

from .schema import CHANNELS, FEE_COLLECTION, FEE_KINDS, OWNER_TYPES

LEVELS = ("tinh", "so", "huyen", "xa")
PROCEDURE_LEVELS = ("so", "huyen", "xa")


class CatalogueError(TerminalError, ValueError):
    """A record of ``data/*.json`` is malformed; the message names the record and the field."""


@dataclass(frozen=True, slots=True)
class Fee:
    ma_phi: str
    ten_phi: str
    loai_phi: str
    hinh_thuc_thu: str
    so_tien: int


@dataclass(frozen=True, slots=True)
class Component:
    ma_thanh_phan: str
    ten_thanh_phan: str


@dataclass(frozen=True, slots=True)
class Procedure:
    ma_thu_tuc: str
    ten_thu_tuc: str
    ma_tthc_qg: str | None
    unverified: bool
    ma_linh_vuc: str
    ten_linh_vuc: str
    cap_thuc_hien: str  # so | huyen | xa: who handles it (huyen → a commune since 2025-07-01)
    co_quan: str | None  # the department's ma_don_vi when cap_thuc_hien == "so"
    so_ngay_xu_ly: int  # working days
    kenh: tuple[str, ...]
    phi_le_phi: tuple[Fee, ...]
    doi_tuong: str  # the expected owner type
    thanh_phan_ho_so: tuple[Component, ...]
    ma_ket_qua: str
    ten_ket_qua: str


@dataclass(frozen=True, slots=True)
class Agency:
    ma_don_vi: str
    ma_qg: str
    ten_don_vi: str
    cap: str
    valid_from: date
    valid_to: date | None
    successor: str | None
    parent: str | None

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


def _field(
    record: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str, nullable: bool = False
) -> Any:
    if name not in record:
        raise CatalogueError(f"{where}: field {name!r} is missing")
    value = record[name]
    if value is None and nullable:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise CatalogueError(f"{where}: field {name!r} has the wrong type: {value!r}")
    return value


def _choice(record: dict[str, Any], name: str, allowed: tuple[str, ...], where: str) -> str:
    value: str = _field(record, name, str, where)
    if value not in allowed:
        raise CatalogueError(f"{where}: field {name!r} = {value!r} is not one of {allowed}")
    return value


def _date(record: dict[str, Any], name: str, where: str, nullable: bool = False) -> date | None:
    value = _field(record, name, str, where, nullable)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CatalogueError(f"{where}: field {name!r} = {value!r} is not an ISO date") from None


def _read(name: str) -> dict[str, Any]:
    text = resources.files("dvcsync.province.sample.data").joinpath(name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def parse_procedure(record: dict[str, Any], index: int) -> Procedure:
    where = f"procedures.json[{index}] ({record.get('ma_thu_tuc', '?')})"
    fees = []
    for n, fee in enumerate(_field(record, "phi_le_phi", list, where)):
        fwhere = f"{where}.phi_le_phi[{n}]"
        amount = _field(fee, "so_tien", int, fwhere)
        if amount < 0:
            raise CatalogueError(f"{fwhere}: field 'so_tien' = {amount!r} is negative")
        fees.append(
            Fee(
                _field(fee, "ma_phi", str, fwhere),
                _field(fee, "ten_phi", str, fwhere),
                _choice(fee, "loai_phi", FEE_KINDS, fwhere),
                _choice(fee, "hinh_thuc_thu", FEE_COLLECTION, fwhere),
                amount,
            )
        )
    components = tuple(
        Component(
            _field(c, "ma_thanh_phan", str, f"{where}.thanh_phan_ho_so[{n}]"),
            _field(c, "ten_thanh_phan", str, f"{where}.thanh_phan_ho_so[{n}]"),
        )
        for n, c in enumerate(_field(record, "thanh_phan_ho_so", list, where))
    )
    channels = tuple(_field(record, "kenh", list, where))
    for channel in channels:
        if channel not in CHANNELS:
            raise CatalogueError(f"{where}: field 'kenh' has {channel!r}, not one of {CHANNELS}")
    result = _field(record, "ket_qua", dict, where)
    level = _choice(record, "cap_thuc_hien", PROCEDURE_LEVELS, where)
    co_quan = _field(record, "co_quan", str, where, nullable=True)
    if (level == "so") != (co_quan is not None):
        raise CatalogueError(
            f"{where}: field 'co_quan' = {co_quan!r} must be set exactly when cap_thuc_hien is 'so'"
        )
    days = _field(record, "so_ngay_xu_ly", int, where)
    if days < 1:
        raise CatalogueError(f"{where}: field 'so_ngay_xu_ly' = {days!r} must be at least 1")
    return Procedure(
        ma_thu_tuc=_field(record, "ma_thu_tuc", str, where),
        ten_thu_tuc=_field(record, "ten_thu_tuc", str, where),
        ma_tthc_qg=_field(record, "ma_tthc_qg", str, where, nullable=True),
        unverified=_field(record, "unverified", bool, where),
        ma_linh_vuc=_field(record, "ma_linh_vuc", str, where),
        ten_linh_vuc=_field(record, "ten_linh_vuc", str, where),
        cap_thuc_hien=level,
        co_quan=co_quan,
        so_ngay_xu_ly=days,
        kenh=channels,
        phi_le_phi=tuple(fees),
        doi_tuong=_choice(record, "doi_tuong", OWNER_TYPES, where),
        thanh_phan_ho_so=components,
        ma_ket_qua=_field(result, "ma_ket_qua", str, f"{where}.ket_qua"),
        ten_ket_qua=_field(result, "ten_ket_qua", str, f"{where}.ket_qua"),
    )


def parse_agency(record: dict[str, Any], index: int) -> Agency:
    where = f"agencies.json[{index}] ({record.get('ma_don_vi', '?')})"
    valid_from = _date(record, "valid_from", where)
    assert valid_from is not None
    return Agency(
        ma_don_vi=_field(record, "ma_don_vi", str, where),
        ma_qg=_field(record, "ma_qg", str, where),
        ten_don_vi=_field(record, "ten_don_vi", str, where),
        cap=_choice(record, "cap", LEVELS, where),
        valid_from=valid_from,
        valid_to=_date(record, "valid_to", where, nullable=True),
        successor=_field(record, "successor", str, where, nullable=True),
        parent=_field(record, "parent", str, where, nullable=True),
    )


@cache
def procedures() -> tuple[Procedure, ...]:
    """The local procedure catalogue, in file order."""
    loaded = tuple(parse_procedure(r, n) for n, r in enumerate(_read("procedures.json")["procedures"]))
    agencies_by_key = {a.ma_don_vi for a in agencies()}
    seen: set[str] = set()
    for proc in loaded:
        if proc.ma_thu_tuc in seen:
            raise CatalogueError(f"procedures.json: ma_thu_tuc {proc.ma_thu_tuc!r} appears twice")
        seen.add(proc.ma_thu_tuc)
        if proc.co_quan is not None and proc.co_quan not in agencies_by_key:
            raise CatalogueError(
                f"procedures.json ({proc.ma_thu_tuc}): co_quan {proc.co_quan!r} is no agency"
            )
    return loaded


@cache
def agencies() -> tuple[Agency, ...]:
    """The province's agencies, past and present, in file order."""
    loaded = tuple(parse_agency(r, n) for n, r in enumerate(_read("agencies.json")["agencies"]))
    keys = {a.ma_don_vi for a in loaded}
    if len(keys) != len(loaded):
        raise CatalogueError("agencies.json: a ma_don_vi appears twice")
    for agency in loaded:
        for name in ("successor", "parent"):
            target = getattr(agency, name)
            if target is not None and target not in keys:
                raise CatalogueError(f"agencies.json ({agency.ma_don_vi}): {name} {target!r} is no agency")
        if agency.valid_to is not None and agency.valid_to < agency.valid_from:
            raise CatalogueError(f"agencies.json ({agency.ma_don_vi}): valid_to is before valid_from")
    return loaded
