"""Module and function sizes of the shipped code (issue 22, "Shown by"): every module over
``--report-modules`` lines, every function over ``--max-function`` lines, and their counts.

Exits 1 when a function is over ``--max-function`` (80) or a module over ``--max-module`` (800)
lines, outside the allow-list. The allow-list holds generated data only (``GENERATED`` below:
migration scripts' ``upgrade``/``downgrade``, sample data tables); ``--allow GLOB`` adds to it,
``--strict`` drops it. Allowed items are still printed, marked ``allowed``.

A function's size runs from its ``def`` line to its last line, nested functions included (and
each nested one listed on its own as ``outer.<locals>.inner``); a module's is its line count.

    python -P bench/sizes.py [PATH ...] [--report-modules 500] [--allow 'dvcsync/x.py:f'] [--strict]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = ("dvcsync", "mock_portal")

# Generated or tabular data, whose length is its content: matched against ``path`` (a module) or
# ``path:qualified.name`` (a function), paths relative to the repository.
GENERATED = (
    "dvcsync/state/migrations/versions/*.py:upgrade",  # alembic scripts: one DDL statement a line
    "dvcsync/state/migrations/versions/*.py:downgrade",
    "dvcsync/province/sample/data/*",  # the sample's reference tables
    "dvcsync/province/sample/*/data/*",
)


@dataclass(frozen=True)
class Size:
    where: str  # path, or path:qualname
    lines: int
    allowed: bool = False


def _functions(
    tree: ast.AST, prefix: str = ""
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{node.name}"
            yield name, node
            yield from _functions(node, f"{name}.<locals>.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def measure(files: list[Path], allow: list[str]) -> tuple[list[Size], list[Size]]:
    """(modules, functions) with their line counts, each marked allowed if a pattern matches."""
    modules: list[Size] = []
    functions: list[Size] = []
    for path in files:
        rel = (
            path.resolve().relative_to(REPO).as_posix() if path.resolve().is_relative_to(REPO) else str(path)
        )
        text = path.read_text(encoding="utf-8")
        modules.append(Size(rel, len(text.splitlines()), any(fnmatch(rel, p) for p in allow)))
        for name, node in _functions(ast.parse(text, str(path))):
            where = f"{rel}:{name}"
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            functions.append(Size(where, lines, any(fnmatch(where, p) or fnmatch(rel, p) for p in allow)))
    return modules, functions


def _files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for name in paths:
        path = Path(name) if Path(name).is_absolute() else REPO / name
        if not path.exists():
            raise SystemExit(f"sizes: {name}: no such file or folder")
        found.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return found


def _print(title: str, sizes: list[Size], limit: int) -> int:
    """Print the sizes over ``limit``, longest first; return how many of them are not allowed."""
    over = sorted((s for s in sizes if s.lines > limit), key=lambda s: (-s.lines, s.where))
    failing = sum(not s.allowed for s in over)
    print(f"{title} over {limit} lines: {len(over)} ({failing} not allowed)")
    for size in over:
        print(f"  {size.lines:6d}  {size.where}{'  (allowed: generated data)' if size.allowed else ''}")
    return failing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "paths", nargs="*", default=list(DEFAULT_PATHS), help="files or folders (default: %(default)s)"
    )
    parser.add_argument("--report-modules", type=int, default=500, help="list modules over this many lines")
    parser.add_argument("--max-module", type=int, default=800, help="fail on a module over this many lines")
    parser.add_argument(
        "--max-function", type=int, default=80, help="fail on a function over this many lines"
    )
    parser.add_argument(
        "--allow", action="append", default=[], metavar="GLOB", help="allow a path[:function]"
    )
    parser.add_argument("--strict", action="store_true", help="no built-in allowance for generated data")
    args = parser.parse_args(argv)
    allow = [*([] if args.strict else GENERATED), *args.allow]
    modules, functions = measure(_files(args.paths), allow)
    print(f"{len(modules)} modules, {sum(m.lines for m in modules)} lines, {len(functions)} functions")
    _print("modules", modules, args.report_modules)
    big_modules = sum(not m.allowed for m in modules if m.lines > args.max_module)
    print(f"modules over {args.max_module} lines (the limit): {big_modules} not allowed")
    long_functions = _print("functions", functions, args.max_function)
    if big_modules or long_functions:
        over = f"{big_modules} module(s) over {args.max_module}"
        print(f"FAIL: {over}, {long_functions} function(s) over {args.max_function}")
        return 1
    print("OK: no module or function over its limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
