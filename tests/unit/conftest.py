"""Shared unit-test fixtures."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.testing

import dvcsync.mapping.loader as mapping_loader
from dvcsync._resources import default_mappings
from dvcsync.mapping import MappingSet, load_mappings
from dvcsync.mapping._yaml import LocatedDocument
from dvcsync.state import StateStore


@pytest.fixture(scope="package", autouse=True)
def _parsed_yaml_once() -> Iterator[None]:
    """Each YAML file of a mappings folder parsed once per session for each content it has, not on
    every load: ``load_mappings`` runs ~280 times a unit session (the CLI commands, a copy per
    test); with PyYAML's pure-Python composer parsing was nine tenths of a load (~65 ms), with
    libyaml's (``_yaml._FAST_LOADER``, where PyYAML has it) a tenth of that. ``load_located``
    depends on the file's path and bytes only, so the cache is keyed by both (a copy in tmp_path,
    or a file a test rewrote, is parsed afresh); what
    it hands out is a fresh unpickled copy, so a caller that changes its document changes no
    other's. A file that fails to parse is not cached: its error is raised every time, as before.
    Everything after parsing (validation, references, required specs, compiling) runs on every
    load. ``UNIT_YAML_CACHE=0`` turns it off (docs/testing.md). Package scope: a session that
    runs other folders' tests too never hands them the patched loader."""
    if os.environ.get("UNIT_YAML_CACHE") == "0":
        yield
        return
    parse = mapping_loader.load_located
    parsed: dict[tuple[Path, bytes], bytes] = {}

    def load_located(path: Path) -> LocatedDocument:
        try:
            raw = path.read_bytes()
        except OSError:
            return parse(path)  # its own error, as before
        key = (path, hashlib.sha256(raw).digest())
        if key in parsed:
            copy: LocatedDocument = pickle.loads(parsed[key])
            return copy
        doc = parse(path)
        if path.read_bytes() == raw:  # unchanged while parsed: the key describes what was read
            parsed[key] = pickle.dumps(doc)
        return doc

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mapping_loader, "load_located", load_located)
        yield


@pytest.fixture(scope="package", autouse=True)
def _cli_built_once() -> Iterator[None]:
    """``CliRunner.invoke`` builds the click command tree from the Typer app once per app, as a
    process does once, not once per invocation (~12 ms each, several hundred invocations a
    session). Nothing in the tests or the CLI changes an app's commands after import; parsing,
    defaults, environment and output are still each invocation's own."""
    build = typer.testing._get_command
    built: dict[int, tuple[typer.Typer, Any]] = {}

    def get_command(app: typer.Typer) -> Any:
        entry = built.get(id(app))
        if entry is None or entry[0] is not app:
            entry = built[id(app)] = (app, build(app))  # the app kept: its id is not reused
        return entry[1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", get_command)
        yield


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``DVCSYNC_`` variable of the caller's shell reaches the configuration, and relative paths
    (``dvcsync.toml``) resolve in the test's own folder."""
    for name in list(os.environ):
        if name.startswith("DVCSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def state_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite state migrated to head by ``StateStore.upgrade`` (Alembic, ~0.1 s) for the whole
    session, closed so its WAL is checkpointed into the file: copying it is what a test that
    needs an empty state at head gets. Migrating itself is tested in tests/unit/state/test_migrations.py."""
    path = tmp_path_factory.mktemp("state-template") / "state.db"
    store = StateStore(f"sqlite:///{path}")
    try:
        store.upgrade()
    finally:
        store.close()
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    assert not leftovers, f"the template state left {leftovers} beside it: a copy would miss them"
    return path


def copy_state(template: Path, target: Path) -> None:
    """``template`` copied to a new ``target``, private (0600) from its creation as the state
    makes its own files: the copy is then as ``upgrade()`` would have left it."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, template.open("rb") as src:
        shutil.copyfileobj(src, out)


@pytest.fixture
def state_at_head(state_template: Path, tmp_path: Path) -> Iterator[StateStore]:
    """A fresh, empty state at head in ``tmp_path / "state.db"`` (a copy of the session's
    template), closed after the test."""
    path = tmp_path / "state.db"
    copy_state(state_template, path)
    store = StateStore(f"sqlite:///{path}")
    try:
        yield store
    finally:
        store.close()


def mapping_set_fingerprint(mset: MappingSet) -> Any:
    """What a test could change of a loaded ``MappingSet``: its folder, every spec (as JSON), every
    code table's fields (the reverse look-up cache aside: it fills as lookups run, by design) and
    which compiled mapping answers each name. Equal fingerprints: the set reads as it was loaded."""
    tables = {
        name: repr(
            sorted(
                (key, value.name if key == "overlay" and value is not None else value)
                for key, value in vars(table).items()
                if key != "_reverse"
            )
        )
        for name, table in mset.codes.items()
    }
    compiled = {name: (id(mset.get(name)), mset.get(name).spec is mset.specs[name]) for name in mset.specs}
    return (
        mset.folder,
        {name: spec.model_dump_json() for name, spec in mset.specs.items()},
        tables,
        compiled,
    )


@pytest.fixture(scope="session")
def default_mapping_set() -> Iterator[MappingSet]:
    """The shipped ``mappings/`` loaded once per session (~65 ms a load, most of it YAML), for
    tests that only read it. A test that changes the set (a spec, a code table, a compiled
    mapping) fails the session at teardown, naming this fixture: copy or load afresh instead.
    Loading itself, ``require`` and the CLI's own loads are tested where they are."""
    mset = load_mappings(default_mappings())
    before = mapping_set_fingerprint(mset)
    yield mset
    assert mapping_set_fingerprint(mset) == before, "a test changed the shared default_mapping_set"
