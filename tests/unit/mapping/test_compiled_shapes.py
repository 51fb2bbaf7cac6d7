"""The generated functions' ``str`` branch (checks dropped where the value is known to pass them, a
code table's hit knowing the table's values) against the closure pipeline, for every spec of both
profiles: each column of a few sample rows (and of their child rows) given a value of every shape,
the result (key, skip, errors, value) must be the closures' own."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from dvcsync.mapping import MappingSet, MapResult, load_mappings

from .conftest import dossier_record
from .golden import PROFILES, read_records

ROWS = 4
SHAPES: list[Any] = [
    None,
    "",
    "   ",
    " padded text ",
    "Nguy\udcc3n",
    "Nguyễn Thị",
    "x" * 3000,
    "2025-08-12T09:15:00",
    "2024-02-29 10:00:00",
    "2025-02-30T10:00:00",
    "NOPE",
    7,
    -1,
    3.5,
    True,
]


def _same(a: MapResult, b: MapResult) -> None:
    assert (a.record, a.skipped, a.errors, repr(a.value)) == (b.record, b.skipped, b.errors, repr(b.value))


def _variants(row: dict[str, Any]) -> list[dict[str, Any]]:
    """``row`` with each column given each shape, and each of its code-like texts padded with blanks."""
    columns = [k for k, v in row.items() if not isinstance(v, list)]
    out = [{**row, column: shape} for column in columns for shape in SHAPES]
    out += [{**row, column: f" {row[column]} "} for column in columns if isinstance(row[column], str)]
    return out


@pytest.fixture(scope="module", params=sorted(PROFILES))
def profile(request: pytest.FixtureRequest) -> tuple[MappingSet, dict[str, list[dict[str, Any]]]]:
    folder, make = PROFILES[request.param]
    mset = load_mappings(folder)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "onestop.db"
        make(db, 30, 11)
        records = read_records(mset, db)
    return mset, records


def test_every_shape_in_every_column_maps_as_the_closures_do(
    profile: tuple[MappingSet, dict[str, list[dict[str, Any]]]],
) -> None:
    mset, records = profile
    checked = 0
    for source_name, rows in records.items():
        top = mset.get(source_name)
        children = [
            mset.get(name)
            for name, spec in mset.specs.items()
            if spec.items_of is not None and spec.items_of.mapping == source_name
        ]
        for row in rows[:ROWS]:
            for record in _variants(row):
                for validate in (True, False):
                    _same(top.map(record, validate=validate), top.map_closures(record, validate=validate))
                    checked += 1
            for child_spec in children:
                assert child_spec.spec.items_of is not None
                for child in (row.get(child_spec.spec.items_of.child) or [])[:2]:
                    for variant in _variants(child):
                        _same(
                            child_spec.map(variant, parent=row, record_key="k"),
                            child_spec.map_closures(variant, parent=row, record_key="k"),
                        )
                        checked += 1
    assert checked > 1000


def test_a_skipped_child_row_maps_as_the_closures_do(mappings_dir: Path) -> None:
    """A child row its code table skips: the child's function gives its ``MapResult`` (a row of a
    child list otherwise gives ``(value, errors)``), the parent's result is the closures' own."""
    (mappings_dir / "codes" / "fee_collection_decisions.yaml").write_text(
        "name: fee_collection_decisions\ndescription: test overlay\noverlays: fee_collection\n"
        "entries: {}\nskip: {thu_sau: {reason: no national equivalent}}\n",
        encoding="utf-8",
    )
    dossier = load_mappings(mappings_dir).get("dossier")
    good = dossier_record()
    fees = [{**good["fees"][0], "hinh_thuc_thu": "thu_sau"}, {**good["fees"][0], "id": 2}]
    record = dossier_record(fees=fees)
    for validate in (True, False):
        mapped = dossier.map(record, validate=validate)
        _same(mapped, dossier.map_closures(record, validate=validate))
        assert any("no national equivalent" in error.reason for error in mapped.errors)
