"""YAML loading that remembers where every key was written, so spec errors can name file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dvcsync.errors import TerminalError

Loc = tuple[str | int, ...]


@dataclass
class LocatedDocument:
    """A parsed YAML document plus the line (1-based) of every key and list item by its path."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """Line of ``loc`` or of its nearest ancestor that has one."""
        probe = tuple(loc)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), None)


class YamlSyntaxError(TerminalError, ValueError):
    def __init__(self, path: Path, line: int | None, message: str) -> None:
        self.path, self.line = path, line
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


def load_located(path: Path) -> LocatedDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlSyntaxError(path, None, f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    node = _compose(text, path)
    doc = LocatedDocument(path=path, data=None)
    if node is None:
        doc.data = {}
        return doc
    doc.lines[()] = node.start_mark.line + 1
    constructor = yaml.SafeLoader("")  # one for the document's scalars (building one is not free)
    try:
        doc.data = _convert(node, (), doc.lines, path, constructor)
    finally:
        constructor.dispose()
    return doc


# libyaml's composer when PyYAML was built with it: a tenth of the pure-Python one's time, and every
# CLI command and scheduled run loads the whole mappings folder. Its error messages are worded
# differently, so a document it refuses is composed again by the pure-Python loader, whose message
# (the one the docs and tests quote) is what the user sees. The one difference left: libyaml accepts
# a tab inside a plain value and a '?' inside a flow one, valid YAML that the pure scanner refuses
# (tests/unit/mapping/test_yaml_loading.py). 294 -> 23 ms for the shipped folder's 46 files.
_FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose(text: str, path: Path) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        pass
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise YamlSyntaxError(path, line, f"YAML syntax error: {exc.problem}") from None


def _convert(node: yaml.Node, loc: Loc, lines: dict[Loc, int], path: Path, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, path, loader)
            if key == "<<":
                raise YamlSyntaxError(path, key_node.start_mark.line + 1, "YAML merge keys are not supported")
            if key in out:
                raise YamlSyntaxError(path, key_node.start_mark.line + 1, f"duplicate key {key!r}")
            child = (*loc, key)
            lines[child] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, child, lines, path, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*loc, index)
            lines[child] = item.start_mark.line + 1
            items.append(_convert(item, child, lines, path, loader))
        return items
    return _scalar(node, path, loader)


def _scalar(node: yaml.Node, path: Path, loader: yaml.SafeLoader) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise YamlSyntaxError(path, node.start_mark.line + 1, "a key must be a plain scalar")
    constructor = yaml.SafeLoader.yaml_constructors.get(node.tag)
    if constructor is None:
        raise YamlSyntaxError(path, node.start_mark.line + 1, f"unsupported YAML tag {node.tag}")
    return constructor(loader, node)
