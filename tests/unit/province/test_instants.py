"""Source timestamps read as instants, whatever their form; the bound texts the fast path relies on."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvcsync.config import ConfigError, Settings
from dvcsync.province.instants import (
    InstantError,
    column_value,
    cursor_text,
    day_text,
    earlier,
    later,
    naive_text,
    parse_instant,
    read_cursor,
    zone,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
MOMENT = datetime(2026, 12, 7, 21, 27, 4, tzinfo=VN)  # 14:27:04 UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-07T21:27:04",  # SQLite text, the sample schema
        "2026-12-07 21:27:04",  # MariaDB DATETIME / PostgreSQL timestamp as text
        "2026-12-07 21:27:04.000",
        "2026-12-07T21:27:04.000000",
        "2026-12-07T21:27:04+07:00",
        "2026-12-07 21:27:04+07",  # PostgreSQL timestamptz as text
        "2026-12-07T14:27:04Z",
        "2026-12-07T14:27:04.000Z",
        "2026-12-07T23:27:04+0900",
        "2026-12-07T09:27:04-05:00",
        "  2026-12-07T21:27:04 ",
    ],
)
def test_every_text_form_is_the_same_instant(text: str) -> None:
    assert parse_instant(text, VN) == MOMENT


def test_datetimes_and_dates() -> None:
    assert parse_instant(datetime(2026, 12, 7, 21, 27, 4), VN) == MOMENT  # MariaDB DATETIME, timestamp
    assert parse_instant(datetime(2026, 12, 7, 14, 27, 4, tzinfo=UTC), VN) == MOMENT  # timestamptz
    assert parse_instant(date(2026, 12, 7), VN) == datetime(2026, 12, 7, tzinfo=VN)
    assert parse_instant("2026-12-07 21:27", VN) == MOMENT.replace(second=0)


def test_naive_values_are_in_the_given_zone() -> None:
    assert parse_instant("2026-12-07 21:27:04", UTC) == MOMENT + timedelta(hours=7)


@pytest.mark.parametrize(
    "bad", ["", "07/12/2026 21:27", "yesterday", "2026-13-01T00:00:00", 1765117624, None]
)
def test_what_is_not_a_date_time_is_a_clear_error(bad: object) -> None:
    with pytest.raises(InstantError, match="date-time") as caught:
        parse_instant(bad, VN)
    assert repr(bad) in str(caught.value)


def test_the_cursor_is_stored_with_its_offset_and_read_back_in_every_older_form() -> None:
    assert cursor_text(MOMENT, VN) == "2026-12-07T21:27:04+07:00"
    assert cursor_text(MOMENT.replace(microsecond=120000), VN) == "2026-12-07T21:27:04.120000+07:00"
    assert cursor_text(MOMENT, UTC) == "2026-12-07T14:27:04+00:00"
    for stored in ("2026-12-07T21:27:04+07:00", "2026-12-07T21:27:04", "2026-12-07 21:27:04"):
        assert read_cursor(stored, VN) == MOMENT
    assert read_cursor("", VN) is None


def test_the_look_back_is_elapsed_time() -> None:
    assert earlier(MOMENT, 300) == datetime(2026, 12, 7, 21, 22, 4, tzinfo=VN)
    paris = ZoneInfo("Europe/Paris")  # clocks went back at 03:00 on 2026-10-25
    after_change = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=paris)
    assert (after_change.astimezone(UTC) - earlier(after_change, 3600).astimezone(UTC)) == timedelta(hours=1)


def test_column_values() -> None:
    assert column_value(MOMENT, VN, aware=False) == datetime(2026, 12, 7, 21, 27, 4)
    assert column_value(MOMENT, UTC, aware=False) == datetime(2026, 12, 7, 14, 27, 4)
    assert column_value(MOMENT, VN, aware=True) == MOMENT


def test_naive_text_is_the_shortest_form() -> None:
    assert naive_text(MOMENT, VN, "T") == "2026-12-07T21:27:04"
    assert naive_text(MOMENT, VN, " ") == "2026-12-07 21:27:04"
    assert naive_text(MOMENT.replace(second=0), VN, " ") == "2026-12-07 21:27"
    assert naive_text(MOMENT.replace(microsecond=500000), VN, "T") == "2026-12-07T21:27:04.5"
    assert naive_text(MOMENT.replace(second=0, microsecond=10), VN, "T") == "2026-12-07T21:27:00.00001"
    assert naive_text(MOMENT, UTC, "T") == "2026-12-07T14:27:04"


def test_day_text_widens_by_whole_days() -> None:
    assert day_text(MOMENT, VN, -2) == "2026-12-05"
    assert day_text(MOMENT, VN, 3) == "2026-12-10"
    assert day_text(datetime(2026, 12, 7, 18, tzinfo=UTC), VN, 0) == "2026-12-08"


def test_later_compares_instants() -> None:
    # the bug of issue #18: as text, a space form sorts before a T form of the same day
    assert "2026-12-07 21:27:04" < "2026-12-07T21:22:04"
    assert later("2026-12-07 21:27:04", "2026-12-07T21:22:04", VN)
    assert not later("2026-12-07T21:22:04", "2026-12-07 21:27:04", VN)
    assert later("2026-12-07T21:27:04", "2026-12-07T21:27:03+07:00", VN)
    assert later("2026-12-07T21:27:04", "", VN)
    assert not later("", "2026-12-07T21:27:04", VN)
    assert not later("garbage", "2026-12-07T21:27:04", VN)


def test_an_unknown_zone_names_key_and_value() -> None:
    assert zone("UTC") == ZoneInfo("UTC")
    for bad in ("Asia/Hanoi_City", "", "../etc/passwd", " UTC"):
        with pytest.raises(ValueError, match="unknown time zone"):
            zone(bad)
    with pytest.raises(ConfigError, match=r"province\.timezone: unknown time zone 'Asia/Saigon_X'"):
        Settings.load(None, province={"timezone": "Asia/Saigon_X"})
    assert Settings.load(None).province.timezone == "Asia/Ho_Chi_Minh"
    assert Settings.load(None, province={"timezone": "UTC"}).province.timezone == "UTC"


# ---------------------------------------------------------------------- properties

ZONES = st.sampled_from([VN, UTC, ZoneInfo("Europe/Paris"), ZoneInfo("America/Sao_Paulo")])
MOMENTS = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
).map(lambda m: m.replace(microsecond=m.microsecond if m.microsecond % 3 else 0))


def _truncated(moment: datetime, digits: int) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 10 ** (6 - digits) * 10 ** (6 - digits))


def _render(moment: datetime, tz: ZoneInfo, separator: str, digits: int, offset: bool, zulu: bool) -> str:
    """One of the many texts a source may hold for ``moment`` (fraction cut to ``digits``)."""
    spec = {0: "seconds", 3: "milliseconds", 6: "microseconds"}[digits]
    moment = _truncated(moment, digits)
    if zulu:
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=separator, timespec=spec) + "Z"
    local = moment.astimezone(tz)
    return (local if offset else local.replace(tzinfo=None)).isoformat(sep=separator, timespec=spec)


@settings(max_examples=300, deadline=None)
@given(
    MOMENTS,
    ZONES,
    st.sampled_from("T "),
    st.sampled_from([0, 3, 6]),
    st.booleans(),
    st.booleans(),
)
def test_any_rendering_parses_back(
    moment: datetime, tz: ZoneInfo, separator: str, digits: int, offset: bool, zulu: bool
) -> None:
    text = _render(moment, tz, separator, digits, offset, zulu)
    exact = _truncated(moment, digits)
    parsed = parse_instant(text, tz)
    if offset or zulu or parsed.utcoffset() == exact.astimezone(tz).utcoffset():  # not a repeated hour
        assert parsed == exact
    assert read_cursor(cursor_text(moment, tz), tz) == moment


@settings(max_examples=300, deadline=None)
@given(MOMENTS, MOMENTS, st.sampled_from("T "), st.sampled_from([VN, UTC]), st.integers(0, 3))
def test_naive_text_order_is_time_order_and_a_prefix_of_every_rendering(
    a: datetime, b: datetime, separator: str, tz: ZoneInfo, pad: int
) -> None:
    """What the keyset fast path stands on (zones without clock changes)."""
    if a > b:
        a, b = b, a
    short_a, short_b = naive_text(a, tz, separator), naive_text(b, tz, separator)
    assert parse_instant(short_a, tz) == a
    if a < b:
        assert short_a < short_b
    local = a.astimezone(tz)
    longer = local.replace(tzinfo=None).isoformat(sep=separator, timespec="microseconds") + "0" * pad
    assert longer.startswith(short_a)
    # any rendering of an earlier instant sorts before the shortest text of a later one
    if a < b:
        assert longer < short_b


@settings(max_examples=200, deadline=None)
@given(MOMENTS, st.floats(0, 10 * 86400, allow_nan=False))
def test_earlier_moves_back_by_elapsed_seconds(moment: datetime, seconds: float) -> None:
    back = earlier(moment.astimezone(ZoneInfo("Europe/Paris")), seconds)
    assert abs((moment - back).total_seconds() - seconds) < 1e-5
    assert earlier(moment, 0) == moment


def test_fixed_offsets_as_zones() -> None:
    plus7 = timezone(timedelta(hours=7))
    assert parse_instant("2026-12-07T21:27:04", plus7) == MOMENT
