"""What tests/unit/conftest.py shares across a session stays as a fresh load would be: the
``default_mapping_set`` reads as a fresh load of the shipped mappings, and its guard sees a
change to a spec, a code table or a compiled mapping; the parsed-YAML cache hands out copies,
parses a changed file afresh and raises a file's error every time; the CLI's click tree, built
once, is the tree a fresh build gives and each invocation still parses its own arguments."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
import typer.main
import typer.testing

import dvcsync.mapping.loader as mapping_loader
from dvcsync._resources import default_mappings
from dvcsync.cli import app
from dvcsync.mapping import MappingSet, load_mappings
from dvcsync.mapping._yaml import YamlSyntaxError, load_located

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


cached = pytest.mark.skipif(os.environ.get("UNIT_YAML_CACHE") == "0", reason="UNIT_YAML_CACHE=0")


@cached
def test_the_parse_cache_is_on_and_gives_what_parsing_gives() -> None:
    assert mapping_loader.load_located is not load_located
    path = default_mappings() / "dossier.yaml"
    first, again, parsed = (
        mapping_loader.load_located(path),
        mapping_loader.load_located(path),
        load_located(path),
    )
    assert first == again == parsed and first is not again and first.data is not again.data


@cached
def test_a_changed_copy_does_not_reach_the_next_load(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("name: one\nfields: {a: {path: x}}\n", encoding="utf-8")
    doc = mapping_loader.load_located(path)
    doc.data["name"] = "changed by the caller"
    doc.lines.clear()
    assert mapping_loader.load_located(path) == load_located(path)


@cached
def test_a_rewritten_file_is_parsed_afresh_and_a_bad_one_raises_every_time(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("name: one\n", encoding="utf-8")
    assert mapping_loader.load_located(path).data == {"name": "one"}
    path.write_text("name: two\n", encoding="utf-8")
    assert mapping_loader.load_located(path).data == {"name": "two"}
    path.write_text("name: [one\n", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(YamlSyntaxError, match=r"spec\.yaml"):
            mapping_loader.load_located(path)
    path.write_text("name: one\n", encoding="utf-8")
    assert mapping_loader.load_located(path).data == {"name": "one"}


def _tree(command: click.Command) -> object:
    """Names, parameters and sub-commands, recursively: what a build decides."""
    subs = command.commands if isinstance(command, click.Group) else {}
    params = [(p.name, p.opts, p.required, repr(p.default)) for p in command.params]
    return command.name, params, {name: _tree(sub) for name, sub in sorted(subs.items())}


def test_the_cli_tree_is_built_once_as_a_fresh_build_and_each_invocation_parses_its_own() -> None:
    once = typer.testing._get_command(app)
    assert typer.testing._get_command(app) is once
    assert _tree(once) == _tree(typer.main.get_command(app))
    runner = typer.testing.CliRunner()
    top, db = runner.invoke(app, ["--help"]), runner.invoke(app, ["db", "--help"])
    assert top.exit_code == db.exit_code == 0 and top.output != db.output
    assert runner.invoke(app, ["no-such-command"]).exit_code == 2
