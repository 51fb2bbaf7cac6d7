"""Satisfaction figures end to end, over real HTTP against the mock and the generated sample:

- 12 months of figures sent, equal to a computation straight from the sample database (SQL counts,
  exact fractions), percentages written as the contract writes them;
- a re-run sends nothing (the mock's write counts do not move);
- one correction (a rating changed for a month already sent) is re-sent exactly once, and the mock
  then holds the corrected figures in place of the old ones.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections import defaultdict
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from dvcsync.cli import app
from dvcsync.mapping import CodeLookupError, load_mappings
from dvcsync.sync import satisfaction
from dvcsync.sync.satisfaction import run_satisfaction
from mock_portal.testing import RunningMock

from .conftest import REPO, settings_for

TODAY = date(2026, 11, 20)  # the sample's snapshot is 2026-11-15: its last 12 complete months
MONTHS = [f"{m}-2026" for m in range(1, 11)] + ["11-2025", "12-2025"]
PERCENT = re.compile(r"^\d{1,3}%$")
LEVELS = ("rat_hai_long", "hai_long", "chua_hai_long")
Key = tuple[str, str, str]


def expected_figures(onestop: Path) -> dict[Key, tuple[int, int, int]]:
    """Counts per (NgayTongHop, MaThuTuc, Madonvi), from SQL and the code tables alone."""
    mappings = load_mappings(REPO / "mappings")
    procedures, agencies = mappings.codes["procedures"], mappings.codes["agencies"]
    with sqlite3.connect(onestop) as conn:
        rows = conn.execute(
            "SELECT substr(r.thoi_diem, 1, 7), d.ma_thu_tuc, d.ma_don_vi, r.muc_do, COUNT(*)"
            " FROM danh_gia r JOIN ho_so d ON d.id = r.ho_so_id"
            " WHERE r.thoi_diem >= '2025-11-01' AND r.thoi_diem < '2026-11-01' GROUP BY 1, 2, 3, 4"
        ).fetchall()
    out: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    for month, procedure, agency, level, count in rows:
        year, mon = int(month[:4]), int(month[5:])
        try:
            national = procedures.lookup(procedure)["ma_tthc"]
        except CodeLookupError:
            continue
        if not national:
            continue
        end = date(year + mon // 12, mon % 12 + 1, 1).toordinal() - 1
        ma = agencies.lookup(agency, date.fromordinal(end))["ma"]
        out[(f"{mon}-{year}", national, ma)][LEVELS.index(level)] += count
    return {key: (c[0], c[1], c[2]) for key, c in out.items()}


def _key(item: dict[str, Any]) -> Key:
    return item["NgayTongHop"], item["MaThuTuc"], item["Madonvi"]


def _check_item(item: dict[str, Any], counts: tuple[int, int, int]) -> None:
    total = sum(counts)
    assert item["TongSoNguoiDanhGia"] == str(total)
    fields = ("PhanTramDanhGiaRatHaiLong", "PhanTramDanhGiaHaiLong", "PhanTramDanhGiaChuaHaiLong")
    shown = [item[f] for f in fields]
    assert all(PERCENT.match(p) for p in shown), shown
    values = [int(p[:-1]) for p in shown]
    assert sum(values) == 100
    for value, count in zip(values, counts, strict=True):
        assert abs(Fraction(value) - Fraction(100 * count, total)) < 1  # the floor or the ceiling


def _admin(mock: RunningMock, path: str) -> Any:
    with httpx.Client(base_url=mock.url, timeout=30) as client:
        reply = client.get(f"/_admin{path}")
        reply.raise_for_status()
        return reply.json()


def _writes(mock: RunningMock) -> int:
    return int(_admin(mock, "/stats")["services"].get("DongBoDanhGia", {}).get("ok", 0))


def test_twelve_months_sent_once_and_a_correction_replaces(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    settings = settings_for(mock, onestop, tmp_path / "state.db", rate_limit=1000.0)
    mappings = load_mappings(REPO / "mappings")
    expected = expected_figures(onestop)
    assert {key[0] for key in expected} == set(MONTHS)

    first = asyncio.run(run_satisfaction(settings, mappings, today=TODAY))
    assert sorted(first.months) == sorted(MONTHS) and "11-2026" not in first.months
    assert (first.sent, first.resent, first.unchanged, first.failed) == (len(expected), 0, 0, 0)
    held = {_key(item): item for item in _admin(mock, "/ratings")}
    assert len(held) == len(_admin(mock, "/ratings")) == len(expected)
    assert set(held) == set(expected)
    for key, counts in expected.items():
        _check_item(held[key], counts)
    assert all(item["TenDonVi"] and item["NoiDung"] for item in held.values())
    writes = _writes(mock)
    assert writes == first.calls > 0

    again = asyncio.run(run_satisfaction(settings, mappings, today=TODAY))
    assert (again.sent, again.resent, again.unchanged, again.calls) == (0, 0, len(expected), 0)
    assert _writes(mock) == writes

    # A citizen changes a rating of a month already sent.
    with sqlite3.connect(onestop) as conn:
        rating_id, level = conn.execute(
            "SELECT r.id, r.muc_do FROM danh_gia r JOIN ho_so d ON d.id = r.ho_so_id"
            " WHERE r.thoi_diem LIKE '2026-03-%' AND d.ma_thu_tuc = 'HT-KS-01' ORDER BY r.id LIMIT 1"
        ).fetchone()
        changed = "chua_hai_long" if level != "chua_hai_long" else "rat_hai_long"
        conn.execute(
            "UPDATE danh_gia SET muc_do = ?, updated_at = '2026-11-16T09:00:00' WHERE id = ?",
            (changed, rating_id),
        )
    corrected = expected_figures(onestop)
    moved = [key for key in corrected if corrected[key] != expected[key]]
    assert len(moved) == 1 and moved[0][0] == "3-2026"

    third = asyncio.run(run_satisfaction(settings, mappings, today=TODAY))
    assert (third.sent, third.resent, third.unchanged, third.calls) == (0, 1, len(expected) - 1, 1)
    assert _writes(mock) == writes + 1
    stored = _admin(mock, "/ratings")
    assert len(stored) == len(expected)  # replaced, not appended
    assert _key(stored[-1]) == moved[0]  # the replacement is the latest arrival
    held = {_key(item): item for item in stored}
    _check_item(held[moved[0]], corrected[moved[0]])
    assert held[moved[0]]["TongSoNguoiDanhGia"] == str(sum(expected[moved[0]]))

    fourth = asyncio.run(run_satisfaction(settings, mappings, today=TODAY))
    assert (fourth.sent, fourth.resent, fourth.calls) == (0, 0, 0)
    assert _writes(mock) == writes + 1


def test_cli_sends_then_sends_nothing(
    mock: RunningMock, onestop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command has no --today: its months are counted back from TODAY, as if run that day (on
    # the wall clock a fixed window over the fixed sample would empty out some year).
    real = satisfaction.complete_months
    monkeypatch.setattr(
        satisfaction, "complete_months", lambda count, today=None: real(count, today or TODAY)
    )
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        f'[province]\nsource_url = "sqlite:///{onestop}"\nmappings = "{REPO / "mappings"}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\nsoap_url = "{mock.url}/soap"\n'
        "timeout = 5.0\nrate_limit = 1000.0\n"
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n',
        encoding="utf-8",
    )
    started = CliRunner().invoke(app, ["--config", str(config), "db", "upgrade"])  # as an operator does
    assert started.exit_code == 0, started.output
    runs = []
    for _ in range(2):
        result = CliRunner().invoke(
            app, ["--config", str(config), "sync", "satisfaction", "--months", "12", "--json"]
        )
        assert result.exit_code == 0, result.output
        runs.append(json.loads(result.stdout))
    first, second = runs
    assert sorted(first["months"]) == sorted(MONTHS)
    assert first["sent"] == first["figures"] > 0 and first["failed"] == 0
    assert second["sent"] == second["resent"] == second["calls"] == 0
    assert second["unchanged"] == first["figures"]
    assert len(_admin(mock, "/ratings")) == first["figures"]
