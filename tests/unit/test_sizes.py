"""bench/sizes.py, the evidence for "no function over 80 lines, no module over 800": it must see
nested and async functions and methods, honour its allow-list, and fail only outside it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sizes() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_sizes", REPO / "bench" / "sizes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_sizes"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _body(lines: int, indent: int = 4) -> str:
    """The body of a function ``lines`` long with its ``def`` line."""
    return "".join(f"{' ' * indent}x{i} = {i}\n" for i in range(lines - 1))


def test_long_functions_fail_unless_allowed(
    sizes: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "long.py"
    source.write_text(
        f"def short():\n{_body(80)}"
        f"class C:\n    async def method(self):\n{_body(81, 8)}"
        f"def outer():\n    def inner():\n{_body(90, 8)}    return inner\n"
    )
    modules, functions = sizes.measure([source], [])
    by_name = {f.where.rpartition(":")[2]: f.lines for f in functions}
    assert by_name["short"] == 80
    assert by_name["C.method"] == 81
    assert by_name["outer.<locals>.inner"] == 90 and by_name["outer"] == 92
    assert modules[0].lines == len(source.read_text().splitlines())

    assert sizes.main([str(source)]) == 1  # three functions over 80
    assert sizes.main([str(source), "--allow", "*:C.method", "--allow", "*:outer*"]) == 0
    out = capsys.readouterr().out
    assert "functions over 80 lines: 3 (0 not allowed)" in out and "(allowed: generated data)" in out


def test_a_long_module_fails(sizes: ModuleType, tmp_path: Path) -> None:
    source = tmp_path / "big.py"
    source.write_text("".join(f"x{i} = {i}\n" for i in range(801)))
    assert sizes.main([str(source)]) == 1
    assert sizes.main([str(source), "--max-module", "801"]) == 0
