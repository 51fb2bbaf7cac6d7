"""The packages point one way (docs/architecture.md, "Layers"): every import in ``dvcsync`` and
``mock_portal`` is read from the source (AST, no import executed) and checked against the layer
ranks below. A unit may import only units of a strictly lower rank; units of the same rank are
siblings and import neither each other. Imports inside functions and under ``TYPE_CHECKING`` count:
they couple the layers all the same.

Rules are keyed by top-level unit (``dvcsync.config`` whether a module or a package, any module
that appears in ``dvcsync/state/``), so a refactor inside a unit never touches this file; a new
top-level unit must be given a rank here. Today's violations are listed, each with why, in
``KNOWN_EXCEPTIONS``: a new one fails.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Rank of each unit of dvcsync: the top-level module or subpackage under dvcsync/ ("" is the root
# package's own __init__). Lower ranks know nothing of higher ones.
LAYERS: dict[str, int] = {
    "errors": 0,  # the root of every error: imports nothing of dvcsync
    "": 1,
    "contract": 1,  # the portal's and payment platform's wire models
    "source_spec": 1,
    "spreadsheet_safe": 1,
    "_resources": 1,
    "_gc": 1,
    "mapping": 2,  # province records -> contract models
    "province": 2,  # the province's database: schema, source, sink, sample
    "config": 3,  # section models and the loader
    "tenants": 4,  # a tenant's settings, state URL and folders
    "state": 5,  # the state store: outbox, inbox, claims, runs, cursors
    "logs": 5,
    "metrics": 6,  # counters the portal client and jobs feed; backlog gauges read through state
    "portal": 7,  # the portal client (REST/SOAP), rate, retry, sessions
    "catalogue": 7,  # matching local procedures to the national catalogue
    "sync": 8,  # the jobs
    "reconcile": 9,  # comparing both sides, reports, repair
    "server": 10,  # the inbound HTTP server
    "scheduler": 11,  # every job on its schedule, beside the server
    "demo": 12,
    "cli": 13,
}

# What mock_portal may import of dvcsync: the contract it enforces (and the errors' root). It never
# imports the adapter's jobs, state, client or CLI: it stands in for the portal, not for dvcsync.
MOCK_MAY_IMPORT = frozenset({"contract", "errors"})

# Today's violations, (importer, imported) by unit; each says why it exists. Remove an entry when
# its import goes (a stale entry is warned about, not failed on, so a refactor in flight is not red).
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {
    # the mock's loopback check reuses the adapter's (mock_portal/config.py)
    ("mock_portal", "dvcsync.config"): "is_loopback_host",
    # the top tier starts the mock: `dvcsync mock-portal` serves it, `dvcsync demo` runs it
    ("dvcsync.cli", "mock_portal"): "dvcsync mock-portal",
    ("dvcsync.demo", "mock_portal"): "the demo drives the mock like a test would",
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module (or module.name), dotted
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(module: str, source: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every import statement of ``source``, relative ones resolved against ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            for alias in node.names:  # `from dvcsync import metrics` imports dvcsync.metrics
                yield Import(module, f"{origin}.{alias.name}", node.lineno)


def unit_of(dotted: str) -> str | None:
    """``dvcsync.<unit>``, ``mock_portal`` or ``tests`` for a module of this repository, else None."""
    parts = dotted.split(".")
    if parts[0] == "dvcsync":
        # `from dvcsync import __version__`-like names belong to the root package itself
        name = parts[1] if len(parts) > 1 and not parts[1].startswith("__") else ""
        return f"dvcsync.{name}" if name else "dvcsync"
    if parts[0] in {"mock_portal", "tests"}:
        return parts[0]
    return None


def _layer(unit: str) -> str:
    """The key in LAYERS of a dvcsync unit (``dvcsync.state`` -> ``state``, ``dvcsync`` -> "")."""
    return unit.removeprefix("dvcsync").removeprefix(".")


def problem(imp: Import) -> str | None:
    """Why this import breaks the direction, or None."""
    source, target = unit_of(imp.module), unit_of(imp.target)
    if source is None or target is None or source == target:
        return None
    where = f"{imp.module}:{imp.line} imports {imp.target}"
    if target == "tests":
        return f"{where}: shipped code never imports the tests"
    if source == "mock_portal":
        name = _layer(target)
        return (
            None if name in MOCK_MAY_IMPORT else f"{where}: mock_portal uses only {sorted(MOCK_MAY_IMPORT)}"
        )
    if target == "mock_portal":
        return f"{where}: dvcsync never imports the mock"
    low, high = _layer(source), _layer(target)
    for name in (low, high):
        if name not in LAYERS:
            return f"{where}: dvcsync.{name} has no layer: give it a rank in tests/unit/test_layers.py LAYERS"
    if LAYERS[high] >= LAYERS[low]:
        ranks = f"{source} (rank {LAYERS[low]}) may import only lower ranks, not {target} ({LAYERS[high]})"
        return f"{where}: {ranks}"
    return None


def scan() -> list[Import]:
    found: list[Import] = []
    for top in ("dvcsync", "mock_portal"):
        for path in sorted((REPO / top).rglob("*.py")):
            module = module_name(path)
            found.extend(
                imports_of(module, path.read_text(encoding="utf-8"), is_package=path.stem == "__init__")
            )
    return found


@pytest.fixture(scope="module")
def found() -> list[Import]:
    return scan()


def test_the_imports_point_one_way(found: list[Import]) -> None:
    seen: set[tuple[str, str]] = set()
    new: list[str] = []
    for imp in found:
        why = problem(imp)
        if why is None:
            continue
        pair = (unit_of(imp.module) or "", unit_of(imp.target) or "")
        if pair in KNOWN_EXCEPTIONS:
            seen.add(pair)
        else:
            new.append(why)
    assert not new, "imports against the layers (docs/architecture.md):\n" + "\n".join(new)
    stale = sorted(set(KNOWN_EXCEPTIONS) - seen)
    if stale:
        warnings.warn(f"known layer exceptions no longer seen, remove them: {stale}", stacklevel=1)


def test_the_scan_sees_the_imports(found: list[Import]) -> None:
    """A scanner that silently found nothing would pass everything."""
    pairs = {(unit_of(i.module), unit_of(i.target)) for i in found}
    assert ("dvcsync.sync", "dvcsync.state") in pairs
    assert ("dvcsync.portal", "dvcsync.metrics") in pairs  # `from dvcsync import metrics`
    assert ("mock_portal", "dvcsync.contract") in pairs
    assert len(found) > 1000


@pytest.mark.parametrize(
    ("module", "source", "fails"),
    [
        ("dvcsync.state.store", "from dvcsync.sync.push import PushJob", True),  # upwards
        ("dvcsync.state.new_module", "from ..sync import cycles", True),  # relative, a new module
        ("dvcsync.catalogue.matcher", "from dvcsync.portal import PortalClient", True),  # a sibling
        ("dvcsync.config._loader", "from dvcsync.tenants import x", True),  # the circle b9df8a3 removed
        ("dvcsync.cli._mock", "from mock_portal.cli import serve", False),  # a known exception...
        ("dvcsync.sync.push", "import tests.replicas", True),
        ("dvcsync.sync.push", "from mock_portal.app import create_app", True),
        ("mock_portal.store", "from dvcsync.state import StateStore", True),
        ("mock_portal.store", "from dvcsync.contract import HoSo", False),
        ("dvcsync.sync.push", "from dvcsync.state import StateStore", False),
        ("dvcsync.cli._sync", "from dvcsync import metrics", False),
        ("dvcsync.newthing", "import json", False),
        ("dvcsync.newthing", "from dvcsync import contract", True),  # ...but an unranked unit fails
    ],
)
def test_the_rule(module: str, source: str, fails: bool) -> None:
    [imp] = imports_of(module, source)
    why = problem(imp)
    pair = (unit_of(imp.module), unit_of(imp.target))
    assert (why is not None and pair not in KNOWN_EXCEPTIONS) is fails, why
