"""Wire dates: ``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh, ``""`` for none, impossible dates refused.

The zone has kept UTC+7 without daylight saving since 1975, so every instant from then on has one
wire form and back; the property covers 1976-2099 from any zone (named or a fixed offset).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dvcsync.contract import (
    VN_TZ,
    HoSo,
    TienDo,
    WireDateError,
    format_wire_datetime,
    parse_local_iso,
    parse_wire_datetime,
)

LOW, HIGH = datetime(1976, 1, 1), datetime(2099, 12, 31, 23, 59, 59)
fixed_offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
zones = st.one_of(st.timezones(), fixed_offsets, st.just(UTC), st.just(VN_TZ))
# imaginary times (the skipped hour of a DST change elsewhere) are no instant at all: left out
aware = st.datetimes(min_value=LOW, max_value=HIGH, timezones=zones, allow_imaginary=False)


@given(aware)
def test_any_aware_datetime_round_trips_at_second_precision(moment: datetime) -> None:
    wire = format_wire_datetime(moment)
    assert len(wire) == 14 and wire.isascii() and wire.isdigit()
    back = parse_wire_datetime(wire)
    assert back is not None and back.tzinfo is VN_TZ
    # the same instant, whatever zone it came in (compared in UTC: PEP 495 makes inter-zone == of a
    # repeated local hour, e.g. the fall-back hour of a DST zone, always False)
    assert back.astimezone(UTC) == moment.replace(microsecond=0).astimezone(UTC)
    assert back.utcoffset() == timedelta(hours=7)


@given(st.datetimes(min_value=LOW, max_value=HIGH))
def test_a_wire_string_is_its_own_canonical_form(naive: datetime) -> None:
    wire = naive.strftime("%Y%m%d%H%M%S")
    assert format_wire_datetime(parse_wire_datetime(wire)) == wire


def test_examples_of_the_contract() -> None:
    assert format_wire_datetime(datetime(2019, 12, 9, 9, 30, 15)) == "20191209093015"  # naive = local
    assert format_wire_datetime(datetime(2019, 12, 9, 2, 30, 15, tzinfo=UTC)) == "20191209093015"
    assert format_wire_datetime(datetime(2019, 12, 31, 23, 0, 0, tzinfo=UTC)) == "20200101060000"
    assert parse_wire_datetime("20191209093015") == datetime(2019, 12, 9, 9, 30, 15, tzinfo=VN_TZ)
    assert parse_wire_datetime("20240229235959") == datetime(2024, 2, 29, 23, 59, 59, tzinfo=VN_TZ)


def test_empty_means_none_both_ways() -> None:
    assert parse_wire_datetime("") is None
    assert format_wire_datetime(None) == ""


IMPOSSIBLE = [
    "20190230093015",  # 30 February
    "20190229093015",  # 29 February of a common year
    "20190431093015",  # 31 April
    "20191309093015",  # month 13
    "20190009093015",  # month 0
    "20191200093015",  # day 0
    "20191209243015",  # hour 24
    "20191209096015",  # minute 60
    "20191209093060",  # second 60
    "2019120909301",  # 13 digits
    "201912090930150",  # 15 digits
    "2019120909301a",  # a letter
    "2019-12-09 09:30",  # another format
    "2019-12-09T09:30",  # ISO
    " 20191209093015",  # padded
    "２０１９１２０９０９３０１５",  # full-width digits
    "00000000000000",  # year 0
]


@pytest.mark.parametrize("value", IMPOSSIBLE)
def test_impossible_dates_are_refused_naming_the_value(value: str) -> None:
    with pytest.raises(WireDateError) as caught:
        parse_wire_datetime(value)
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize("value", IMPOSSIBLE)
def test_models_refuse_impossible_dates_naming_field_and_value(value: str) -> None:
    dossier = {
        "MaHoSo": "000.00.01.H40-191209-0001",
        "MaTTHC": "1.001193",
        "ChuHoSo": "Nguyễn Thị Thu Hà",
        "NgayTiepNhan": "20191209093015",
        "TrangThaiHoSo": "2",
        "DonViXuLy": "Ủy ban nhân dân phường Hồng Gai",
        "NgayHenTra": value,
    }
    with pytest.raises(ValidationError) as caught:
        HoSo.model_validate(dossier)
    text = str(caught.value)
    assert "NgayHenTra" in text and value in text


def test_model_dates_accept_datetimes_and_emit_wire_text() -> None:
    step = TienDo.model_validate(
        {
            "MaHoSo": "000.00.01.H40-191209-0001",
            "NguoiXuLy": "Lê Thị Hồng Nhung",
            "ThoiDiemXuLy": datetime(2019, 12, 9, 2, 30, 15, tzinfo=UTC),
            "NoiDungXuLy": "Tiếp nhận hồ sơ",
            "TrangThai": "2",
        }
    )
    assert step.to_wire()["ThoiDiemXuLy"] == "20191209093015"


def test_a_step_needs_a_time() -> None:
    with pytest.raises(ValidationError, match="ThoiDiemXuLy"):
        TienDo.model_validate(
            {"MaHoSo": "x", "NguoiXuLy": "A", "ThoiDiemXuLy": "", "NoiDungXuLy": "B", "TrangThai": "4"}
        )


def test_local_iso_text_of_one_stop_systems() -> None:
    assert format_wire_datetime(parse_local_iso("2025-08-12 09:15:00")) == "20250812091500"
    assert format_wire_datetime(parse_local_iso("2025-08-12T02:15:00+00:00")) == "20250812091500"
    with pytest.raises(WireDateError, match="12/08/2025"):
        parse_local_iso("12/08/2025")
