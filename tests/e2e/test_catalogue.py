"""Catalogue alignment end to end, over real HTTP against the mock and real SQLite files:

- the review round trip: pull → match → a person edits the review file → apply → push: the dossiers
  quarantined for a procedure without a national code are pushed with the chosen code, those marked
  "no national equivalent" are not sent, and counted;
- `catalogue pull` after the mock's catalogue changed at run time: the change report lists exactly
  the changes.
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from dvcsync.cli import app
from dvcsync.state import StateStore
from mock_portal.testing import RunningMock, run_mock

from .conftest import REPO

UNMAPPED = ("DD-HG-01", "TM-HE-01", "XN-TT-01", "HT-XNCT-01")


def _config(tmp_path: Path, mock: RunningMock, onestop: Path) -> tuple[Path, Path]:
    """A configuration of its own, with a copy of the mappings the review may write into, and its
    state started by ``dvcsync db upgrade`` as an operator does."""
    mappings = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        f'[province]\nsource_url = "sqlite:///{onestop}"\nmappings = "{mappings}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\nsoap_url = "{mock.url}/soap"\n'
        "timeout = 5.0\nrate_limit = 1000.0\n"  # the default 20 calls/s makes a pull of 378 take 19 s
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n',
        encoding="utf-8",
    )
    code, out = _cli(config, "db", "upgrade")
    assert code == 0, out
    return config, mappings


def _cli(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def _dossiers_of(onestop: Path, procedure: str) -> set[str]:
    with sqlite3.connect(onestop) as conn:
        rows = conn.execute(
            "SELECT so_ho_so FROM ho_so WHERE ma_thu_tuc = ? AND ma_ho_so_qg IS NULL", (procedure,)
        ).fetchall()
    return {row[0] for row in rows}


def _on_portal(mock: RunningMock, codes: set[str]) -> dict[str, dict[str, Any]]:
    out = {}
    with httpx.Client(base_url=mock.url, timeout=30) as client:
        for code in sorted(codes):
            reply = client.get(f"/_admin/dossiers/{code}")
            if reply.status_code == 200:
                out[code] = reply.json()
    return out


def test_review_round_trip_match_edit_apply_push(mock: RunningMock, onestop: Path, tmp_path: Path) -> None:
    config, mappings = _config(tmp_path, mock, onestop)
    by_procedure = {code: _dossiers_of(onestop, code) for code in UNMAPPED}
    assert all(by_procedure.values()), "the sample has dossiers of every unmapped procedure"

    code, out = _cli(config, "sync", "push", "--json")
    first = json.loads(out)
    quarantined = set().union(*by_procedure.values())
    assert first["enqueue"]["quarantined"] >= len(quarantined)
    assert not _on_portal(mock, quarantined)

    code, out = _cli(config, "catalogue", "pull", "--json")
    pulled = json.loads(out)
    assert code in (0, 1) and pulled["changes"]["first"] and pulled["procedures"] >= 300

    review = tmp_path / "review.csv"
    code, out = _cli(config, "catalogue", "match", "--out", str(review))
    assert code == 0, out
    with review.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert review.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads the diacritics
    assert {r["local_code"] for r in rows} >= set(UNMAPPED)
    statuses = {r["local_code"]: r["status"] for r in rows}
    assert {statuses[c] for c in UNMAPPED} == {"unmapped"}
    assert sorted(c for c, s in statuses.items() if s == "unverified") == ["DB-GPLX-01", "TM-KM-01"]
    # the person: the best candidate for two, "none" for the other two, the rest left as proposed
    chosen: dict[str, str] = {}
    for row in rows:
        if row["local_code"] in ("DD-HG-01", "TM-HE-01"):
            assert row["candidate_1_code"], row
            chosen[row["local_code"]] = row["candidate_1_code"]
            row["decision"] = "1"
        elif row["local_code"] in ("XN-TT-01", "HT-XNCT-01"):
            row["decision"] = "không"
    with review.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    code, out = _cli(config, "catalogue", "apply", str(review), "--by", "Nguyễn Thị Lan", "--json")
    assert code == 0, out
    applied = json.loads(out)
    released = by_procedure["DD-HG-01"] | by_procedure["TM-HE-01"]
    skipped = by_procedure["XN-TT-01"] | by_procedure["HT-XNCT-01"]
    assert applied["no_equivalent"] == 2
    assert applied["requeue"]["released"] == len(released)
    assert applied["requeue"]["skipped"] == len(skipped)
    assert applied["requeue"]["still_quarantined"] == 0
    table = yaml.safe_load((mappings / "codes" / "procedure_decisions.yaml").read_text(encoding="utf-8"))
    for local, national in chosen.items():
        entry = table["entries"][local]
        assert entry["ma_tthc"] == national and entry["decided_at"]
        assert entry["decided_by"] == "Nguyễn Thị Lan"
    assert set(table["skip"]) == {"XN-TT-01", "HT-XNCT-01"}
    assert table["skip"]["XN-TT-01"]["reason"] == "no national equivalent"
    code, out = _cli(config, "mappings", "check", "--json")
    assert code in (0, 1), out  # the mapping still loads with the decisions

    code, out = _cli(config, "sync", "push", "--json")
    second = json.loads(out)
    stored = _on_portal(mock, released | skipped)
    assert set(stored) == released  # pushed, each with the national code chosen for it
    for local in ("DD-HG-01", "TM-HE-01"):
        assert {stored[k]["MaTTHC"] for k in by_procedure[local]} == {chosen[local]}
    assert second["dossiers_pushed"] >= len(released)
    # "no national equivalent": not sent, and said so with the count
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        held = {row["record_key"]: json.loads(row["errors"]) for row in store.quarantined(limit=100_000)}
    finally:
        store.close()
    assert not released & set(held)
    # "no national equivalent": counted as not sent when apply re-read them (above), no longer
    # quarantined, and never on the portal
    assert not skipped & set(held)
    assert second["enqueue"]["quarantined"] == 0

    # a second apply of the same file changes nothing
    code, out = _cli(config, "catalogue", "apply", str(review), "--json")
    again = json.loads(out)
    assert code == 0 and again["accepted"] == 0 and again["no_equivalent"] == 0


def test_apply_refuses_a_bad_review_with_file_line_and_value(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    config, _ = _config(tmp_path, mock, onestop)
    assert _cli(config, "catalogue", "pull", "--json")[0] in (0, 1)
    bad = tmp_path / "bad.csv"
    bad.write_text("local_code,decision\nDD-HG-01,9.99\nXN-TT-01,none\n", encoding="utf-8-sig")
    result = CliRunner().invoke(app, ["--config", str(config), "catalogue", "apply", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2:" in result.stderr and "'9.99'" in result.stderr
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("local_code,decision\nDD-HG-01,1.999999\n", encoding="utf-8-sig")
    result = CliRunner().invoke(app, ["--config", str(config), "catalogue", "apply", str(unknown)])
    assert result.exit_code == 2 and f"{unknown}:2:" in result.stderr and "1.999999" in result.stderr


@pytest.fixture
def live_mock() -> Iterator[RunningMock]:
    """The mock in this process (real HTTP on loopback), so its catalogue can be changed at run
    time through the admin route (mock_portal/admin_catalogue.py)."""
    with run_mock() as running:
        yield running


def test_pull_after_the_catalogue_changes_reports_exactly_the_changes(
    live_mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    config, _ = _config(tmp_path, live_mock, onestop)
    code, out = _cli(config, "catalogue", "pull", "--json")
    assert json.loads(out)["changes"]["first"]
    code, out = _cli(config, "sync", "catalogue", "--json")  # the scheduled job's cycle, same command
    quiet = json.loads(out)["changes"]
    assert not quiet["first"] and all(not v for k, v in quiet.items() if k != "first")  # nothing changed

    with httpx.Client(base_url=live_mock.url, timeout=10) as admin:
        new = {
            "MATTHC": "1.099001",
            "TENTTHC": "Cấp giấy phép tổ chức biểu diễn nghệ thuật",
            "TRANGTHAI": "1",
            "LINHVUCTHUCHIEN": [{"MALINHVUC": "VH-VH", "TENLINHVUC": "Văn hóa"}],
        }
        assert admin.post("/_admin/catalogue/procedures", json=new).status_code == 200
        procedures = "/_admin/catalogue/procedures"
        renamed = {"TENTTHC": "Tiếp nhận thông báo sản phẩm quảng cáo"}
        assert admin.patch(f"{procedures}/1.004639", json=renamed).status_code == 200
        assert admin.patch(f"{procedures}/2.000033", json={"TRANGTHAI": "0"}).status_code == 200
        assert admin.delete(f"{procedures}/1.001807").status_code == 200
        assert admin.patch(f"{procedures}/2.000620", json={"fees": [700000]}).status_code == 200
        abolish = {"TRANGTHAI": "0", "NGAYHETHIEULUC": "2025-06-30"}
        assert admin.patch("/_admin/catalogue/agencies/000.00.46.H40", json=abolish).status_code == 200

    code, out = _cli(config, "catalogue", "pull", "--json")
    report = json.loads(out)
    changes = report["changes"]
    assert changes["new"] == [{"code": "1.099001", "name": "Cấp giấy phép tổ chức biểu diễn nghệ thuật"}]
    assert changes["renamed"] == [
        {
            "code": "1.004639",
            "name": "Tiếp nhận thông báo sản phẩm quảng cáo",
            "old_name": "Tiếp nhận thông báo sản phẩm quảng cáo trên bảng quảng cáo, băng-rôn",
        }
    ]
    assert sorted(c["code"] for c in changes["withdrawn"]) == ["1.001807", "2.000033"]
    assert [c["code"] for c in changes["fees_changed"]] == ["2.000620"]
    assert changes["fees_changed"][0]["fees"] == [700000]
    assert [a["code"] for a in changes["agencies_abolished"]] == ["000.00.46.H40"]
    rest = {
        k: v
        for k, v in changes.items()
        if k not in ("first", "new", "renamed", "withdrawn", "fees_changed", "agencies_abolished")
    }
    assert all(not v for v in rest.values()), rest
    # what that makes wrong locally: TM-KM-01 is mapped to the withdrawn 2.000033, TM-RUOU-01 charges
    # another fee than the national record now says
    reports = report["reports"]
    assert [r["local_code"] for r in reports["withdrawn"]] == ["TM-KM-01"]
    assert "TM-RUOU-01" in {r["local_code"] for r in reports["fees_differ"]}
    assert code == 1  # a local code needs a person
