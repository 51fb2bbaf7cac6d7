"""The CLI's exit codes come from one definition (``dvcsync.errors.ExitCode``): no command exits
with a bare number, and no module keeps its own ``EXIT_*`` constants, so README's table, the
errors' ``exit_code`` and the commands cannot drift apart."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dvcsync.cli
from dvcsync.errors import ExitCode

CLI = Path(dvcsync.cli.__file__).parent
MODULES = sorted(CLI.glob("*.py"))
_EXITS = {"Exit", "SystemExit", "exit"}  # typer.Exit, SystemExit, sys.exit


def _may_be_number(expr: ast.expr) -> bool:
    """The value of ``expr`` may be a bare number: a literal, or one branch of ``a if c else b``
    or ``a or b`` (a number compared in the condition is not a code)."""
    if isinstance(expr, ast.Constant):
        return type(expr.value) is int
    if isinstance(expr, ast.IfExp):
        return _may_be_number(expr.body) or _may_be_number(expr.orelse)
    if isinstance(expr, ast.BoolOp):
        return any(_may_be_number(value) for value in expr.values)
    return False


def _literal_exits(tree: ast.AST) -> list[int]:
    """Lines of exit calls whose code is (or may be) a bare number."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name not in _EXITS:
            continue
        if any(_may_be_number(arg) for arg in [*node.args, *(k.value for k in node.keywords)]):
            found.append(node.lineno)
    return found


def test_the_walk_sees_the_cli() -> None:
    assert {p.name for p in MODULES} >= {"_common.py", "_errors.py", "_state.py", "_reconcile.py"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_literal_exit_code(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert _literal_exits(tree) == [], f"{path.name}: use dvcsync.errors.ExitCode"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_exit_constants_of_its_own(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = [
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in ast.walk(ast.Tuple(elts=node.targets))
        if isinstance(target, ast.Name) and target.id.startswith("EXIT_")
    ]
    assert names == []


def test_the_detector_finds_a_literal() -> None:
    tree = ast.parse("import typer\ndef f(ok):\n    raise typer.Exit(0 if ok else 1)\n")
    assert _literal_exits(tree) == [3]
    assert _literal_exits(ast.parse("raise SystemExit(2)")) == [1]
    assert _literal_exits(ast.parse("raise typer.Exit(ExitCode.INVALID)")) == []
    assert _literal_exits(ast.parse("raise typer.Exit(ExitCode.OK if n == 0 else ExitCode.PROBLEMS)")) == []


def test_explain_takes_the_code_of_dvcsync_errors() -> None:
    from dvcsync.cli._errors import explain
    from dvcsync.config import ConfigError
    from dvcsync.portal.errors import AuthError, ProtocolError, UnreachableError
    from dvcsync.sync.state_guard import StateMissing
    from dvcsync.sync.state_lock import StateBusy

    assert explain(ConfigError("x.toml: portal.timeout: bad")).code == ExitCode.INVALID
    assert explain(StateBusy("held")).code == ExitCode.BUSY
    assert explain(StateMissing("none")).code == ExitCode.INVALID
    assert explain(UnreachableError("auth", "refused")).code == ExitCode.UNREACHABLE
    assert explain(AuthError("auth", "no")).code == ExitCode.INVALID
    assert explain(ProtocolError("auth", "odd")).code == ExitCode.PROBLEMS
    assert explain(KeyboardInterrupt()).code == ExitCode.INTERRUPTED
    unforeseen = explain(RuntimeError("boom"))
    assert unforeseen.code == ExitCode.PROBLEMS and unforeseen.traceback_useful
