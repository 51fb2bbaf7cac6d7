"""The compiled mapping functions (``dvcsync.mapping.compiled``) against the closure pipeline they
replace: the same results for good and bad records, code compiled once per spec, the source shown
by ``dvcsync mappings compile --show``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dvcsync.cli import app
from dvcsync.mapping import MappingSet, MapResult, compiled, load_mappings
from dvcsync.mapping.compiled import _CACHE, source_of, spec_hash

from .conftest import REPO, dossier_record

BAD: list[Any] = [
    "Nguy\udcc3n",
    "2025-02-30T10:00:00",
    "2025-08-12 09:15:00",
    "NOPE",
    None,
    "",
    " ",
    "x" * 2000,
    7,
    -1,
]


def _same(a: MapResult, b: MapResult) -> None:
    assert (a.record, a.skipped, a.errors, repr(a.value)) == (b.record, b.skipped, b.errors, repr(b.value))


def test_every_planted_bad_value_maps_as_the_closures_do(shared_mappings: MappingSet) -> None:
    dossier, step = shared_mappings.get("dossier"), shared_mappings.get("step")
    good = dossier_record()
    columns = [k for k, v in good.items() if not isinstance(v, list)]
    for column in columns:
        for bad in BAD:
            record = dossier_record(**{column: bad})
            for validate in (True, False):
                _same(dossier.map(record, validate=validate), dossier.map_closures(record, validate=validate))
            for child in record["steps"]:
                child = {**child, "thoi_diem": bad}
                _same(
                    step.map(child, parent=record, record_key="k"),
                    step.map_closures(child, parent=record, record_key="k"),
                )


def test_a_record_that_is_not_a_dict_takes_the_closures(shared_mappings: MappingSet) -> None:
    class Row(dict[str, Any]):
        pass

    record = dossier_record()
    dossier = shared_mappings.get("dossier")
    _same(dossier.map(Row(record)), dossier.map(record))


def test_code_is_compiled_once_per_spec_hash(tmp_path: Path) -> None:
    first = load_mappings(REPO / "mappings").get("step")
    cached = _CACHE[spec_hash(first)][1]
    second = load_mappings(REPO / "mappings").get("step")
    assert spec_hash(second) == spec_hash(first)
    assert _CACHE[spec_hash(second)][1] is cached
    assert "def map_step(record, parent, record_key, validate):" in source_of(second)


def test_mappings_compile_lists_and_shows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    command = ["mappings", "compile", "--mappings", str(REPO / "mappings")]
    listed = runner.invoke(app, command)
    assert listed.exit_code == 0, listed.output
    assert "dossier" in listed.output and "status_report" in listed.output
    shown = runner.invoke(app, [*command, "--show", "step"])
    assert shown.exit_code == 0, shown.output
    compile(shown.stdout, "<shown>", "exec")  # the printed source is the Python that runs
    assert "def map_step(" in shown.stdout
    missing = runner.invoke(app, [*command, "--show", "nope"])
    assert missing.exit_code == 2
    assert "no mapping 'nope'" in missing.output


# Every part on and past its bounds: a month of 30 days' 31st, 29-30 February, hour 24, second 60.
near_bounds = st.builds(
    "{}-{:02d}-{:02d}{}{:02d}:{:02d}:{:02d}".format,
    st.sampled_from(["0000", "0001", "0999", "1900", "2000", "2024", "2025", "9999"]),
    st.integers(0, 13),
    st.integers(0, 32),
    st.sampled_from("T "),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 60),
)
moments = st.one_of(
    near_bounds,
    st.builds(
        lambda d, sep: d.replace(microsecond=0).isoformat(sep=sep),
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
        st.sampled_from("T "),
    ),
    st.sampled_from(
        [
            "2024-02-29T10:00:00",
            "2025-02-29T10:00:00",
            "2025-06-30T23:59:59",
            "2025-07-01 00:00:00",
            "0000-01-01T00:00:00",
            "2025-08-12T24:00:00",
            "2025-08-12",
            "2025-08-12T09:15:00+07:00",
            "2025-08-12T09:15:00Z",
            "２０２５-08-12T09:15:00",
            " 2025-08-12T09:15:00",
            "",
            "  ",
            None,
        ]
    ),
    st.text(max_size=20),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moment=moments, agency=st.sampled_from(["HUYEN-A", "XA-MOI-1", "SO-TP", "NOPE", ""]))
def test_datetimes_and_dated_look_ups_map_as_the_closures_do(
    shared_mappings: MappingSet, moment: Any, agency: str
) -> None:
    """The inline ``datetime`` format and the dated look-up's cache per (key, day) (``ngay_nop`` is
    both a datetime and the agencies' ``as_of``): the closures' result, the second time too."""
    dossier, step = shared_mappings.get("dossier"), shared_mappings.get("step")
    record = dossier_record(ngay_nop=moment, ngay_tiep_nhan=moment, ma_don_vi=agency)
    for _ in range(2):
        _same(dossier.map(record), dossier.map_closures(record))
    child = {**record["steps"][0], "thoi_diem": moment}
    _same(
        step.map(child, parent=record, record_key="k"),
        step.map_closures(child, parent=record, record_key="k"),
    )


def test_the_dated_look_up_cache_is_bounded(
    shared_mappings: MappingSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiled, "_DATED_CACHE_LIMIT", 3)
    dossier = shared_mappings.get("dossier")
    for day in range(1, 20):
        record = dossier_record(ngay_nop=f"2025-06-{day:02d}T08:00:00", ma_don_vi="HUYEN-A")
        _same(dossier.map(record), dossier.map_closures(record))
    caches = [v for k, v in dossier._compiled.__globals__.items() if k.startswith("dated_")]
    assert caches and all(0 < len(cache) <= 3 for cache in caches)
