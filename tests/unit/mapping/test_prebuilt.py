"""Models built without validation (``dvcsync.mapping.shapes``, where the generated code shows every
field is what the model accepts) against the models' own validation: for every spec of both
profiles whose model allows it, over sample rows with each column given a value of every shape,
the model (its ``__dict__`` in order, fields set, extra and private parts, ``repr``, JSON) is the one
``model_validate`` builds from the same output, and every error is the closures' own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from dvcsync.contract.portal import HoSo, TienDo
from dvcsync.mapping import MappingSet, MapResult
from dvcsync.mapping.engine import CompiledMapping
from dvcsync.mapping.shapes import Need, known_of, raw_plan

from .conftest import dossier_record
from .test_compiled_shapes import _variants, profile  # noqa: F401  (the fixture)


def _state(model: BaseModel) -> tuple[Any, ...]:
    return (
        type(model),
        list(model.__dict__.items()),
        model.__pydantic_fields_set__,
        model.__pydantic_extra__,
        model.__pydantic_private__,
        repr(model),
        model.model_dump_json(),
        model.to_wire() if hasattr(model, "to_wire") else None,
    )


class _Counted:
    """The generated function's ``build_raw``, counting its calls."""

    def __init__(self, cm: CompiledMapping, monkeypatch: pytest.MonkeyPatch) -> None:
        namespace = cm._compiled.__globals__  # type: ignore[attr-defined]
        self.calls = 0
        build: Callable[[dict[str, Any]], Any] = namespace["build_raw"]

        def counted(out: dict[str, Any]) -> Any:
            self.calls += 1
            return build(out)

        monkeypatch.setitem(namespace, "build_raw", counted)


def _check(cm: CompiledMapping, record: dict[str, Any], **kwargs: Any) -> None:
    """``map`` with validation: the closures' errors, and the model ``model_validate`` builds."""
    mapped = cm.map(record, validate=True, **kwargs)
    reference = cm.map_closures(record, validate=True, **kwargs)
    assert (mapped.record, mapped.skipped, mapped.errors) == (
        reference.record,
        reference.skipped,
        reference.errors,
    )
    assert repr(mapped.value) == repr(reference.value)
    if mapped.value is not None:
        out = cm.map(record, validate=False, **kwargs)
        assert cm.model is not None and not out.errors
        expected: MapResult = cm._validate(out.record, out.value, check=cm.model.model_validate)
        assert _state(mapped.value) == _state(expected.value)


def test_every_shape_builds_the_models_own_model(
    profile: tuple[MappingSet, dict[str, list[dict[str, Any]]]],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mset, records = profile
    counted: list[_Counted] = []
    for source_name, rows in records.items():
        for name, spec in mset.specs.items():
            cm = mset.get(name)
            if raw_plan(cm.model, spec.fields) is None:
                continue
            counter = _Counted(cm, monkeypatch)
            counted.append(counter)
            if name == source_name:
                for row in rows[:4]:
                    for record in _variants(row):
                        _check(cm, record)
            elif spec.items_of is not None and spec.items_of.mapping == source_name:
                for row in rows[:4]:
                    children = (row.get(spec.items_of.child) or [])[:2]
                    for child in children:
                        for variant in _variants(child):
                            _check(cm, variant, parent=row, record_key="k")
                    for parent in _variants(row) if children else ():  # what is read of the parent
                        _check(cm, children[0], parent=parent, record_key="k")
    assert sum(c.calls for c in counted) > 100  # the prebuilt path is taken, not only refused


def test_which_models_are_built_without_validation(shared_mappings: MappingSet) -> None:
    """A model with a validator of its own (``HoSo``), nested models or amounts is always
    validated; ``TienDo`` from the step spec is not, nor without a required field."""
    step, dossier = shared_mappings.specs["step"], shared_mappings.specs["dossier"]
    assert raw_plan(HoSo, dossier.fields) is None
    assert raw_plan(shared_mappings.get("fee").model, shared_mappings.specs["fee"].fields) is None
    plan = raw_plan(TienDo, step.fields)
    assert plan is not None and set(plan.needs) == set(step.fields)
    assert list(plan.template) == list(TienDo.model_fields) and plan.in_order
    reordered = dict(reversed(step.fields.items()))
    backwards = raw_plan(TienDo, reordered)
    assert backwards is not None and not backwards.in_order
    out = {name: "1" for name in reordered}
    built = backwards.builder()(out)
    assert list(built.__dict__) == list(TienDo.model_fields) and built.__dict__ is not out
    assert raw_plan(TienDo, {k: v for k, v in step.fields.items() if k != "MaHoSo"}) is None


def test_needs_and_what_a_table_shows() -> None:
    statuses = Need(literal=frozenset({"1", "2"}))
    assert statuses.tests(known_of(["1", "2"]), "L") == []
    assert statuses.tests(known_of(["1", "3"]), "L") == ["type(v) is not str", "v not in L"]
    short = Need(min_length=1, max_length=3)
    assert short.tests(known_of(["ab", "abc"]), "") == []
    assert short.tests(known_of(["abcd"]), "") == ["len(v) > 3"]
    assert short.tests(known_of([""]), "") == ["len(v) < 1"]
    assert not Need(wire_date=True).accepts("20240230000000")


moments = st.one_of(
    st.builds(
        lambda d, sep: d.replace(microsecond=0).isoformat(sep=sep),
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
        st.sampled_from("T "),
    ),
    st.sampled_from(["2024-02-29T10:00:00", "2023-02-29T10:00:00", "2025-06-31T00:00:00", "20250101000000"]),
    st.text(max_size=20),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    moment=moments,
    key=st.one_of(st.text(max_size=20), st.integers(0, 120).map(lambda n: "k" * n)),
    user=st.text(max_size=60),
)
def test_steps_with_any_moment_key_and_user_build_the_models_own_model(
    shared_mappings: MappingSet, moment: str, key: str, user: str
) -> None:
    step = shared_mappings.get("step")
    record = dossier_record(so_ho_so=key)
    child = {**record["steps"][0], "thoi_diem": moment, "bat_dau": moment, "can_bo": user}
    _check(step, child, parent=record, record_key="k")
