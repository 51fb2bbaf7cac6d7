"""Every job through the command line against the mock portal, on any profile's database: shared
by the end-to-end runs on both profiles (``tests/e2e/test_every_job.py``) and on a renaming of the
sample (``tests/e2e/test_renamed_schema.py``).

One run, as an operator would: ``init`` (with the profile), ``db upgrade``, ``dvcsync mock-portal
--knows onestop.db`` (a real process; the portal-submitted dossiers it knows are found through the
configuration), ``sync push``, ``sync pull`` of dossiers submitted on the portal, a withdrawal made
there, payments (the one-stop system asks an applicant to pay, INIT, the citizen pays, QUERY
applies it once, the receipt is saved; a second one paid told by the platform's signed callback,
applied once), ``reconcile`` with a change planted behind the push's
cursor and ``reconcile repair``, catalogue pull/match/apply and the push after it, ``sync
satisfaction``. Everything the run touches in the province goes through the profile's
``province.yaml`` (the boundary), never a table name of its own.

Also the comparisons the end-to-end tests of a profile share (``tests/e2e/test_opencps_push.py``,
``tests/e2e/test_source_servers.py``): what the mappings make of a database (``expected``), what
the mock portal stores (``stored``), the two held equal (``assert_portal_holds``), and dossiers
citizens submit on the portal for the OpenCPS profile (``opencps_submitted``).
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from dvcsync.cli import app
from dvcsync.config import Settings
from dvcsync.demo import local_status, new_portal_dossiers
from dvcsync.mapping import MappingSet, load_mappings
from dvcsync.province.payments import CREATED, PaymentLedger
from dvcsync.province.schema import load_schema
from dvcsync.province.source import SqlSource, make_engine
from dvcsync.reconcile.repair import repairable
from dvcsync.state.inbox import Inbox
from dvcsync.state.store import StateStore
from dvcsync.sync.payment_inbound import handle_callback
from mock_portal.testing import free_port

SUBMITTED = datetime(2026, 11, 15, 9, 0)  # when the new portal dossiers were submitted (every run)
# Procedures without a national code in both samples: the reviewer takes the best candidate for
# the first two, "no national equivalent" for the other two.
UNMAPPED = ("DD-HG-01", "TM-HE-01", "XN-TT-01", "HT-XNCT-01")
PROCESSING, WAITING = "4", "5"  # national statuses
ASKED_FROM = (PROCESSING, WAITING, "9")  # where a dossier is asked to pay from (9: processed)
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
REF_TAIL = re.compile(r"(-T[TS])[0-9A-F]{12}")


# What the mock keeps of a dossier beyond what was sent: left out when comparing with the mappings.
ADMIN_KEYS = frozenset(
    {"QuaTrinhXuLy", "writes", "writes_by_service", "warnings", "created_at", "updated_at", "admin_edits"}
)
# The province's own dossiers that map, by MaHoSo: their DongBoHoSoMC item and history entries.
Own = dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]


def expected(url: str, mset: MappingSet, profile: str) -> tuple[Own, dict[str, str]]:
    """What the profile's mappings make of the database at ``url``, every row read (no row
    filter): (the province's own dossiers that map, portal code → the status reported for it).
    Drafts (OpenCPS: no status) are never sent; a dossier the portal owns is reported, not sent."""
    spec = mset.specs["dossier"]
    assert spec.source is not None
    own: Own = {}
    reported: dict[str, str] = {}
    engine = make_engine(url)
    try:
        for page in SqlSource(engine, spec.source).iter_pages(1000):
            for record in page:
                if profile == "opencps" and not record["dossierStatus"]:
                    continue  # a draft: never sent
                portal_code = (
                    record["ma_ho_so_qg"]
                    if profile == "sample"
                    else (record["referenceUid"] if record["systemId"] == 5 else None)
                )
                if portal_code:
                    report = mset.get("status_report").map(record)
                    assert report.ok, report.errors
                    reported[portal_code] = report.value.to_wire()["TrangThai"]
                    continue
                dossier = mset.get("dossier").map(record)
                if not dossier.ok:
                    continue
                steps = [
                    mset.get("step").map(s, parent=record, record_key=dossier.record) for s in record["steps"]
                ]
                assert all(s.ok for s in steps), [s.errors for s in steps if not s.ok]
                own[dossier.record] = (dossier.value.to_wire(), [s.value.to_wire() for s in steps])
    finally:
        engine.dispose()
    return own, reported


def stored(client: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every dossier the mock portal holds, by MaHoSo (``client`` on the mock's root URL)."""
    codes: list[str] = []
    page = 1
    while True:
        listing = client.get("/_admin/dossiers", params={"size": 1000, "page": page}).json()
        codes += [item["MaHoSo"] for item in listing["items"]]
        if len(codes) >= listing["total"] or not listing["items"]:
            break
        page += 1
    return {code: client.get(f"/_admin/dossiers/{code}").json() for code in codes}


def assert_portal_holds(client: httpx.Client, own: Own) -> dict[str, dict[str, Any]]:
    """The portal holds exactly ``own``: each dossier as mapped, its history once; what it holds."""
    held = stored(client)
    assert set(held) == set(own)
    for code, (dossier, history) in own.items():
        body = held[code]
        assert {k: v for k, v in body.items() if k not in ADMIN_KEYS} == dossier, code
        assert len(body["QuaTrinhXuLy"]) == len(history), f"{code}: history stored twice or lost"
        assert [
            {k: e.get(k, "") for k in h} for e, h in zip(body["QuaTrinhXuLy"], history, strict=True)
        ] == history
    return held


def opencps_submitted(names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Birth registrations citizens submit on the portal, one a name, for the OpenCPS profile
    (procedure 1.001193, which its sample maps)."""
    return [
        {
            "MaHoSo": f"G22.99-261120-{950000 + n:06d}",
            "MaTTHC": "1.001193",
            "ChuHoSo": f"Nguyễn Văn {name}",
            "LoaiDoiTuong": "1",
            "SoGiayToChuHoSo": f"0402{n:08d}",
            "SoDienThoai": f"0912{n:06d}",
            "TrichYeuHoSo": f"Đăng ký khai sinh cho cháu {name}",
            "NgayNopHoSo": f"2026112009{n:02d}00",
        }
        for n, name in enumerate(names)
    ]


@contextmanager
def mock_with_knows(config: Path, onestop: Path, port: int, state: Path) -> Iterator[str]:
    """``dvcsync mock-portal --knows onestop.db`` in its own process (mappings from the config)."""
    argv = ["--config", str(config), "mock-portal", "--knows", str(onestop), "--port", str(port)]
    log = (state.parent / "mock.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dvcsync.cli", *argv, "--state", str(state), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                log.flush()
                text_ = (state.parent / "mock.log").read_text(encoding="utf-8", errors="replace")
                raise AssertionError(f"mock-portal --knows exited {process.returncode}: {text_}")
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


def cli(config: Path, *args: str, codes: tuple[int, ...] = (0,)) -> Any:
    """One dvcsync command in this process; its JSON when ``--json`` was asked, else its output."""
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in codes, (args, result.exit_code, result.output)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def counts(data: Any) -> Any:
    """A command's JSON without what the clock decides (durations, rates)."""
    if isinstance(data, dict):
        return {
            k: counts(v)
            for k, v in data.items()
            if not k.endswith(("_s", "elapsed", "per_s", "_at", "seconds", "_date"))
        }
    if isinstance(data, list):
        return [counts(v) for v in data]
    return data


def normalised(data: Any, folder: Path, mock: str, *, today: str) -> Any:
    """What differs between two runs by construction made equal, in keys and values alike: the
    run's folder and the mock's port, a payment reference's random tail, times written during the
    run (today's or later)."""

    def text_(v: str) -> str:
        if TIME.match(v) and v[:10] >= today:
            return "<written now>"
        return REF_TAIL.sub(r"\1<random>", v.replace(str(folder), "<run>").replace(mock, "<mock>"))

    if isinstance(data, dict):
        return {
            text_(k) if isinstance(k, str) else k: normalised(v, folder, mock, today=today)
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [normalised(v, folder, mock, today=today) for v in data]
    return text_(data) if isinstance(data, str) else data


def write_config(folder: Path, onestop: Path, mappings: Path, mock: str) -> Path:
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
    return config


@dataclass
class Run:
    """What a run did and where: ``out`` each job's outcome (compared between runs), the rest
    what its checks need (dossier keys it chose, its folder)."""

    folder: Path
    onestop: Path
    mappings: Path
    mock: str
    out: dict[str, Any] = field(default_factory=dict)
    new: list[str] = field(default_factory=list)  # MaHoSo of the dossiers submitted on the portal
    paying: str = ""  # the dossier asked to pay (its local number)
    reference: str = ""  # its attempt
    stale: str = ""  # the dossier changed behind the push's cursor
    paying_by_callback: str = ""  # the second dossier asked to pay, told paid by a callback
    reference_by_callback: str = ""


def _ask_to_pay(ledger: PaymentLedger, mset: Any) -> str:
    """The one-stop system asks the applicant of the first dossier being processed (else waiting
    for papers, else processed, its result not yet returned) with fees collected up front to pay
    now; its local number."""
    for national in ASKED_FROM:
        key = ledger.request_payment(local_status(mset, national))
        if key is not None:
            return key
    raise AssertionError(f"no dossier in national statuses {ASKED_FROM} has fees collected up front")


def _deliver(config: Path, ledger: PaymentLedger, callback: Any) -> list[str]:
    """The callback handed twice to the province's handler (the inbound server's), in this
    process on the run's state; each reply's message."""
    settings = Settings.load(config, use_env=False)
    store = StateStore(settings.state.url)
    try:
        raw = (callback if isinstance(callback, str) else json.dumps(callback)).encode("utf-8")
        replies = [handle_callback(raw, settings.payment, ledger, Inbox(store)) for _ in range(2)]
    finally:
        store.engine.dispose()
    return [str(r.get("MoTaLoi", r)) for r in replies]


def _db(onestop: Path) -> Any:
    return create_engine(f"sqlite:///{onestop}")


def run_every_job(
    folder: Path,
    base: Path,
    *,
    profile: str,
    period: tuple[str, str],
    today: str,
    rewrite: Callable[[Path, Path], None] | None = None,
) -> Run:
    """Every job on a copy of ``base`` with the mappings ``init --profile`` writes (``rewrite(db,
    mappings)`` may change both first: the renamed schema)."""
    folder.mkdir()
    onestop = folder / "onestop.db"
    onestop.write_bytes(base.read_bytes())
    cli(folder / "unused.toml", "init", str(folder), "--profile", profile)
    mappings = folder / "mappings"
    if rewrite is not None:
        rewrite(onestop, mappings)
    port = free_port()
    run = Run(folder, onestop, mappings, f"http://127.0.0.1:{port}")
    config = write_config(folder, onestop, mappings, run.mock)
    mset = load_mappings(mappings)
    schema = load_schema(mappings)
    d = schema.dossiers
    out = run.out
    cli(config, "db", "upgrade")
    with (
        mock_with_knows(config, onestop, port, folder / "mock.db") as url,
        httpx.Client(base_url=f"{url}/_admin", timeout=60) as admin,
    ):
        out["knows"] = sorted(x["MaHoSo"] for x in admin.get("/portal-dossiers").json())

        out["push"] = counts(cli(config, "sync", "push", "--json", codes=(0, 1)))

        # citizens submit three dossiers on the portal; one of them then withdraws it there
        new = new_portal_dossiers(mset, 3, now=SUBMITTED)
        run.new = [x["MaHoSo"] for x in new]
        admin.post("/portal-dossiers", params={"push": "false"}, json={"dossiers": new}).raise_for_status()
        out["pull"] = counts(cli(config, "sync", "pull", "--json"))
        admin.post(f"/dossiers/{run.new[0]}/withdraw").raise_for_status()
        out["withdrawal"] = counts(cli(config, "sync", "pull", "--json"))
        out["push after pull"] = counts(cli(config, "sync", "push", "--json", codes=(0, 1)))

        # the one-stop system asks an applicant to pay; INIT; the citizen pays; QUERY applies it once
        engine = _db(onestop)
        try:
            ledger = PaymentLedger(engine, schema)
            paying = _ask_to_pay(ledger, mset)
            run.paying = paying
            out["payments INIT"] = counts(cli(config, "sync", "payments", "--json"))
            (attempt,) = [a for a in ledger.attempts(CREATED) if a.dossier_key == paying]
            run.reference = attempt.reference
            paid = {"deliver": False, "MaGiaoDich": "GD-E2E-1", "ThoiGianGD": "20261115100000"}
            admin.post(f"/payments/{attempt.reference}/pay", json=paid).raise_for_status()
            out["payments QUERY"] = counts(cli(config, "sync", "payments", "--json"))
            out["payments again"] = counts(cli(config, "sync", "payments", "--json"))

            # a second applicant pays; this time the platform's result comes as its signed callback
            # (delivered here to the handler the inbound server runs), applied once, a replay no-op
            second = _ask_to_pay(ledger, mset)
            assert second != paying
            run.paying_by_callback = second
            out["payments INIT 2"] = counts(cli(config, "sync", "payments", "--json"))
            (attempt,) = [a for a in ledger.attempts(CREATED) if a.dossier_key == second]
            run.reference_by_callback = attempt.reference
            paid = {"deliver": False, "MaGiaoDich": "GD-E2E-2", "ThoiGianGD": "20261115110000"}
            answer = admin.post(f"/payments/{attempt.reference}/pay", json=paid)
            answer.raise_for_status()
            out["callback"] = _deliver(config, ledger, answer.json()["callback"])
            out["payments after callback"] = counts(cli(config, "sync", "payments", "--json"))

            # a change the province made behind the push's cursor (days ago): reconcile finds it
            # stale. The dossier: the first (by number) the portal holds as waiting for papers.
            waiting = sorted(
                x["MaHoSo"]
                for x in admin.get("/dossiers", params={"size": 1000}).json()["items"]
                if str(x["TrangThaiHoSo"]) == WAITING and x["MaHoSo"] != paying
            )
            days_ago = f"{date.fromisoformat(today) - timedelta(days=3)}T08:00:00"  # the same every run
            with engine.begin() as conn:
                q = conn.dialect.identifier_preparer.quote
                bump = f", {q(d.audit.updated)} = :t" if d.audit.updated else ""
                for key in waiting:
                    moved = conn.execute(
                        text(f"UPDATE {q(d.table)} SET {q(d.status)} = :s{bump} WHERE {q(d.key)} = :k"),
                        {"s": local_status(mset, PROCESSING), "t": days_ago, "k": key},
                    ).rowcount
                    if moved == 1:
                        run.stale = key
                        break
            assert run.stale, "no dossier waiting for papers on the portal"
        finally:
            engine.dispose()

        since, until = period
        report = folder / "report"
        common = ("--since", since, "--until", until, "--format", "json", "--portal-check", "all")
        found = cli(config, "reconcile", *common, "--out", str(report), "--json", codes=(0, 1))
        out["reconcile"] = {
            "counts": found["counts"],
            "items": sorted((i["category"], i["ma_ho_so"] or "") for i in found["items"]),
        }
        # every repairable category found, repaired through the outbox, then a report after it
        out["repair"] = {
            category: cli(
                config, "reconcile", "repair", category, "--report", str(report / "reconcile.json"), "--json"
            )
            for category in repairable()
            if found["counts"].get(category)
        }
        after = cli(config, "reconcile", *common, "--out", str(folder / "after"), "--json", codes=(0, 1))
        out["reconcile after repair"] = after["counts"]

        out["catalogue pull"] = counts(cli(config, "catalogue", "pull", "--json", codes=(0, 1)))
        review = folder / "review.csv"
        cli(config, "catalogue", "match", "--out", str(review))
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
        out["catalogue apply"] = counts(
            cli(config, "catalogue", "apply", str(review), "--by", "Nguyễn Thị Lan", "--json")
        )
        out["push after catalogue"] = counts(cli(config, "sync", "push", "--json", codes=(0, 1)))

        out["satisfaction"] = counts(cli(config, "sync", "satisfaction", "--months", "12", "--json"))

        stats = admin.get("/stats").json()
        out["mock"] = {
            "services": stats["services"],
            "dossiers": admin.get("/dossiers", params={"size": 1}).json()["total"],
            "portal dossiers": sorted(
                (x["MaHoSo"], x.get("status"), bool(x.get("acknowledged")))
                for x in admin.get("/portal-dossiers").json()
            ),
            "payments": sorted(
                (REF_TAIL.sub(r"\1", p["ma_tham_chieu"]), p["state"], p["so_tien"])
                for p in admin.get("/payments").json()
            ),
            "ratings": len(admin.get("/ratings").json()),
        }
    return run


__all__ = [
    "ADMIN_KEYS",
    "SUBMITTED",
    "UNMAPPED",
    "Own",
    "Run",
    "assert_portal_holds",
    "cli",
    "counts",
    "expected",
    "mock_with_knows",
    "normalised",
    "opencps_submitted",
    "run_every_job",
    "stored",
    "write_config",
]
