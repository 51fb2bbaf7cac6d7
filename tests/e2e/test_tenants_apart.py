"""Tenants apart everywhere (issue 20 item 3): two provinces with the same dossier codes, each on
its own mock portal, run every job and a reconciliation with personal data through the real
command; every file each tenant's commands write, and every state table's identity, is that
tenant's alone. A reconcile report with personal data is 0600 in a 0700 folder (item 7)."""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from dvcsync.mapping import load_mappings
from dvcsync.province.sample import generate
from mock_portal.testing import RunningMock, run_mock_process

from .conftest import REPO, seed_portal

CODES = ("tinh-a", "tinh-b")
SHARED_CODE = "G22.99-261123-777001"  # one dossier code filed on both portals, a document each
PDF = b"%PDF-1.4\n1 0 obj<< /Type /Catalog >>endobj\ntrailer<< /Root 1 0 R >>\n%%EOF\n"


def _file_on_portal(mock: RunningMock, code: str) -> None:
    procedures = load_mappings(REPO / "mappings").codes["procedures"]
    dossier = {
        "MaHoSo": SHARED_CODE,
        "MaTTHC": procedures.lookup(next(iter(procedures)))["ma_tthc"],
        "ChuHoSo": f"Người nộp {code}",
        "LoaiDoiTuong": "1",
        "TrichYeuHoSo": "Hồ sơ có tệp đính kèm",
        "NgayNopHoSo": "20261123090000",
        "TaiLieuNop": [
            {
                "TepDinhKemId": "1",
                "TenTepDinhKem": "Đơn đề nghị.pdf",
                "Base64": base64.b64encode(PDF + code.encode()).decode("ascii"),
            }
        ],
    }
    seeded = httpx.post(
        f"{mock.url}/_admin/portal-dossiers",
        params={"push": "false"},
        json={"dossiers": [dossier]},
        timeout=30,
    )
    assert seeded.status_code < 300, seeded.text


def _dvcsync(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=clean | env,
        cwd=config.parent,
        timeout=300,
    )


def _config(tmp_path: Path, portals: dict[str, RunningMock]) -> Path:
    text = (
        f'[province]\nmappings = "{REPO / "mappings"}"\n'
        "[portal]\nrate_limit = 1000\nbatch_size = 100\ntimeout = 10\n"
        '[state]\nurl = "sqlite:///var/dvcsync-state.db"\n'
        '[reconcile]\nout_dir = "var/reports"\n'
    )
    for code, mock in portals.items():
        text += (
            f'[tenants.{code}.province]\nsource_url = "sqlite:///{code}.db"\n'
            f'[tenants.{code}.portal]\nadapter_url = "{mock.adapter_url}"\nsoap_url = "{mock.url}/soap"\n'
        )
    config = tmp_path / "dvcsync.toml"
    config.write_text(text, encoding="utf-8")
    return config


def _files(root: Path) -> dict[Path, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time (what a command changed)."""
    return {
        p.relative_to(root): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def _state_text(db: Path) -> str:
    """Every value of every table of a state, as text (what it holds, whoever wrote it)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert tables
        return "\n".join(
            str(value)
            for table in tables
            for row in conn.execute(f'SELECT * FROM "{table}"')
            for value in row
        )


def _owner(path: Path) -> str | None:
    """The tenant a file of the shared folder belongs to, by its folder or its state file's name."""
    for code in CODES:
        if code in path.parts[:-1] or path.name.startswith(f"dvcsync-state-{code}.db"):
            return code
    return None


def test_every_file_and_table_a_tenant_writes_is_its_own(tmp_path: Path) -> None:
    for code in CODES:
        generate(tmp_path / f"{code}.db", 30, 7)  # the same seed: the same dossier codes in both
    with run_mock_process() as mock_a, run_mock_process() as mock_b:
        portals = {"tinh-a": mock_a, "tinh-b": mock_b}
        for code, mock in portals.items():
            seed_portal(mock, tmp_path / f"{code}.db")
            _file_on_portal(mock, code)
        config = _config(tmp_path, portals)
        var = tmp_path / "var"
        written: dict[str, set[Path]] = {}
        for code in CODES:
            before = _files(tmp_path)
            for args in (
                ["db", "upgrade"],
                ["sync", "all"],
                ["reconcile", "--show-personal"],
                ["status"],
            ):
                done = _dvcsync(config, *args, "--tenant", code)
                assert done.returncode in (0, 1), (args, done.stdout, done.stderr)
                assert "Traceback" not in done.stderr
            after = _files(tmp_path)
            written[code] = {p for p, seen in after.items() if before.get(p) != seen}
        for code in CODES:
            in_var = {p for p in written[code] if p.parts[0] == "var"}
            assert in_var, f"{code} wrote nothing under var/"
            strays = {p for p in in_var if _owner(p.relative_to("var")) != code}
            assert not strays, f"{code} wrote outside its own partition: {sorted(map(str, strays))}"
            documents = [p for p in in_var if p.parts[1] == "documents"]
            assert documents and all(p.parts[2] == code for p in documents), sorted(map(str, in_var))
            assert (var / "reports" / code).is_dir()
            reports = [d for d in (var / "reports" / code).iterdir() if d.is_dir()]
            assert reports
            for folder in reports:
                assert stat.S_IMODE(folder.stat().st_mode) == 0o700
                for file in folder.iterdir():
                    assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
            other = next(c for c in CODES if c != code)
            text = _state_text(var / f"dvcsync-state-{code}.db")
            assert SHARED_CODE in text and portals[code].adapter_url in text and f"{code}.db" in text
            for foreign in (
                portals[other].adapter_url,
                f"{other}.db",
                f"tenants.{other}",
                f"Người nộp {other}",
            ):
                assert foreign not in text, f"{code}'s state holds {foreign!r}"
        assert not set(written["tinh-a"]) & set(written["tinh-b"])
