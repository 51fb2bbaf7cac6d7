"""The mappings' YAML is composed by libyaml when PyYAML has it (``_yaml._FAST_LOADER``): the same
documents, lines and errors as the pure-Python loader, which the spec errors were written against."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dvcsync.mapping import _yaml
from dvcsync.mapping._yaml import YamlSyntaxError, load_located

REPO = Path(__file__).resolve().parents[3]
SHIPPED = sorted((REPO / "mappings").rglob("*.yaml"))
needs_libyaml = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")


def _pure(path: Path, monkeypatch: pytest.MonkeyPatch) -> _yaml.LocatedDocument:
    with monkeypatch.context() as m:
        m.setattr(_yaml, "_FAST_LOADER", yaml.SafeLoader)
        return load_located(path)


@needs_libyaml
def test_the_fast_loader_is_libyaml() -> None:
    assert _yaml._FAST_LOADER is yaml.CSafeLoader


@pytest.mark.parametrize("path", SHIPPED, ids=[p.relative_to(REPO).as_posix() for p in SHIPPED])
def test_shipped_mappings_load_the_same_with_either_loader(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, pure = load_located(path), _pure(path, monkeypatch)
    assert repr(fast.data) == repr(pure.data)  # repr: types too (True is not 1, dates stay dates)
    assert fast.lines == pure.lines


SCALARS = """\
name: scalars
when: 2026-01-02
at: 2026-01-02 03:04:05
flags: [yes, no, true, off, ~, null]
numbers: [1, -2, 0x1F, 017, 1_000, 3.5, .inf, 1e3]
text: ["quoted", 'single', plain words, "đ ố ư", "a?b=c&d"]
multi: |
  line one
    line two
folded: >
  folded
  text
nested:
  - {a: 1, b: [x, y]}
  - - deep
"""


def test_scalars_of_every_kind_are_the_same_with_either_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "scalars.yaml"
    path.write_text(SCALARS, encoding="utf-8")
    fast, pure = load_located(path), _pure(path, monkeypatch)
    assert repr(fast.data) == repr(pure.data)
    assert fast.lines == pure.lines
    assert fast.line_of(("nested", 1, 0)) == 15


@pytest.mark.parametrize(
    "text",
    [
        "name: a\nfields:\n  x: [1, 2\n",  # an unclosed flow sequence
        "name: a\n\tfields: {}\n",  # a tab for indentation
        "name: a\n fields: b\n",  # an indentation that fits nothing
        "name: 'unterminated\n",
        "name: a\nname: b\n",  # a duplicate key (found after composing)
        "- a\nb: c\n",
    ],
)
def test_an_error_is_the_pure_loaders_with_its_line(text: str, tmp_path: Path) -> None:
    """libyaml words its errors otherwise; the user sees the pure loader's message and line."""
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(YamlSyntaxError) as got:
        load_located(path)
    try:
        yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        assert exc.problem_mark is not None
        assert got.value.line == exc.problem_mark.line + 1
        assert str(got.value) == f"{path}:{exc.problem_mark.line + 1}: YAML syntax error: {exc.problem}"
    else:
        assert "duplicate key" in str(got.value) and got.value.line == 2


@needs_libyaml
def test_a_tab_inside_a_plain_value_is_accepted(tmp_path: Path) -> None:
    """Valid YAML that PyYAML's pure scanner refuses (a tab inside a plain scalar, a '?' inside a
    flow one); libyaml reads it as YAML 1.1 and 1.2 say. The one place the two loaders differ."""
    path = tmp_path / "tabs.yaml"
    path.write_text("name: tabs\ndescription: a\tb\nflow: {a: tr?ue}\n", encoding="utf-8")
    assert load_located(path).data == {"name": "tabs", "description": "a\tb", "flow": {"a": "tr?ue"}}
