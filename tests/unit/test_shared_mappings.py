"""The session's shared ``default_mapping_set`` (tests/unit/conftest.py) reads as a fresh load of
the shipped mappings, and its guard sees a change to a spec, a code table or a compiled mapping:
tests may share it only because one that changed it would fail the session."""

from __future__ import annotations

from dvcsync._resources import default_mappings
from dvcsync.mapping import MappingSet, load_mappings

from .conftest import mapping_set_fingerprint


def _content(mset: MappingSet) -> object:
    """The fingerprint without which objects answer (a fresh load compiles new ones)."""
    folder, specs, tables, compiled = mapping_set_fingerprint(mset)
    return folder, specs, tables, {name: is_own for name, (_, is_own) in compiled.items()}


def test_the_shared_set_is_a_fresh_load_of_the_shipped_folder(default_mapping_set: MappingSet) -> None:
    fresh = load_mappings(default_mappings())
    assert default_mapping_set.folder == default_mappings()
    assert _content(default_mapping_set) == _content(fresh)


def test_a_lookup_and_a_mapping_leave_the_fingerprint_as_it_was(default_mapping_set: MappingSet) -> None:
    before = mapping_set_fingerprint(default_mapping_set)
    table = default_mapping_set.codes["procedures"]
    for key in list(table)[:5]:
        table.lookup(key)
    default_mapping_set.get("dossier").map({})
    assert mapping_set_fingerprint(default_mapping_set) == before


def test_the_fingerprint_sees_a_changed_spec_table_or_compiled_mapping() -> None:
    mset = load_mappings(default_mappings())
    before = mapping_set_fingerprint(mset)
    name = mset.names()[0]
    spec = mset.specs[name]
    mset.specs[name] = spec.model_copy(update={"description": "changed by a test"})
    assert mapping_set_fingerprint(mset) != before
    mset.specs[name] = spec
    assert mapping_set_fingerprint(mset) == before

    table = next(iter(mset.codes.values()))
    default = table.default
    table.default = "changed by a test"
    assert mapping_set_fingerprint(mset) != before
    table.default = default
    assert mapping_set_fingerprint(mset) == before

    mset._compiled[name] = load_mappings(default_mappings()).get(name)
    assert mapping_set_fingerprint(mset) != before
