"""The compiled mapping functions (``dvcsync.mapping.compiled``) against the closure pipeline they
replace: the same results for good and bad records, code compiled once per spec, the source shown
by ``dvcsync mappings compile --show``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dvcsync.cli import app
from dvcsync.mapping import MappingSet, MapResult, load_mappings
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
