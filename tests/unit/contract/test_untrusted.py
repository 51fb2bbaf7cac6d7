"""Checks for untrusted inbound JSON: every refusal names its field, nothing else escapes."""

from __future__ import annotations

import contextlib
import json
import math
import pickle
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvcsync.contract import CODE_FIELDS, UntrustedInput, check_strings, escape_for_log, parse_json
from dvcsync.contract._untrusted import deeper_than, json_depth

REPO = Path(__file__).resolve().parents[3]
PROMOTION = json.loads(
    (REPO / "tests/fixtures/contract/thongbaokhuyenmai_push.json").read_text(encoding="utf-8")
)


def refusal(raw: bytes | str, **kwargs: Any) -> UntrustedInput:
    with pytest.raises(UntrustedInput) as caught:
        parse_json(raw if isinstance(raw, bytes) else raw.encode(), **kwargs)
    return caught.value


def string_refusal(value: Any, **kwargs: Any) -> UntrustedInput:
    with pytest.raises(UntrustedInput) as caught:
        check_strings(value, **kwargs)
    return caught.value


# ---------------------------------------------------------------------------------------------- parse_json


def test_a_valid_body_parses_as_json_does() -> None:
    raw = json.dumps(PROMOTION, ensure_ascii=False).encode()
    assert parse_json(raw) == PROMOTION
    assert parse_json(b'{"a": [1, 2.5, true, null, "x"], "b": {}}') == {
        "a": [1, 2.5, True, None, "x"],
        "b": {},
    }
    assert parse_json(b'"\\ud83d\\ude00"') == "\U0001f600"  # a surrogate pair is one character
    assert parse_json(b'{"a": 1, "a": 2}') == {"a": 2}  # duplicate keys: the last one wins


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe{}", b'{"MaHoSo": "\xc3"}', b'{"a": "\xed\xa0\x80"}', b"\xef\xbb\xbf{}"],
    ids=["invalid-start", "truncated", "utf8-encoded-surrogate", "bom"],
)
def test_bytes_that_are_not_strict_utf8_are_refused(raw: bytes) -> None:
    error = refusal(raw)
    assert error.field == "" and error.reason


@pytest.mark.parametrize(
    "raw", [b"", b"   ", b"not json", b"{", b'{"a": 1,}', b"[1 2]", b"{'a': 1}", b'{"a": "\x01"}', b"1 2"]
)
def test_syntax_errors_are_refused(raw: bytes) -> None:
    error = refusal(raw)
    assert error.field == "" and "JSON" in error.reason


@pytest.mark.parametrize("raw", [b"NaN", b"[Infinity]", b'{"SoTien": -Infinity}', b"[1e999]", b"-1e400"])
def test_non_finite_numbers_are_refused(raw: bytes) -> None:
    refusal(raw)


def test_an_integer_beyond_the_digit_limit_is_refused_not_a_crash() -> None:
    refusal(b"[" + b"9" * 5000 + b"]")


def test_200000_deep_is_refused_fast_without_recursion() -> None:
    for raw in (
        b"[" * 200_000 + b"]" * 200_000,
        b'{"a":' * 200_000 + b"1" + b"}" * 200_000,
        b"[" * 200_000,  # unbalanced too
        b"[]," * 300_000 + b"[" * 200_000,  # a flat prefix first
    ):
        error = refusal(raw)  # a RecursionError would escape pytest.raises(UntrustedInput)
        assert error.field == "" and "32" in error.reason


def test_depth_limit_is_exact_and_brackets_in_strings_do_not_count() -> None:
    def nested(depth: int) -> str:
        opened = "".join('{"k":' if i % 2 else "[0," for i in range(depth))
        return opened + '"[[[{{{"' + "".join("}" if i % 2 else "]" for i in reversed(range(depth)))

    for depth in (0, 1, 31, 32, 33):
        assert json_depth(nested(depth)) == depth
        assert deeper_than(nested(depth), 32) is (depth > 32)
    assert parse_json(nested(32).encode()) is not None
    refusal(nested(33))
    assert parse_json(nested(3).encode(), max_depth=3) is not None
    refusal(nested(4), max_depth=3)
    assert parse_json(b'["[[[[[[[[", "\\"[[[[", "\\\\", "]]]"]', max_depth=1) == [
        "[[[[[[[[",
        '"[[[[',
        "\\",
        "]]]",
    ]


def _best_of_three(raw: bytes) -> float:
    """The parser's own time: the collector is off while it runs (in a long pytest process a full
    collection triggered by the 700,000 small lists of one input costs with the whole heap, which
    once made a linear parse look 46x slower at 4x the size)."""
    import gc

    best = float("inf")
    gc.collect()  # once: a collection costs with the whole heap (~1 s in a full run)
    gc.disable()
    try:
        for _ in range(3):
            started = time.perf_counter()
            with contextlib.suppress(UntrustedInput):
                parse_json(raw)
            best = min(best, time.perf_counter() - started)
    finally:
        gc.enable()
    return best


def test_adversarial_texts_are_linear() -> None:
    """Unterminated strings of escaped quotes, backslashes, many tiny containers: the time grows
    with the size, not its square. Compared as a ratio against a quarter of the input in the same
    run (a loaded machine slows both), never against a fixed time."""
    two_mib = 2 * 1024 * 1024
    for make in (
        lambda n: b'"' + b'\\"' * (n // 2),
        lambda n: b'"' + b"\\" * n,
        lambda n: b'"' * n,
        lambda n: b"[" + b"[]," * (n // 3 - 1) + b"[]]",
        lambda n: b"[[][[][[]" * (n // 9),
    ):
        quarter, whole = _best_of_three(make(two_mib // 4)), _best_of_three(make(two_mib))
        # linear: about 4x; quadratic: 16x. The allowance absorbs noise on millisecond timings.
        assert whole < 8 * quarter + 0.05, (whole, quarter)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"MaHoSo": "\\ud800"}', "MaHoSo"),
        (b'{"MaHoSo": "G22\\udfff"}', "MaHoSo"),
        (b'{"DiaChiDoanhNghiep": {"MaXa": "\\udbff"}}', "DiaChiDoanhNghiep.MaXa"),
        (
            b'{"TaiLieuNop": [{"TenTepDinhKem": "a"}, {"TenTepDinhKem": "\\ud800.pdf"}]}',
            "TaiLieuNop[1].TenTepDinhKem",
        ),
        (b'{"a": "\\ude00\\ud83d"}', "a"),  # a pair in the wrong order is two lone halves
        (b'["x", "\\ud800"]', "[1]"),
        (b'"\\ud800"', ""),
    ],
)
def test_lone_surrogates_are_refused_naming_the_field(raw: bytes, field: str) -> None:
    error = refusal(raw)
    assert error.field == field and "surrogate" in error.reason


def test_a_lone_surrogate_in_a_key_is_refused() -> None:
    error = refusal(b'{"Ma\\ud800": 1}')
    assert "\\ud800" in error.field and "surrogate" in error.reason
    json.dumps(error.field).encode()  # the field itself is safe to print
    error.field.encode("utf-8")


def test_an_escaped_backslash_before_u_is_no_surrogate() -> None:
    assert parse_json(b'{"a": "\\\\ud800"}') == {"a": "\\ud800"}


def test_the_error_is_a_value_error_with_field_and_reason() -> None:
    error = refusal(b'{"MaHoSo": "\\ud800"}')
    assert isinstance(error, ValueError)
    assert str(error).startswith("MaHoSo: ")
    again = pickle.loads(pickle.dumps(error))
    assert (again.field, again.reason) == (error.field, error.reason)


# ---------------------------------------------------------------------------------------------- check_strings


def test_the_fixture_passes() -> None:
    check_strings(PROMOTION)
    check_strings({"TaiLieuNop": [], "DiaChiDoanhNghiep": None, "SoTien": 8000, "x": [None, True, 1.5]})


@pytest.mark.parametrize("bad", ["\x00", "\u202e", "\n", "\t", "\x7f", "\x85", "\u200b", "\ufeff", "\u2066"])
def test_control_and_invisible_characters_are_refused_in_a_code(bad: str) -> None:
    error = string_refusal({**PROMOTION, "MaHoSo": f"G22.99{bad}-251120-0003"})
    assert error.field == "MaHoSo"
    assert f"U+{ord(bad):04X}" in error.reason
    assert bad not in error.reason and bad not in str(error)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"DiaChiDoanhNghiep": {"MaXa": "06658\x00"}}, "DiaChiDoanhNghiep.MaXa"),
        (
            {"TaiLieuNop": [{"TenTepDinhKem": "a.pdf"}, {"TenTepDinhKem": "gpj.\u202eexe"}]},
            "TaiLieuNop[1].TenTepDinhKem",
        ),
        ({"MaThamChieu": "REF\n2026-01-01 WARNING forged"}, "MaThamChieu"),
        ({"MaDoiTac": "H40\u200e"}, "MaDoiTac"),
        ({"MaHoSo": ["ok", "x\x01"]}, "MaHoSo[1]"),  # the items of a list under a code key are codes
        ({"MaTinh": "22\u061c"}, "MaTinh"),
    ],
)
def test_refusals_name_the_dotted_path(value: Any, field: str) -> None:
    assert string_refusal(value).field == field


def test_tab_newline_and_carriage_return_are_free_text_only() -> None:
    text = "Dòng một\r\n\tdòng hai\nكلمة \u200f (RLM is fine in prose)"
    check_strings({**PROMOTION, "NoiDungChiTiet": text})
    assert string_refusal({**PROMOTION, "SoVanBan": "125/2025\n"}).field == "SoVanBan"
    assert string_refusal({**PROMOTION, "MaSoThue": "5700\t123456"}).field == "MaSoThue"


@pytest.mark.parametrize(
    "bad", ["\x00", "\x08", "\x0b", "\x1b", "\x7f", "\x9b", "\u202a", "\u202e", "\u2069"]
)
def test_free_text_refuses_other_controls_and_bidi_overrides(bad: str) -> None:
    error = string_refusal({**PROMOTION, "NoiDungChiTiet": f"Áp dụng{bad}"})
    assert error.field == "NoiDungChiTiet" and f"U+{ord(bad):04X}" in error.reason


def test_keys_are_held_to_the_code_rule() -> None:
    error = string_refusal({**PROMOTION, "Ma\u202eHoSo": "x"})
    assert "\\u202e" in error.field and "\u202e" not in error.field
    assert string_refusal({"DiaChiDoanhNghiep": {"Ma\nXa": 1}}).field == "DiaChiDoanhNghiep.Ma\\x0aXa"


def test_a_surrogate_in_a_python_value_is_refused_too() -> None:
    assert string_refusal({"HinhThucKhuyenMai": "a\ud800"}).field == "HinhThucKhuyenMai"


def test_wrong_types_are_left_to_the_models() -> None:
    """A list or an object where text is expected is the pydantic models' business: tolerated here,
    their strings still checked."""
    check_strings({**PROMOTION, "MaHoSo": ["x"], "TenThuongNhan": {"a": "b"}, "MaTTHC": 2.5, "Email": None})
    check_strings({"MaHoSo": {"nested": {"deeper": ["ok", 1, None]}}})
    check_strings(["a", 1, None, {"b": []}])
    check_strings(None)
    check_strings(12)
    assert string_refusal({"TenThuongNhan": {"MaXa": "\x00"}}).field == "TenThuongNhan.MaXa"


def test_custom_code_fields_and_root_path() -> None:
    check_strings({"Ghi": "a\nb"})
    assert string_refusal({"Ghi": "a\nb"}, code_fields=frozenset({"Ghi"})).field == "Ghi"
    assert string_refusal("x\n", path="body.MaHoSo").field == "body.MaHoSo"
    assert (
        string_refusal(["x\n"], path="TaiLieuNop[0].TenTepDinhKem").field == "TaiLieuNop[0].TenTepDinhKem[0]"
    )
    check_strings("x\n", path="NoiDungChiTiet")
    assert {"MaHoSo", "MaThamChieu", "MaXa", "TenTepDinhKem", "LoaiBanTin", "MaLoi"} <= CODE_FIELDS


def test_deep_and_cyclic_python_values_do_not_recurse() -> None:
    deep: Any = "ok"
    for _ in range(200_000):
        deep = [deep]
    check_strings(deep)
    bad: Any = {"MaHoSo": "\x00"}
    for _ in range(200_000):
        bad = {"a": bad}
    assert string_refusal(bad).field.endswith("a.a.MaHoSo")
    cyclic: dict[str, Any] = {"NoiDungChiTiet": "ok"}
    cyclic["self"] = cyclic
    check_strings(cyclic)


# --------------------------------------------------------------------------------------------- escape_for_log


def test_escape_for_log_escapes_what_could_forge_or_hide() -> None:
    assert escape_for_log("REF-1\n2026 WARNING x") == "REF-1\\x0a2026 WARNING x"
    assert escape_for_log("a\x00b\r\t\x1b[31m") == "a\\x00b\\x0d\\x09\\x1b[31m"
    assert escape_for_log("gpj.\u202eexe\u2066\ufeff") == "gpj.\\u202eexe\\u2066\\ufeff"
    assert escape_for_log("\ud800") == "\\ud800"
    assert escape_for_log("a\\x0ab") == "a\\\\x0ab"  # a literal backslash cannot pass for an escape
    assert escape_for_log("Hồ sơ Bãi Cháy €") == "Hồ sơ Bãi Cháy €"
    assert escape_for_log("\U000e0001") == "\\U000e0001"


def test_escape_for_log_cuts_at_the_limit() -> None:
    assert escape_for_log("x" * 500) == "x" * 200 + "…"
    assert escape_for_log("abc", limit=3) == "abc"
    assert escape_for_log("abcd", limit=3) == "abc…"
    assert escape_for_log("ab\ncd", limit=4) == "ab…"  # never half an escape
    assert escape_for_log("\n" * 10_000_000, limit=10) == "\\x0a\\x0a…"
    assert escape_for_log("", limit=0) == ""
    assert escape_for_log("a", limit=0) == "…"


@given(st.text(st.characters(codec=None), max_size=300), st.integers(0, 300))
@settings(max_examples=300, deadline=None)
def test_escaped_text_is_one_safe_printable_line(text: str, limit: int) -> None:
    out = escape_for_log(text, limit)
    assert len(out) <= limit + 1
    assert out.isprintable()
    out.encode("utf-8")
    if len(text) <= limit and text.isprintable() and "\\" not in text:
        assert out == text


# ---------------------------------------------------------------------------------------------- properties

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None))  # any code point: controls and lone surrogates too
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(st.characters(codec=None), max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(JSON_VALUES, st.booleans())
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_parse_json_returns_the_value_or_refuses(value: Any, ascii_only: bool) -> None:
    try:
        raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate raw in the text cannot even be sent as UTF-8
        raw = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        parsed = parse_json(raw)
    except UntrustedInput as error:
        assert isinstance(error.field, str) and error.reason
        return
    assert _same(parsed, value)


@given(JSON_VALUES, st.sampled_from(sorted(CODE_FIELDS)))
@settings(max_examples=300, deadline=None)
def test_check_strings_refuses_or_passes_never_crashes(value: Any, key: str) -> None:
    for candidate in (value, {key: value}, [value]):
        try:
            check_strings(candidate)
        except UntrustedInput as error:
            assert error.reason
            error.field.encode("utf-8")  # the path is printable as it is
            assert error.field.isprintable()


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_random_bytes_parse_or_are_refused(raw: bytes) -> None:
    with contextlib.suppress(UntrustedInput):
        parse_json(raw)
