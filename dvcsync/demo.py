"""``dvcsync demo``: the main job on the embedded defaults, in one command, on a fresh machine.

Makes a sample one-stop database, starts the mock national portal in its own process on a free
loopback port, runs one push cycle against it and shows what arrived. Everything it writes stays
in one folder, with a configuration file to go on from there. It lives beside the CLI, not in
``sync``, because it starts the mock portal: only the top tier may import ``mock_portal``.
"""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from rich.table import Table

from dvcsync._resources import profile_mappings
from dvcsync.config import Settings
from dvcsync.mapping import CodeLookupError, MappingSet, MappingSpecError, load_mappings
from dvcsync.mapping.codes import CodeSkipped
from dvcsync.province.payments import CREATED, PaymentLedger
from dvcsync.province.sample import generate
from dvcsync.province.schema import ProvinceSchema, load_schema
from dvcsync.province.source import make_engine
from dvcsync.reconcile.period import local_now
from dvcsync.sync.cycles import run_payments, run_pull, run_push

if TYPE_CHECKING:
    from dvcsync.sync.pull import PullSummary
    from dvcsync.sync.push import PushSummary

PROCESSING = "4"  # the national status "being processed" (Đang xử lý)


def run_demo(
    out: Path,
    *,
    dossiers: int,
    seed: int,
    console: Console,
    mappings: Path | None = None,
    profile: str = "sample",
) -> int:
    """``profile``: whose one-stop database and shipped mappings (``dvcsync._resources.PROFILES``)."""
    from mock_portal.testing import run_mock_process  # the demo drives the mock like a test would

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    db, state, mock_state = out / "onestop.db", out / "state.db", out / "mock-portal.db"
    for stale in (state, mock_state):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{stale}{suffix}").unlink(missing_ok=True)
    folder = (mappings or profile_mappings(profile)).resolve()  # never whatever ./mappings happens to be
    try:
        mset = load_mappings(folder)
    except MappingSpecError as exc:
        console.print(f"[red]invalid mappings in {folder}[/red]")
        console.print(str(exc), markup=False)
        return 2

    started = time.perf_counter()
    made = _make_sample(db, dossiers, seed, profile)
    console.print(f"[bold]1.[/bold] {made} ({time.perf_counter() - started:.1f}s)")
    with run_mock_process(state=str(mock_state)) as mock:
        console.print(f"[bold]2.[/bold] mock national portal running at {mock.url} (state {mock_state})")
        seeded = seed_portal_side(mock.url, f"sqlite:///{db}", mset)
        console.print(f"   the portal holds the {seeded:,} sample dossiers that were submitted on it")
        settings = _demo_settings(mock.url, mock.adapter_url, db, folder, out, state)
        console.print("[bold]3.[/bold] push cycle: map, enqueue, deliver …")
        summary = asyncio.run(run_push(settings, mset))
        stored = httpx.get(f"{mock.url}/_admin/dossiers", params={"size": 1}, timeout=30).json()["total"]
        console.print("[bold]4.[/bold] citizens submit 20 new dossiers on the portal; pull cycle …")
        httpx.post(
            f"{mock.url}/_admin/portal-dossiers",
            params={"push": "false"},
            json={"dossiers": new_portal_dossiers(mset, 20)},
            timeout=30,
        ).raise_for_status()
        pulled = asyncio.run(run_pull(settings, mset))
        console.print("[bold]5.[/bold] payments: INIT for dossiers waiting for payment, one is paid …")
        payment = _demo_payment(mock.url, settings, mset)
        portal_stats = httpx.get(f"{mock.url}/_admin/stats", timeout=30).json()

    console.print(_results(summary, pulled, payment, stored, portal_stats))
    console.print(f"in {summary.elapsed_s:.1f}s")
    if payment.get("paid_ref"):
        console.print(
            f"payment {payment['paid_ref']} completed: the dossier's fees are marked paid in the province,"
            f" receipt {payment.get('receipt') or '(none)'}",
            markup=False,
            highlight=False,
        )
    config = _write_config(out, db, folder, state, mock_state)
    console.print(
        f"files in {out}/: onestop.db (province), state.db (adapter), mock-portal.db (portal), dvcsync.toml"
    )
    console.print(f"why records were quarantined: dvcsync --config {config} status")
    ok = summary.dead == 0 and stored == summary.dossiers_pushed and pulled.acknowledged == pulled.listed
    return 0 if ok else 1


def _make_sample(db: Path, dossiers: int, seed: int, profile: str) -> str:
    """The profile's one-stop database at ``db``; what was made, in a line."""
    if profile == "opencps":
        from dvcsync.province.sample.opencps import generate as generate_opencps

        rows = generate_opencps(db, dossiers, seed, overwrite=True).rows
        made = f"OpenCPS v2 database {db}: {rows['opencps_dossier']:,} dossiers (drafts included), "
        return made + f"{rows['opencps_dossieraction']:,} actions"
    rows = generate(db, dossiers, seed, overwrite=True).rows
    sample = ProvinceSchema()  # the shipped defaults are the sample schema's names
    made = f"sample one-stop database {db}: {rows[sample.dossiers.table]:,} dossiers, "
    return made + f"{rows[sample.steps.table]:,} processing steps"


def _demo_settings(
    mock_url: str, adapter_url: str, db: Path, folder: Path, out: Path, state: Path
) -> Settings:
    """The demo's settings: its own folder only, never what DVCSYNC_ variables point at."""
    return Settings.load(
        None,
        use_env=False,
        province={"source_url": f"sqlite:///{db}", "mappings": str(folder)},
        portal={
            "adapter_url": adapter_url,
            "soap_url": f"{mock_url}/soap",
            "rate_limit": 10_000,
            "batch_size": 100,
            "concurrency": 4,
        },
        payment={
            "init_url": f"{mock_url}/payment/init",
            "query_url": f"{mock_url}/payment/query",
            "bill_url": f"{mock_url}/payment/bill",
            "receipts_dir": str(out / "receipts"),
        },
        state={"url": f"sqlite:///{state}"},
    )


def _results(
    summary: PushSummary,
    pulled: PullSummary,
    payment: dict[str, Any],
    stored: int,
    portal_stats: dict[str, Any],
) -> Table:
    """What the push, the pull and the payment did, and what the mock portal saw."""
    table = Table(title="demo: a push cycle, a pull cycle and a payment")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, value in (
        ("dossiers read from the one-stop database", summary.enqueue.records),
        ("pushed (DongBoHoSoMC)", summary.dossiers_pushed),
        ("history entries pushed (CapNhatTienDoHoSoMC)", summary.steps_pushed),
        ("statuses of portal-submitted dossiers (DongBoTrangThaiHoSo)", summary.statuses_reported),
        ("quarantined (could not be mapped)", summary.enqueue.quarantined),
        ("dead letters", summary.dead),
        ("portal dossiers listed for the province (DanhSachHoSo)", pulled.listed),
        ("… created in the province", pulled.created),
        ("… already there (submitted earlier)", pulled.already_in_province),
        ("… acknowledged (XacNhanHoSo)", pulled.acknowledged),
        ("payment requests sent (INIT)", payment["initiated"]),
        ("payments completed and applied once (QUERY)", payment["paid"]),
        ("e-receipts saved (GET_BILL)", payment["receipts"]),
        ("portal calls", summary.calls),
        ("dossiers the mock portal now holds", stored),
        ("requests the mock portal answered", portal_stats.get("total", 0)),
    ):
        table.add_row(name, f"{value:,}")
    return table


def _write_config(out: Path, db: Path, folder: Path, state: Path, mock_state: Path) -> Path:
    """``dvcsync.toml`` in the demo's folder, to go on from there."""
    config = out / "dvcsync.toml"
    config.write_text(
        "# Written by `dvcsync demo`. Restart the mock with its state, then go on:\n"
        f"#   dvcsync mock-portal --port 8080 --state {mock_state}\n"
        f"#   dvcsync --config {config} status\n"
        f'[province]\nsource_url = "sqlite:///{db}"\nmappings = "{folder}"\n'
        f'[state]\nurl = "sqlite:///{state}"\n',
        encoding="utf-8",
    )
    return config


def seed_portal_side(mock_url: str, source_url: str, mappings: MappingSet) -> int:
    """Tell the mock portal about the sample's dossiers that were submitted on the portal (they
    carry the portal's code): a real portal has them, so their status reports must find them."""
    from dvcsync.sync.portal_side import portal_side_dossiers

    bodies = portal_side_dossiers(source_url, mappings)
    for start in range(0, len(bodies), 500):
        reply = httpx.post(
            f"{mock_url}/_admin/portal-dossiers",
            params={"push": "false"},
            json={"dossiers": bodies[start : start + 500]},
            timeout=60,
        )
        reply.raise_for_status()
    return len(bodies)


_GIVEN = ("Minh Anh", "Thu Hà", "Quốc Bảo", "Ngọc Lan", "Đức Thịnh", "Thanh Hương", "Văn Nam", "Hải Yến")
_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi")


def new_portal_dossiers(
    mappings: MappingSet, count: int, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Dossiers "submitted on the portal" for the demo: procedures the province offers, fictitious
    applicants (deterministic), submitted in the minutes before ``now`` (the province's local wall
    clock unless given): a report on "the last days" finds them whatever day the demo runs, and a
    test passes its own ``now`` so that two calls give the same dossiers."""
    now = (now or local_now()).replace(microsecond=0)
    procedures = mappings.codes["procedures"]
    codes = [procedures.lookup(key)["ma_tthc"] for key in list(procedures)[:8]]
    out = []
    for n in range(count):
        name = f"{_FAMILY[n % len(_FAMILY)]} {_GIVEN[(n * 3) % len(_GIVEN)]}"
        submitted = now - timedelta(minutes=5 * (count - n))  # oldest first, the last 5 minutes ago
        out.append(
            {
                "MaHoSo": f"G22.99-{submitted:%y%m%d}-{900000 + n:06d}",
                "MaTTHC": codes[n % len(codes)],
                "ChuHoSo": name,
                "LoaiDoiTuong": "1",
                "SoGiayToChuHoSo": f"0221{n:08d}",
                "SoDienThoai": f"0912{n:06d}",
                "TrichYeuHoSo": f"Hồ sơ nộp trực tuyến của {name}",
                "NgayNopHoSo": f"{submitted:%Y%m%d%H%M%S}",
                # the application form with its content, as a portal that sends files inline does:
                # the pull stores it in the documents folder (dvcsync.sync.attachments)
                "TaiLieuNop": [
                    {
                        "TepDinhKemId": f"{900000 + n}-1",
                        "TenTepDinhKem": "Đơn đề nghị.pdf",
                        "MaThanhPhanHoSo": "DON",
                        "Base64": base64.b64encode(_demo_pdf(f"Don de nghi {900000 + n}")).decode("ascii"),
                    }
                ],
            }
        )
    return out


def _demo_pdf(line: str) -> bytes:
    """A one-page PDF saying ``line`` (ASCII): small, valid, and different for each dossier."""
    stream = f"BT /F1 12 Tf 72 720 Td ({line}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def local_status(mappings: MappingSet, national: str) -> str:
    """The first local status the statuses code table maps to ``national`` (OpenCPS's table maps
    several keys to one code: statuses and status:sub-status pairs; the plain status comes first)."""
    table = mappings.codes["statuses"]
    for key in list(table.keys()):
        try:
            if str(table.lookup(key)) == national:
                return key
        except (CodeLookupError, CodeSkipped):
            continue
    raise CodeLookupError(f"no entry with value {national!r} in code table {table.name!r}")


def _demo_payment(mock_url: str, settings: Settings, mappings: MappingSet) -> dict[str, Any]:
    """INIT what waits for payment; the citizen pays one on the platform; the next cycle learns it
    by QUERY (the demo runs no callback server), applies it once and saves the e-receipt."""
    settings = settings.model_copy(
        update={"payment": settings.payment.model_copy(update={"poll_min_age_s": 0.0})}
    )
    engine = make_engine(settings.province.source_url)
    try:  # the one-stop system asks one applicant (of a dossier being processed) to pay now
        ledger = PaymentLedger(engine, load_schema(mappings.folder))
        ledger.request_payment(local_status(mappings, PROCESSING))
        first = asyncio.run(run_payments(settings, mappings))
        result: dict[str, Any] = {"initiated": first.initiated, "paid": 0, "receipts": 0}
        created = ledger.attempts(CREATED)
        if not created:
            return result
        ref = created[-1].reference
        paid = httpx.post(f"{mock_url}/_admin/payments/{ref}/pay", json={}, timeout=30)
        if paid.status_code >= 300:
            return result
        second = asyncio.run(run_payments(settings, mappings))
        attempt = ledger.attempt(ref)
    finally:
        engine.dispose()
    result.update(
        paid=second.paid, receipts=second.receipts, paid_ref=ref, receipt=attempt.receipt if attempt else None
    )
    return result
