"""The static data: the procedure catalogue and the agencies of province H40."""

from __future__ import annotations

import copy
import json
import re
from datetime import date
from importlib import resources
from typing import Any

import pytest

from dvcsync.province.sample.catalogue import (
    CatalogueError,
    agencies,
    parse_agency,
    parse_procedure,
    procedures,
)

AGENCY_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.H40$")
NATIONAL_CODE = re.compile(r"^[123]\.\d{6}$")


def _raw(name: str) -> dict[str, Any]:
    text = resources.files("dvcsync.province.sample.data").joinpath(name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def test_catalogue_holds_the_three_pilot_procedures() -> None:
    by_name = {p.ten_thu_tuc: p for p in procedures()}
    birth = by_name["Đăng ký khai sinh"]
    assert birth.ma_tthc_qg == "1.001193" and not birth.unverified and birth.ma_thu_tuc == "HT-KS-01"
    promotion = by_name["Thông báo hoạt động khuyến mại"]
    assert promotion.unverified and promotion.ma_tthc_qg and promotion.ten_linh_vuc == "Thương mại"
    licence = next(p for p in procedures() if p.ten_thu_tuc.startswith("Đổi giấy phép lái xe"))
    assert licence.unverified and licence.ma_tthc_qg and licence.ten_linh_vuc == "Đường bộ"
    assert [p.ma_thu_tuc for p in procedures() if p.unverified] == ["TM-KM-01", "DB-GPLX-01"]


def test_catalogue_is_large_well_formed_and_has_a_few_unmapped() -> None:
    procs = procedures()
    assert len(procs) >= 45
    national = [p.ma_tthc_qg for p in procs if p.ma_tthc_qg]
    assert all(NATIONAL_CODE.match(code) for code in national)
    assert len(set(national)) == len(national)
    assert 3 <= len(procs) - len(national) <= 4
    sectors = {p.ten_linh_vuc for p in procs}
    assert {"Hộ tịch", "Thương mại", "Đường bộ", "Đất đai", "Xây dựng", "Đăng ký kinh doanh"} <= sectors
    for proc in procs:
        assert proc.thanh_phan_ho_so and proc.phi_le_phi and proc.kenh
        for fee in proc.phi_le_phi:
            assert fee.so_tien >= 0 and (fee.so_tien == 0) == (fee.hinh_thuc_thu == "mien_phi")
    assert {p.doi_tuong for p in procs} >= {"cong_dan", "doanh_nghiep"}


def test_agencies_follow_the_2025_reorganisation() -> None:
    all_agencies = agencies()
    by_key = {a.ma_don_vi: a for a in all_agencies}
    assert all(AGENCY_CODE.match(a.ma_qg) for a in all_agencies)
    assert len({a.ma_qg for a in all_agencies}) == len(all_agencies)
    assert {a.cap for a in all_agencies} == {"tinh", "so", "huyen", "xa"}
    last_day = date(2025, 6, 30)
    for agency in all_agencies:
        if agency.cap == "huyen":
            assert agency.valid_to == last_day and agency.successor
        if agency.cap == "xa" and agency.valid_to is not None:
            assert agency.valid_to == last_day
            successor = by_key[agency.successor or ""]
            assert successor.cap == "xa" and successor.valid_to is None
            assert successor.valid_from == date(2025, 7, 1)
        if agency.successor:
            assert agency.valid_to is not None
            assert by_key[agency.successor].valid_on(agency.valid_to + (date(2025, 1, 2) - date(2025, 1, 1)))
    new_communes = [a for a in all_agencies if a.cap == "xa" and a.valid_to is None]
    old_communes = [a for a in all_agencies if a.cap == "xa" and a.valid_to is not None]
    assert len(old_communes) > len(new_communes) > 0
    # the merged department of transport
    transport = next(a for a in all_agencies if a.ten_don_vi.startswith("Sở Giao thông vận tải"))
    assert by_key[transport.successor or ""].ten_don_vi.startswith("Sở Xây dựng")


def test_a_malformed_procedure_names_the_record_and_the_field() -> None:
    record = copy.deepcopy(_raw("procedures.json")["procedures"][0])
    del record["so_ngay_xu_ly"]
    expected = r"procedures.json\[0\] \(HT-KS-01\).*'so_ngay_xu_ly' is missing"
    with pytest.raises(CatalogueError, match=expected):
        parse_procedure(record, 0)
    record = copy.deepcopy(_raw("procedures.json")["procedures"][0])
    record["phi_le_phi"][0]["hinh_thuc_thu"] = "tra_gop"
    with pytest.raises(CatalogueError, match=r"phi_le_phi\[0\].*'hinh_thuc_thu' = 'tra_gop'"):
        parse_procedure(record, 0)
    record = copy.deepcopy(_raw("procedures.json")["procedures"][0])
    record["kenh"] = ["fax"]
    with pytest.raises(CatalogueError, match="'kenh' has 'fax'"):
        parse_procedure(record, 0)


def test_a_malformed_agency_names_the_record_and_the_field() -> None:
    record = copy.deepcopy(_raw("agencies.json")["agencies"][3])
    record["valid_from"] = "30/06/2025"
    with pytest.raises(CatalogueError, match=r"agencies.json\[3\].*'valid_from' = '30/06/2025'"):
        parse_agency(record, 3)
