"""Any one-stop system by configuration alone (issue #19 item 1): every job on a deterministic
renaming of every table and column of the sample (ids and audit columns too), where only the
files ``dvcsync init`` writes were rewritten (dvcsync.toml and mappings/: province.yaml and the
specs), gives the same outcomes as on the sample itself.

Each run, through the command line as an operator would: ``init``, ``db upgrade``, the mock portal
started by ``dvcsync mock-portal --knows onestop.db`` (a real process; the portal-submitted
dossiers it knows are found through the configuration), ``sync push``, ``sync pull`` of dossiers
submitted on the portal, a withdrawal made on the portal (``sync pull`` applies it), payments
(INIT, the citizen pays, QUERY applies it once, the receipt is saved), ``reconcile`` and
``reconcile repair``, catalogue pull/match/apply and the push after it, ``sync satisfaction``.
Compared: every command's counts, what the mock holds and answered, the report's categories and
items, and every row of the province's database (the renamed one mapped back through the renaming;
times written during the run, payment references and the run's folder normalised).
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from adapter.cli import app
from adapter.demo import new_portal_dossiers
from adapter.mapping import load_mappings
from adapter.province.sample import generate
from adapter.reconcile.period import local_now
from adapter.reconcile.repair import repairable
from adapter.sync import satisfaction
from mock_portal.testing import free_port

from ..renamed_schema import original_rows, rename, rename_database, renamed_mappings

pytestmark = pytest.mark.slow

SATISFACTION_TODAY = date(2026, 11, 20)  # the sample's snapshot is 2026-11-15: 12 complete months
SUBMITTED = datetime(2026, 11, 15, 9, 0)  # when the new portal dossiers were submitted (both runs)
UNMAPPED = ("DD-HG-01", "TM-HE-01", "XN-TT-01", "HT-XNCT-01")  # procedures without a national code
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
REF_TAIL = re.compile(r"(-T[TS])[0-9A-F]{12}")


def _same(name: str) -> str:
    return name


@contextmanager
def _mock_with_knows(config: Path, onestop: Path, port: int, state: Path) -> Iterator[str]:
    """``dvcsync mock-portal --knows onestop.db`` in its own process (mappings from the config)."""
    argv = ["--config", str(config), "mock-portal", "--knows", str(onestop), "--port", str(port)]
    log = (state.parent / "mock.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "adapter.cli", *argv, "--state", str(state), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                log.flush()
                text = (state.parent / "mock.log").read_text(encoding="utf-8", errors="replace")
                raise AssertionError(f"mock-portal --knows exited {process.returncode}: {text}")
            try:
                if httpx.get(f"{url}/_admin/stats", timeout=1.0, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mock-portal --knows did not answer in time"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def _cli(config: Path, *args: str, codes: tuple[int, ...] = (0,)) -> Any:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in codes, (args, result.exit_code, result.output)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def _counts(data: Any) -> Any:
    """A command's JSON without what the clock decides (durations, rates)."""
    if isinstance(data, dict):
        return {
            k: _counts(v)
            for k, v in data.items()
            if not k.endswith(("_s", "elapsed", "per_s", "_at", "seconds", "_date"))
        }
    if isinstance(data, list):
        return [_counts(v) for v in data]
    return data


def _run(folder: Path, base: Path, *, renamed: bool, period: tuple[str, str], today: str) -> dict[str, Any]:
    """Every job on a copy of ``base`` (renamed or not); what came out of each."""
    n: Callable[[str], str] = rename if renamed else _same
    folder.mkdir()
    onestop = folder / "onestop.db"
    onestop.write_bytes(base.read_bytes())
    _cli(folder / "unused.toml", "init", str(folder))  # dvcsync.toml and mappings/, as shipped
    mappings = folder / "mappings"
    if renamed:
        rename_database(onestop)
        renamed_mappings(mappings, mappings)  # only the files init wrote are rewritten
    port = free_port()
    mock = f"http://127.0.0.1:{port}"
    config = folder / "dvcsync.toml"
    config.write_text(
        f'[province]\nsource_url = "sqlite:///{onestop}"\nmappings = "{mappings}"\n'
        f'documents_dir = "{folder / "documents"}"\n'
        f'[portal]\nadapter_url = "{mock}/dvcqg"\nsoap_url = "{mock}/soap"\ntimeout = 10.0\n'
        "rate_limit = 1000.0\n"
        f'[payment]\ninit_url = "{mock}/payment/init"\nquery_url = "{mock}/payment/query"\n'
        f'bill_url = "{mock}/payment/bill"\npoll_min_age_s = 0\nreceipts_dir = "{folder / "receipts"}"\n'
        f'[state]\nurl = "sqlite:///{folder / "state.db"}"\n'
        f'[reconcile]\nout_dir = "{folder / "reports"}"\n',
        encoding="utf-8",
    )
    mset = load_mappings(mappings)
    out: dict[str, Any] = {}
    _cli(config, "db", "upgrade")
    with (
        _mock_with_knows(config, onestop, port, folder / "mock.db") as url,
        httpx.Client(base_url=f"{url}/_admin", timeout=60) as admin,
    ):
        out["knows"] = sorted(d["MaHoSo"] for d in admin.get("/portal-dossiers").json())

        out["push"] = _counts(_cli(config, "sync", "push", "--json", codes=(0, 1)))

        # citizens submit three dossiers on the portal; one of them then withdraws it there
        new = new_portal_dossiers(mset, 3, now=SUBMITTED)
        admin.post("/portal-dossiers", params={"push": "false"}, json={"dossiers": new}).raise_for_status()
        out["pull"] = _counts(_cli(config, "sync", "pull", "--json"))
        admin.post(f"/dossiers/{new[0]['MaHoSo']}/withdraw").raise_for_status()
        out["withdrawal"] = _counts(_cli(config, "sync", "pull", "--json"))
        out["push after pull"] = _counts(_cli(config, "sync", "push", "--json", codes=(0, 1)))

        # the one-stop system asks an applicant to pay; INIT; the citizen pays; QUERY applies it once
        with sqlite3.connect(onestop) as conn:
            dossier, fee = n("ho_so"), n("le_phi")
            (hid,) = conn.execute(
                f"SELECT h.{n('id')} FROM {dossier} h WHERE h.{n('trang_thai')} IN ('processing', 'waiting')"
                f" AND EXISTS (SELECT 1 FROM {fee} f WHERE f.{n('ho_so_id')} = h.{n('id')}"
                f" AND f.{n('hinh_thuc_thu')} = 'thu_truoc' AND f.{n('so_tien')} > 0) ORDER BY h.{n('id')}"
            ).fetchone()
            conn.execute(
                f"UPDATE {fee} SET {n('da_thanh_toan')} = 0 WHERE {n('ho_so_id')} = ?"
                f" AND {n('hinh_thuc_thu')} = 'thu_truoc'",
                (hid,),
            )
            conn.execute(
                f"UPDATE {dossier} SET {n('trang_thai')} = 'paying', {n('updated_at')} = ?"
                f" WHERE {n('id')} = ?",
                (local_now().replace(tzinfo=None, microsecond=0).isoformat(), hid),
            )
        out["payments INIT"] = _counts(_cli(config, "sync", "payments", "--json"))
        with sqlite3.connect(onestop) as conn:
            (ref,) = conn.execute(
                f"SELECT {n('ma_tham_chieu')} FROM {n('thanh_toan')} WHERE {n('ho_so_id')} = ?"
                f" AND {n('trang_thai')} = 'created'",
                (hid,),
            ).fetchone()
        paid = {"deliver": False, "MaGiaoDich": "GD-E2E-1", "ThoiGianGD": "20261115100000"}
        admin.post(f"/payments/{ref}/pay", json=paid).raise_for_status()
        out["payments QUERY"] = _counts(_cli(config, "sync", "payments", "--json"))
        out["payments again"] = _counts(_cli(config, "sync", "payments", "--json"))

        # a change the province made behind the push's cursor (days ago): reconcile finds it stale
        with sqlite3.connect(onestop) as conn:
            (stale,) = conn.execute(
                f"SELECT {n('id')} FROM {dossier} WHERE {n('trang_thai')} = 'waiting' AND {n('id')} <> ?"
                f" AND {n('ma_ho_so_qg')} IS NULL ORDER BY {n('id')}",
                (hid,),
            ).fetchone()
            days_ago = f"{date.fromisoformat(today) - timedelta(days=3)}T08:00:00"  # the same in both runs
            conn.execute(
                f"UPDATE {dossier} SET {n('trang_thai')} = 'processing', {n('updated_at')} = ?"
                f" WHERE {n('id')} = ?",
                (days_ago, stale),
            )

        since, until = period
        report = folder / "report"
        common = ("--since", since, "--until", until, "--format", "json", "--portal-check", "all")
        found = _cli(config, "reconcile", *common, "--out", str(report), "--json", codes=(0, 1))
        out["reconcile"] = {
            "counts": found["counts"],
            "items": sorted((i["category"], i["ma_ho_so"] or "") for i in found["items"]),
        }
        # every repairable category found, repaired through the outbox, then a report after it
        out["repair"] = {
            category: _cli(
                config, "reconcile", "repair", category, "--report", str(report / "reconcile.json"), "--json"
            )
            for category in repairable()
            if found["counts"].get(category)
        }
        after = _cli(config, "reconcile", *common, "--out", str(folder / "after"), "--json", codes=(0, 1))
        out["reconcile after repair"] = after["counts"]

        out["catalogue pull"] = _counts(_cli(config, "catalogue", "pull", "--json", codes=(0, 1)))
        review = folder / "review.csv"
        _cli(config, "catalogue", "match", "--out", str(review))
        with review.open(encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f))
        out["catalogue match"] = [(r["local_code"], r["status"], r["candidate_1_code"]) for r in rows]
        for row in rows:  # the reviewer: the best candidate for two, "none" for the other two
            if row["local_code"] in UNMAPPED[:2]:
                row["decision"] = "1"
            elif row["local_code"] in UNMAPPED[2:]:
                row["decision"] = "không"
        with review.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        out["catalogue apply"] = _counts(
            _cli(config, "catalogue", "apply", str(review), "--by", "Nguyễn Thị Lan", "--json")
        )
        out["push after catalogue"] = _counts(_cli(config, "sync", "push", "--json", codes=(0, 1)))

        out["satisfaction"] = _counts(_cli(config, "sync", "satisfaction", "--months", "12", "--json"))

        stats = admin.get("/stats").json()
        out["mock"] = {
            "services": stats["services"],
            "dossiers": admin.get("/dossiers", params={"size": 1}).json()["total"],
            "portal dossiers": sorted(
                (d["MaHoSo"], d.get("status"), bool(d.get("acknowledged")))
                for d in admin.get("/portal-dossiers").json()
            ),
            "payments": sorted(
                (REF_TAIL.sub(r"\1", p["ma_tham_chieu"]), p["state"], p["so_tien"])
                for p in admin.get("/payments").json()
            ),
            "ratings": len(admin.get("/ratings").json()),
        }
    out["rows"] = original_rows(onestop, renamed)
    normalised: dict[str, Any] = _normalised(out, folder, mock, today=today)
    return normalised


def _normalised(data: Any, folder: Path, mock: str, *, today: str) -> Any:
    """What differs between two runs by construction made equal, in keys and values alike: the
    run's folder and the mock's port, a payment reference's random tail, times written during the
    run (today's or later)."""

    def text(v: str) -> str:
        if TIME.match(v) and v[:10] >= today:
            return "<written now>"
        return REF_TAIL.sub(r"\1<random>", v.replace(str(folder), "<run>").replace(mock, "<mock>"))

    if isinstance(data, dict):
        return {
            text(k) if isinstance(k, str) else k: _normalised(v, folder, mock, today=today)
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [_normalised(v, folder, mock, today=today) for v in data]
    return text(data) if isinstance(data, str) else data


def test_every_job_same_outcomes_on_a_renamed_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = satisfaction.complete_months  # months counted back from a fixed day, not the wall clock
    monkeypatch.setattr(
        satisfaction, "complete_months", lambda count, today=None: real(count, today or SATISFACTION_TODAY)
    )
    base = tmp_path / "sample.db"
    generate(base, 300, 19)
    today = local_now().date()
    period = ((today - timedelta(days=60)).isoformat(), (today + timedelta(days=1)).isoformat())
    original = _run(tmp_path / "original", base, renamed=False, period=period, today=today.isoformat())
    renamed = _run(tmp_path / "renamed", base, renamed=True, period=period, today=today.isoformat())

    for key in original:
        if key != "rows":
            assert renamed[key] == original[key], key
    for table, rows in original["rows"].items():
        assert len(renamed["rows"][table]) == len(rows), table
        for mine, theirs in zip(renamed["rows"][table], rows, strict=True):
            assert mine == theirs, (table, {k: (v, theirs[k]) for k, v in mine.items() if theirs[k] != v})
    # and the run did what it says
    assert original["knows"] and original["push"]["dossiers_pushed"] > 0
    assert original["pull"]["created"] == 3 and original["withdrawal"]["withdrawn"] == 1
    assert original["payments QUERY"]["paid"] == 1 and original["payments QUERY"]["receipts"] == 1
    assert original["payments again"]["paid"] == 0
    assert original["reconcile"]["counts"]["stale"] == 1 and original["reconcile after repair"]["stale"] == 0
    assert list(original["repair"]) == ["stale"]
    assert original["satisfaction"]["sent"] > 0 and original["mock"]["ratings"] > 0
