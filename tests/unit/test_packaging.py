"""pyproject.toml lists the packages by hand (the `mappings/` folder ships as
`dvcsync.bundled_mappings`, which discovery cannot produce): every folder of code or data must be in
the list, or the wheel silently lacks it while the checkout works."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def _folders(root: str) -> set[str]:
    """Folders holding files (caches aside), as dotted package names."""
    return {
        ".".join(folder.relative_to(REPO).parts)
        for folder in [REPO / root, *(REPO / root).rglob("*")]
        if folder.is_dir()
        and "__pycache__" not in folder.parts
        and any(f.is_file() and f.suffix != ".pyc" for f in folder.iterdir())
    }


def test_every_package_folder_is_listed() -> None:
    listed = set(SETUPTOOLS["packages"])
    on_disk = _folders("dvcsync") | _folders("mock_portal")
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - on_disk == {"dvcsync.bundled_mappings"}


def test_the_mappings_folder_ships_whole() -> None:
    assert SETUPTOOLS["package-dir"] == {"dvcsync.bundled_mappings": "mappings"}
    patterns = SETUPTOOLS["package-data"]["dvcsync.bundled_mappings"]
    root = REPO / "mappings"
    files = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.name != "__init__.py"
    ]
    assert files
    shipped = {p.relative_to(root).as_posix() for pattern in patterns for p in root.glob(pattern)}
    assert set(files) - shipped == set(), "add patterns for these to [tool.setuptools.package-data]"


# ---------------------------------------------------------------- dependencies, lock files, metadata

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _name(requirement: str) -> str:
    return canonicalize_name(Requirement(requirement).name)


def _declared(*extras: str) -> dict[str, Requirement]:
    requirements = [
        *PROJECT["dependencies"],
        *(r for e in extras for r in PROJECT["optional-dependencies"][e]),
    ]
    return {_name(r): Requirement(r) for r in requirements}


def _imported_top_level_modules() -> set[str]:
    """Every top-level module that dvcsync/ and mock_portal/ import (absolute imports only)."""
    found: set[str] = set()
    for root in ("dvcsync", "mock_portal"):
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.partition(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.partition(".")[0])
    return found - set(sys.stdlib_module_names) - {"dvcsync", "mock_portal", "__future__"}


def test_every_imported_distribution_is_declared() -> None:
    """An import served only because another dependency happens to pull it in breaks on the day
    that dependency stops doing so (sqlalchemy, starlette and h11 once were such imports)."""
    owners = importlib.metadata.packages_distributions()
    declared = _declared("postgres", "mysql")
    missing = {}
    for module in sorted(_imported_top_level_modules()):
        assert module in owners, f"{module} is imported but no installed distribution provides it"
        names = {canonicalize_name(d) for d in owners[module]}
        if not names & set(declared):
            missing[module] = sorted(names)
    assert missing == {}, "declare these in pyproject.toml [project] dependencies"


def _lock(name: str) -> dict[str, tuple[str, list[str]]]:
    """A lock file's pins: name -> (version, hashes)."""
    text = (REPO / name).read_text(encoding="utf-8").replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = line.split()
        assert "==" in requirement, f"{name}: {requirement!r} is not pinned to one version"
        package, version = requirement.split("==")
        hashes = [o.removeprefix("--hash=") for o in options if o.startswith("--hash=sha256:")]
        assert hashes, f"{name}: {requirement} has no sha256 hash"
        pins[canonicalize_name(package)] = (version, hashes)
    return pins


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements.lock", ("postgres", "mysql")), ("requirements-dev.lock", ("dev", "postgres", "mysql"))],
)
def test_the_lock_files_pin_every_declared_dependency_within_its_range(
    lock: str, extras: tuple[str, ...]
) -> None:
    pins = _lock(lock)
    for name, requirement in _declared(*extras).items():
        assert name in pins, f"{lock} lacks {name}: run `make lock`"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock} pins {name}=={version}, outside pyproject.toml's {requirement}: run `make lock`"
        )


def test_the_runtime_lock_agrees_with_the_dev_lock() -> None:
    runtime, dev = _lock("requirements.lock"), _lock("requirements-dev.lock")
    assert {n: v for n, (v, _) in runtime.items()} == {n: dev[n][0] for n in runtime if n in dev}
    assert set(runtime) <= set(dev)


def test_make_install_and_the_dockerfile_install_from_the_locks_only() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "$(STAMP): pyproject.toml $(LOCK)" in makefile and "LOCK     := requirements-dev.lock" in makefile
    assert "pip install --quiet --require-hashes -r $(LOCK)" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile
    assert "pip install --require-hashes -r requirements.lock" in (REPO / "Dockerfile").read_text(
        encoding="utf-8"
    )
    assert "!requirements.lock" in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()


def test_uvicorn_is_bounded_below_the_next_minor_release() -> None:
    """_serve.py subclasses uvicorn internals (tests/unit/test_uvicorn_internals.py): no open range."""
    (upper,) = [s for s in _declared()["uvicorn"].specifier if s.operator == "<"]
    assert upper.version.startswith("0.") and upper.version.count(".") == 1, upper


def test_license_typed_markers_and_changelog_ship() -> None:
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert (REPO / "LICENSE").read_text(encoding="utf-8").startswith("MIT License\n\nCopyright (c) 2026 ")
    assert "License :: " not in " ".join(PROJECT["classifiers"])  # the SPDX expression says it
    assert "Typing :: Typed" in PROJECT["classifiers"] and {"Homepage", "Changelog"} <= set(PROJECT["urls"])
    assert "py.typed" in SETUPTOOLS["package-data"]["*"]
    for package in ("dvcsync", "mock_portal"):
        assert (REPO / package / "py.typed").is_file(), package
    assert "## [Unreleased]" in (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
