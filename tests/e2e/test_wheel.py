"""The wheel, installed in a fresh virtual environment outside the repository, runs `dvcsync init`
and `dvcsync demo`: everything it needs (mappings, code tables, WSDL, fixtures) ships inside it.

Dependencies come from the package index as pip is configured (PyPI on a CI machine); pip's own
cache makes later runs faster. Every subprocess is bounded by a timeout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What the build reads; copied so that building leaves nothing (build/, *.egg-info) in the checkout.
BUILD_INPUTS = ("pyproject.toml", "README.md", "dvcsync", "mock_portal", "mappings")


def _run(
    cmd: list[str], *, timeout: float, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=env
    )
    assert result.returncode == 0, f"{cmd} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def _snapshot(root: Path) -> dict[str, int]:
    """Files under root (caches of compiled bytecode aside) and their modification times."""
    return {
        str(p.relative_to(root)): p.stat().st_mtime_ns
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_in_a_fresh_venv_runs_init_and_demo(tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    started = time.perf_counter()

    src = tmp_path / "src"
    for name in BUILD_INPUTS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(source, src / name)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)], timeout=300)
    (wheel,) = dist.glob("dvcsync-*.whl")
    timings["build"] = time.perf_counter() - started

    mark = time.perf_counter()
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    _run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], timeout=600)
    timings["install"] = time.perf_counter() - mark

    work, home, tmp = tmp_path / "work", tmp_path / "home", tmp_path / "tmp"
    for folder in (work, home, tmp):
        folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVCSYNC_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), TMPDIR=str(tmp), XDG_CACHE_HOME=str(home / ".cache"), NO_COLOR="1")
    repo_before = {p.name for p in REPO.iterdir()}
    venv_before = _snapshot(venv)

    mark = time.perf_counter()
    dvcsync = str(venv / "bin" / "dvcsync")
    init = _run([dvcsync, "init"], timeout=60, cwd=work, env=env)
    assert "next:" in init.stdout
    demo = _run([dvcsync, "demo", "--dossiers", "200"], timeout=300, cwd=work, env=env)
    assert "pushed (DongBoHoSoMC)" in demo.stdout
    status = _run([dvcsync, "--config", "demo-out/dvcsync.toml", "status"], timeout=60, cwd=work, env=env)
    assert "last runs" in status.stdout
    timings["init+demo"] = time.perf_counter() - mark

    # It ran from the wheel, not from the checkout, and wrote only into its own folder.
    site = _run(
        [str(venv / "bin" / "python"), "-c", "import dvcsync; print(dvcsync.__file__)"],
        timeout=60,
        cwd=work,
        env=env,
    )
    assert Path(site.stdout.strip()).is_relative_to(venv)
    assert {p.name for p in work.iterdir()} == {"dvcsync.toml", "mappings", "demo-out"}
    assert (work / "mappings" / "codes" / "procedures.yaml").is_file()
    assert (work / "demo-out" / "state.db").is_file()
    assert _snapshot(venv) == venv_before, "the installed package was written to"
    assert {p.name for p in REPO.iterdir()} - repo_before == set(), "files appeared in the checkout"
    assert not [p for p in home.rglob("*") if p.is_file()], "files appeared in HOME"
    timings["total"] = time.perf_counter() - started
    print(" ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
