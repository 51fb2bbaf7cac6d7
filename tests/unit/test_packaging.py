"""pyproject.toml lists the packages by hand (the `mappings/` folder ships as
`adapter.bundled_mappings`, which discovery cannot produce): every folder of code or data must be in
the list, or the wheel silently lacks it while the checkout works."""

from __future__ import annotations

import tomllib
from pathlib import Path

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
    on_disk = _folders("adapter") | _folders("mock_portal")
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - on_disk == {"adapter.bundled_mappings"}


def test_the_mappings_folder_ships_whole() -> None:
    assert SETUPTOOLS["package-dir"] == {"adapter.bundled_mappings": "mappings"}
    patterns = SETUPTOOLS["package-data"]["adapter.bundled_mappings"]
    root = REPO / "mappings"
    files = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.name != "__init__.py"
    ]
    assert files
    shipped = {p.relative_to(root).as_posix() for pattern in patterns for p in root.glob(pattern)}
    assert set(files) - shipped == set(), "add patterns for these to [tool.setuptools.package-data]"
