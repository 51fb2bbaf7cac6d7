"""The sync's contract validation of mapped records (``CompiledMapping._validate``) runs on the
core-only fast path (``engine.fast_validator``, a ``FastValidator``, tried inline by the
generated functions) and answers exactly as the
model's own ``model_validate``: the same model (its wire form byte for byte) or the same
``FieldError``s (record, field, source, value, reason), over both profiles' generated samples with
bad values planted, and over every output field given values of every shape."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from dvcsync.contract._fast import FastValidator
from dvcsync.mapping import MappingSet, MapResult, load_mappings
from dvcsync.mapping.compiled import source_of
from dvcsync.mapping.engine import CompiledMapping, fast_validator

from .conftest import dossier_record
from .golden import PROFILES, read_records

DOSSIERS, SEED = 120, 11

# Values of every shape a mapped field may meet: canonical, variants the models normalise, wrong.
WILD: list[Any] = [
    "",
    " ",
    "0",
    "1",
    "4",
    "10",
    "99",
    "True",
    "true",
    "False",
    "20251120090000",
    "20240229120000",
    "20250229120000",
    "20251131000000",
    "2025112009000",
    "2025-11-20T09:00:00",
    "1.001193",
    "1.001193.000.00.00.H40",
    "4.001193",
    "8000",
    "08",
    "-5",
    "Nguyễn",
    "x" * 3000,
    None,
    0,
    7,
    -1,
    8000.0,
    3.5,
    True,
    [],
    {},
    [{"x": 1}],
]


def _outcome(result: MapResult) -> tuple[Any, ...]:
    value = result.value
    wire = value.model_dump_json(by_alias=True) if isinstance(value, BaseModel) else None
    return (result.record, result.skipped, result.errors, repr(value), wire)


def _both(cm: CompiledMapping, key: str, out: dict[str, Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    assert cm.model is not None
    fast = _outcome(cm._validate(key, dict(out)))
    full = _outcome(cm._validate(key, dict(out), check=cm.model.model_validate))
    return fast, full


@pytest.fixture(scope="module", params=sorted(PROFILES))
def profile(request: pytest.FixtureRequest) -> tuple[MappingSet, dict[str, list[dict[str, Any]]]]:
    folder, make = PROFILES[request.param]
    mset = load_mappings(folder)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "onestop.db"
        make(db, DOSSIERS, SEED)
        return mset, read_records(mset, db)


def test_mapping_validates_with_the_fast_path(shared_mappings: MappingSet) -> None:
    dossier = shared_mappings.get("dossier")
    assert dossier.model is not None
    assert isinstance(dossier._fast, FastValidator)
    assert dossier._fast is fast_validator(dossier.model)
    assert "fast_validate(out)" in source_of(dossier)


def test_sample_records_validate_as_the_model_does(
    profile: tuple[MappingSet, dict[str, list[dict[str, Any]]]],
) -> None:
    """Every top-level and child spec with a model, every generated record (bad values planted)."""
    mset, records = profile
    compared = fast_accepted = 0
    for source_name, rows in records.items():
        top = mset.get(source_name)
        children = [
            mset.get(name)
            for name, spec in sorted(mset.specs.items())
            if spec.items_of is not None and spec.items_of.mapping == source_name
        ]
        for row in rows:
            pairs = [(top, top.map(row, validate=False), row)]
            key = pairs[0][1].record
            for child in children:
                assert child.spec.items_of is not None
                for item in row.get(child.spec.items_of.child) or []:
                    pairs.append((child, child.map(item, parent=row, record_key=key, validate=False), item))
            for cm, mapped, source in pairs:
                if cm.model is None or mapped.errors or not isinstance(mapped.value, dict):
                    continue
                fast, full = _both(cm, mapped.record, mapped.value)
                assert fast == full, (cm.name, mapped.record)
                parent = None if cm is top else row
                inline = cm.map(source, parent=parent, record_key=mapped.record, validate=True)
                assert _outcome(inline) == full, (cm.name, mapped.record)
                compared += 1
                fast_accepted += _fast_accepts(cm, mapped.value)
    assert compared > DOSSIERS
    assert fast_accepted > compared * 0.9, (fast_accepted, compared)  # the fast path is the one taken


def _fast_accepts(cm: CompiledMapping, out: dict[str, Any]) -> bool:
    assert isinstance(cm._fast, FastValidator)
    try:
        cm._fast.fast.validate_python(dict(out))
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("spec_name", ["dossier", "step"])
def test_every_field_with_every_shape_of_value_validates_as_the_model_does(
    shared_mappings: MappingSet, spec_name: str
) -> None:
    """Each output field (and each field of the dossier's child items) replaced by each value of
    ``WILD``: the same model or the same errors naming record, field, source and value."""
    record = dossier_record()
    cm = shared_mappings.get(spec_name)
    if spec_name == "dossier":
        mapped = cm.map(record, validate=False)
    else:
        mapped = cm.map(record["steps"][0], parent=record, record_key="k", validate=False)
    assert mapped.ok and isinstance(mapped.value, dict)
    base = mapped.value
    refused = 0
    for field, current in base.items():
        for value in WILD:
            fast, full = _both(cm, mapped.record, {**base, field: value})
            assert fast == full, (field, value)
            refused += bool(full[2])
            if isinstance(current, list) and current and isinstance(current[0], dict):
                for inner in current[0]:
                    items = [{**current[0], inner: value}, *current[1:]]
                    fast, full = _both(cm, mapped.record, {**base, field: items})
                    assert fast == full, (field, inner, value)
    assert refused, "no value was refused: the comparison proved nothing"


@pytest.mark.parametrize(
    ("column", "value"),
    [("ngay_tiep_nhan", None), ("ngay_tiep_nhan", ""), ("ngay_tiep_nhan", "   ")],
)
def test_a_record_the_model_refuses_gives_the_models_errors(
    shared_mappings: MappingSet, column: str, value: Any
) -> None:
    """Through the generated function (its inline fast pass refuses, the model answers): the same
    errors as ``model_validate``, naming record, field, source column and value."""
    dossier = shared_mappings.get("dossier")
    record = dossier_record(**{column: value})
    mapped = dossier.map(record, validate=False)
    assert mapped.ok and isinstance(mapped.value, dict)
    assert dossier.model is not None
    result = dossier.map(record, validate=True)
    expected = dossier._validate(mapped.record, dict(mapped.value), check=dossier.model.model_validate)
    assert _outcome(result) == _outcome(expected)
    assert [(e.record, e.field, e.source, e.value) for e in result.errors] == [
        (mapped.record, "NgayTiepNhan", column, "''")
    ]
    assert "NgayTiepNhan is required once a dossier is received" in result.errors[0].reason
