"""The core-only first pass (``dvcsync.contract._fast``) accepts a subset of what the models accept,
with the very same result, and leaves no per-field Python validator on the hot path.

Each property puts one generated value (canonical, a variant real clients send, or wrong) into a
valid dossier, validates it with the fast copy alone and with the model, and requires: the copy
refuses it, or both accept it with equal models and equal wire forms. ``FastValidator`` itself
must then answer exactly as the model does, errors included.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dvcsync.contract import DongBoHoSoMCRequest, HoSo, TienDo, parse_wire_datetime
from dvcsync.contract._fast import MA_TTHC_PATTERN, WIRE_DATE_PATTERN, FastValidator, fast_schema
from mock_portal.testing import sample_dossier

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "contract"

HOSO: FastValidator[HoSo] = FastValidator(HoSo)
HOSO_LIST: FastValidator[list[HoSo]] = FastValidator(list[HoSo])
REQUEST: FastValidator[DongBoHoSoMCRequest] = FastValidator(DongBoHoSoMCRequest)
TIENDO: FastValidator[TienDo] = FastValidator(TienDo)

# Values of every shape the wire types meet: canonical text, the variants they normalise, and wrong.
wild = st.one_of(
    st.sampled_from(["", " ", "0", "1", "2", "4", "7", "10", "11", "True", "False", "true", "TRUE", " 1 "]),
    st.sampled_from(["20251120090000", "20240229120000", "20250229120000", "20251131000000"]),
    st.sampled_from(["20251120240000", "00000101000000", "2025112009000", "202511200900000", "٢٠٢٥"]),
    st.sampled_from(["1.001193", "1.001193.000.00.00.H40", "4.001193", "1.00119", "1.001193.000.00.00.X40"]),
    st.sampled_from(["8000", "08", "8.000", "-5", "1_000", "+7", "99999999999999999999"]),
    st.text(max_size=12),
    st.integers(min_value=-3, max_value=12),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just(8000.0),
)

DOSSIER_FIELDS = sorted(HoSo.model_fields)
NESTED = {
    "DinhDanhCHS": ["LoaiDinhDanh", "SoDinhDanh"],
    "TaiLieuNop": ["TepDinhKemId", "TenTepDinhKem", "IsDeleted", "DuocSoHoa", "DuocTaiSuDung"],
    "DanhSachLePhi": ["TenPhiLePhi", "Gia", "HinhThucThu", "LoaiPhiLePhi"],
}


def outcome(validate: Any, data: Any) -> tuple[str, Any]:
    try:
        value = validate(data)
    except ValidationError as exc:
        # ``ctx`` holds the raised exception: compared by its text, not by identity
        return "refused", [
            {**e, "ctx": {k: str(v) for k, v in e.get("ctx", {}).items()}}
            for e in exc.errors(include_url=False)
        ]
    return "accepted", value


def assert_subset(fast: FastValidator[Any], data: dict[str, Any]) -> None:
    """The copy refuses, or agrees with the model exactly; the combined validator is the model."""
    as_json = json.dumps(data, ensure_ascii=False)
    for mode, raw in (("python", data), ("json", as_json)):
        full = outcome(getattr(fast.full, f"validate_{mode}"), raw)
        first = outcome(getattr(fast.fast, f"validate_{mode}"), raw)
        if first[0] == "accepted":
            assert full[0] == "accepted", (mode, data, full)
            assert type(first[1]) is type(full[1])
            assert first[1] == full[1]
            assert first[1].model_fields_set == full[1].model_fields_set
            assert first[1].to_wire() == full[1].to_wire()
        combined = outcome(getattr(fast, f"validate_{mode}"), raw)
        assert combined[0] == full[0]
        if full[0] == "refused":
            assert combined[1] == full[1]  # the same errors, messages included
        else:
            assert combined[1] == full[1] and combined[1].to_wire() == full[1].to_wire()


@settings(max_examples=300)
@given(st.sampled_from(DOSSIER_FIELDS), wild, st.sampled_from(["1", "4", "9"]))
def test_one_wild_field_of_a_dossier(field: str, value: Any, status: str) -> None:
    body = sample_dossier(7, status=status)
    body[field] = value
    assert_subset(HOSO, body)


@settings(max_examples=300)
@given(st.sampled_from([(k, f) for k, fields in NESTED.items() for f in fields]), wild)
def test_one_wild_field_of_a_nested_item(where: tuple[str, str], value: Any) -> None:
    name, field = where
    body = sample_dossier(8)
    body.setdefault("DinhDanhCHS", [{"LoaiDinhDanh": "1", "SoDinhDanh": "001203004567"}])
    body.setdefault("DanhSachLePhi", [{"TenPhiLePhi": "Lệ phí", "Gia": "8000"}])
    body[name] = [dict(body[name][0], **{field: value})]
    assert_subset(HOSO, body)


@settings(max_examples=150)
@given(
    st.sampled_from(["MaHoSo", "NguoiXuLy", "ThoiDiemXuLy", "NoiDungXuLy", "TrangThai", "NgayBatDau"]), wild
)
def test_one_wild_field_of_a_history_entry(field: str, value: Any) -> None:
    entry = {
        "MaHoSo": "000.00.01.H40-251120-000001",
        "NguoiXuLy": "Trần Văn An",
        "ThoiDiemXuLy": "20251120093000",
        "NoiDungXuLy": "Tiếp nhận hồ sơ",
        "TrangThai": "2",
    }
    entry[field] = value
    assert_subset(TIENDO, entry)


@settings(max_examples=100)
@given(st.sampled_from(["isUpdating", "service", "session", "madonvi"]), wild)
def test_one_wild_field_of_the_envelope(field: str, value: Any) -> None:
    body = {
        "session": "s",
        "madonvi": "000.00.01.H40",
        "service": "DongBoHoSoMC",
        "data": [sample_dossier(1)],
    }
    body[field] = value
    assert_subset(REQUEST, body)


def test_every_day_the_date_pattern_takes_exists() -> None:
    """Every day of four years around leap days (and 1900, 2000, 2100 on 29 February), at edge
    times: the pattern accepts only moments that exist, and all of them but 29 February."""
    import re

    pattern = re.compile(WIRE_DATE_PATTERN)
    days = [date(2023, 1, 1) + timedelta(n) for n in range(366 * 4)]
    odd = ["19000229", "20000229", "21000229", "00010101", "99991231", "00000101", "20251301", "20250001"]
    texts = [d.strftime("%Y%m%d") for d in days] + odd
    for day in texts:
        for moment in ("000000", "235959", "240000", "126000", "120060"):
            text = day + moment
            try:
                exists = parse_wire_datetime(text) is not None
            except ValueError:
                exists = False
            if pattern.fullmatch(text):
                assert exists, text
            elif exists:
                assert text[4:8] == "0229", text  # only leap days go to the full check
    assert pattern.fullmatch("")


def test_procedure_code_pattern_is_the_contract_one_in_ascii() -> None:
    import re

    from dvcsync.contract import MA_TTHC_RE

    for text in ["1.001193", "3.000001.000.00.00.G12", "1.001193.000.00.00.H40", "4.001193", "1.0011933"]:
        assert bool(re.fullmatch(MA_TTHC_PATTERN, text)) == bool(MA_TTHC_RE.fullmatch(text))
    assert MA_TTHC_RE.fullmatch("1.٠٠١١٩٣") and not re.fullmatch(MA_TTHC_PATTERN, "1.٠٠١١٩٣")


def functions(schema: Any) -> list[str]:
    if isinstance(schema, list):
        return [name for item in schema for name in functions(item)]
    if not isinstance(schema, dict):
        return []
    spec = schema.get("function")
    own = [spec["function"].__qualname__] if isinstance(spec, dict) else []
    return own + [name for value in schema.values() for name in functions(value)]


def test_no_per_field_python_validator_is_left_on_the_hot_path() -> None:
    """Only the two record-level checks stay in Python: once a dossier, once a fee."""
    left = functions(fast_schema(DongBoHoSoMCRequest.__pydantic_core_schema__))
    assert sorted(set(left)) == ["HoSo._received_unless_new", "LePhi._empty_price_is_absent"]
    assert functions(fast_schema(TienDo.__pydantic_core_schema__)) == []


def test_the_fast_pass_takes_the_canonical_batch_and_the_models_stay_complete() -> None:
    body = {
        "session": "s",
        "madonvi": "m",
        "service": "DongBoHoSoMC",
        "data": [sample_dossier(n) for n in range(5)],
    }
    raw = json.dumps(body, ensure_ascii=False)
    assert REQUEST.fast.validate_json(raw) == DongBoHoSoMCRequest.model_validate_json(raw)
    assert all(cls.__pydantic_complete__ for cls in (HoSo, TienDo, DongBoHoSoMCRequest))
    # the models' own validators are untouched: a variant still goes through them
    assert HoSo.model_validate(dict(sample_dossier(1), TrangThaiHoSo=4)).TrangThaiHoSo == "4"


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in FIXTURES.glob("dongbohosomc_request*.json") if ".canonical." not in p.name),
)
def test_golden_batches_read_the_same(name: str) -> None:
    raw = (FIXTURES / name).read_text(encoding="utf-8")
    expected = DongBoHoSoMCRequest.model_validate_json(raw)
    assert REQUEST.validate_json(raw) == expected
    assert REQUEST.validate_json(raw).to_wire() == expected.to_wire()
    assert HOSO_LIST.validate_python(json.loads(raw)["data"]) == expected.data
