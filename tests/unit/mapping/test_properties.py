"""Properties: any sample dossier maps to a valid contract item or to reasons, never to a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvcsync.contract import HoSo, TienDo
from dvcsync.mapping import MappingSet

from .conftest import dossier_record

PERSONAL = {"SoGiayToChuHoSo": "so_giay_to", "SoDienThoai": "dien_thoai", "Email": "email"}
columns = st.sampled_from(
    [
        "so_ho_so",
        "ma_thu_tuc",
        "chu_ho_so",
        "loai_chu_ho_so",
        "so_giay_to",
        "dien_thoai",
        "email",
        "kenh_nop",
        "trich_yeu",
        "ngay_nop",
        "ngay_tiep_nhan",
        "ngay_hen_tra",
        "ngay_tra",
        "trang_thai",
        "ma_don_vi",
        "hinh_thuc_nhan",
    ]
)
junk = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.text(alphabet=st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF), min_size=1, max_size=3),
    st.integers(-(10**12), 10**12),
    st.sampled_from(["2025-02-29T10:00:00", "2024-02-29T10:00:00", "2025-13-01T00:00:00", "x" * 1200, ""]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.dictionaries(columns, junk, max_size=4))
def test_any_dossier_maps_or_says_why(shared_mappings: MappingSet, mutations: dict[str, Any]) -> None:
    mset = shared_mappings
    record = dossier_record(**mutations)
    result = mset.get("dossier").map(record)
    if result.ok:
        assert isinstance(result.value, HoSo)
        HoSo.model_validate(result.value.to_wire())  # what we emit, the contract accepts
    else:
        assert result.value is None
        for error in result.errors:
            assert error.record and error.field and error.reason
            assert error.field != "(record)", error  # every reason names a field
            column = PERSONAL.get(error.field)
            value = record.get(column) if column else None
            if isinstance(value, str) and len(value) > 4:
                assert value not in error.value, f"{column} leaked in {error}"
    for step in record["steps"]:
        step_result = mset.get("step").map(step, parent=record, record_key=result.record)
        assert step_result.ok == isinstance(step_result.value, TienDo)


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(
        min_value=__import__("datetime").datetime(1990, 1, 1),
        max_value=__import__("datetime").datetime(2090, 1, 1),
    )
)
def test_province_dates_round_trip_through_the_wire(moment: Any) -> None:
    from dvcsync.mapping.engine import _fmt_datetime, _fmt_wire_datetime

    local = moment.replace(microsecond=0).isoformat(timespec="seconds")
    wire = _fmt_datetime(local, None)  # type: ignore[arg-type]
    assert len(wire) == 14 and wire.isdigit()
    assert _fmt_wire_datetime(wire, None) == local  # type: ignore[arg-type]
