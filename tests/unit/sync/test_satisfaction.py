"""The satisfaction figures' arithmetic and bookkeeping, without a portal: months, percentages as
the contract writes them, the tally per month, procedure and agency, the code resolution (a merged
agency's figures go to its successor), what the state remembers, and the sample's ratings."""

from __future__ import annotations

import re
import sqlite3
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from dvcsync.contract import DanhGia
from dvcsync.mapping import load_mappings
from dvcsync.province.sample import generate
from dvcsync.state import StateStore
from dvcsync.sync.satisfaction import (
    Rating,
    agency_resolver,
    complete_months,
    figures_hash,
    figures_of,
    month_end,
    month_label,
    percentages,
    procedure_resolver,
    read_ratings,
    record_sent,
    sent_hashes,
    tally,
)

REPO = Path(__file__).resolve().parents[3]
PERCENT = re.compile(r"^\d{1,3}%$")  # the contract's "40%": whole percents


def test_complete_months_are_the_ones_before_the_current_one() -> None:
    assert complete_months(12, date(2026, 1, 15)) == [(2025, m) for m in range(1, 13)]
    assert complete_months(1, date(2026, 1, 1)) == [(2025, 12)]
    assert complete_months(3, date(2026, 11, 30)) == [(2026, 8), (2026, 9), (2026, 10)]
    with pytest.raises(ValueError):
        complete_months(0, date(2026, 1, 1))


def test_month_label_and_end() -> None:
    assert month_label((2026, 3)) == "3-2026" and month_label((2025, 12)) == "12-2025"
    assert month_end((2024, 2)) == date(2024, 2, 29) and month_end((2025, 12)) == date(2025, 12, 31)


@pytest.mark.parametrize(
    ("counts", "shown"),
    [
        ((1, 1, 1), ("34%", "33%", "33%")),
        ((2, 0, 0), ("100%", "0%", "0%")),
        ((0, 0, 0), ("0%", "0%", "0%")),
        ((2, 3, 0), ("40%", "60%", "0%")),
        ((1, 2, 4), ("14%", "29%", "57%")),
        ((48, 66, 6), ("40%", "55%", "5%")),
    ],
)
def test_percentages_examples(counts: tuple[int, int, int], shown: tuple[str, str, str]) -> None:
    assert percentages(counts) == shown


def test_percentages_always_add_up_to_100_and_stay_within_one_point() -> None:
    for a in range(0, 13):
        for b in range(0, 13):
            for c in range(0, 13):
                total = a + b + c
                if total == 0:
                    continue
                shown = percentages((a, b, c))
                assert all(PERCENT.match(p) for p in shown), shown
                values = [int(p.removesuffix("%")) for p in shown]
                assert sum(values) == 100, (a, b, c)
                for value, count in zip(values, (a, b, c), strict=True):
                    assert abs(Fraction(value) - Fraction(100 * count, total)) < 1


def _rating(procedure: str, agency: str, level: str, moment: str) -> Rating:
    return Rating(procedure, agency, level, moment)


def test_tally_by_month_of_the_rating_procedure_and_agency_with_what_is_left_out() -> None:
    seen_as_of: list[date] = []

    def procedure_of(local: str) -> tuple[str, str] | None:
        return {"KS": ("1.001193", "Đăng ký khai sinh"), "KH": ("1.000894", "Đăng ký kết hôn")}.get(local)

    def agency_of(local: str, as_of: date) -> tuple[str, str] | None:
        seen_as_of.append(as_of)
        return None if local == "GONE" else (f"000.00.{local}.H40", f"UBND {local}")

    ratings = [
        _rating("KS", "01", "rat_hai_long", "2026-03-31T23:59:00"),
        _rating("KS", "01", "hai_long", "2026-03-01T07:00:00"),
        _rating("KS", "01", "chua_hai_long", "2026-04-01T00:00:01"),  # next month
        _rating("KH", "01", "hai_long", "2026-03-10T10:00:00"),
        _rating("KS", "02", "hai_long", "2026-03-10T10:00:00"),
        _rating("XX", "01", "hai_long", "2026-03-10T10:00:00"),  # no national procedure
        _rating("KS", "GONE", "hai_long", "2026-03-10T10:00:00"),  # no agency that month
        _rating("KS", "01", "5 sao", "2026-03-10T10:00:00"),  # not a level of the contract
    ]
    counted = tally(ratings, procedure_of, agency_of)
    assert counted.ratings == 8
    assert (counted.unknown_level, counted.no_procedure, counted.no_agency) == (1, 1, 1)
    assert counted.counts == {
        ((2026, 3), "1.001193", "000.00.01.H40"): [1, 1, 0],
        ((2026, 4), "1.001193", "000.00.01.H40"): [0, 0, 1],
        ((2026, 3), "1.000894", "000.00.01.H40"): [0, 1, 0],
        ((2026, 3), "1.001193", "000.00.02.H40"): [0, 1, 0],
    }
    assert set(seen_as_of) == {date(2026, 3, 31), date(2026, 4, 30)}  # resolved as of the month's end

    figures = figures_of(counted)
    item = figures[("2026-03", "1.001193", "000.00.01.H40")]
    assert item == {
        "NgayTongHop": "3-2026",
        "TongSoNguoiDanhGia": "2",
        "PhanTramDanhGiaRatHaiLong": "50%",
        "PhanTramDanhGiaHaiLong": "50%",
        "PhanTramDanhGiaChuaHaiLong": "0%",
        "MaThuTuc": "1.001193",
        "NoiDung": "Đăng ký khai sinh",
        "Madonvi": "000.00.01.H40",
        "TenDonVi": "UBND 01",
    }
    assert all(DanhGia.model_validate(i) for i in figures.values())


def test_figures_hash_ignores_key_order_and_sees_any_change() -> None:
    item = {"NgayTongHop": "3-2026", "TongSoNguoiDanhGia": "2"}
    assert figures_hash(item) == figures_hash(dict(reversed(item.items())))
    assert figures_hash(item) != figures_hash({**item, "TongSoNguoiDanhGia": "3"})


def test_resolvers_use_the_code_tables_and_a_merged_agency_gives_its_successor() -> None:
    mappings = load_mappings(REPO / "mappings")
    procedure = procedure_resolver(mappings)
    assert procedure("HT-KS-01") == ("1.001193", "Đăng ký khai sinh")
    assert procedure("DD-HG-01") is None  # a local procedure without a national code
    agency = agency_resolver(mappings)
    assert agency("H40-SO-TP", date(2026, 3, 31)) == ("000.00.01.H40", "Sở Tư pháp tỉnh Sơn Hà")
    before = agency("H40-SO-GTVT", date(2025, 1, 31))
    after = agency("H40-SO-GTVT", date(2025, 3, 31))  # ended 2025-02-28, succeeded by H40-SO-XD
    assert before == ("000.00.03.H40", "Sở Giao thông vận tải tỉnh Sơn Hà")
    assert after == ("000.00.04.H40", "Sở Xây dựng tỉnh Sơn Hà")
    assert agency("NO-SUCH-AGENCY", date(2026, 3, 31)) is None


def test_the_state_remembers_the_last_figures_sent_and_counts_the_sends(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        store.prepare()
        key = ("2026-03", "1.001193", "000.00.01.H40")
        first = {"NgayTongHop": "3-2026", "TongSoNguoiDanhGia": "2"}
        second = {**first, "TongSoNguoiDanhGia": "3"}
        assert sent_hashes(store, ["2026-03"]) == {}
        record_sent(store, [(key, first)])
        assert sent_hashes(store, ["2026-03"]) == {key: figures_hash(first)}
        assert sent_hashes(store, ["2026-04"]) == {}
        record_sent(store, [(key, second)])
        assert sent_hashes(store, ["2026-03"]) == {key: figures_hash(second)}
        with store.begin() as conn:
            sends = conn.exec_driver_sql("SELECT sends FROM satisfaction_sent").scalar_one()
        assert sends == 2
    finally:
        store.close()


def test_the_sample_rates_only_returned_dossiers_after_their_return(tmp_path: Path) -> None:
    stats = generate(tmp_path / "onestop.db", 400, 7)
    assert stats.rows["danh_gia"] > 0
    with sqlite3.connect(stats.path) as conn:
        rows = conn.execute(
            "SELECT d.trang_thai, d.ngay_tra, r.thoi_diem, r.muc_do FROM danh_gia r"
            " JOIN ho_so d ON d.id = r.ho_so_id"
        ).fetchall()
    assert len(rows) == stats.rows["danh_gia"]
    assert all(status == "done" and returned <= moment for status, returned, moment, _ in rows)
    assert {level for *_, level in rows} == {"rat_hai_long", "hai_long", "chua_hai_long"}
    engine = create_engine(f"sqlite:///{stats.path}")
    try:
        read = read_ratings(engine, date(2024, 1, 1), date(2027, 1, 1))
    finally:
        engine.dispose()
    assert len(read) == len(rows)
