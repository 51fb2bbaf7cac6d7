"""One reconciliation: the three comparisons, the report in every format, the retention.

Used by ``dvcsync reconcile`` and by the scheduled ``reconcile`` job alike. It only reads the
province and the state (the working file is its own), so it runs beside a ``dvcsync run`` that
holds the state's writer lock; repairs (``repair.py``) are the writing half.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dvcsync.config import REPORT_FORMATS, Settings
from dvcsync.portal import AuthError, UnreachableError
from dvcsync.province.schema import load_schema
from dvcsync.sync.payment_ledger import PaymentLedger
from dvcsync.sync.runtime import Runtime

from .categories import KEYS
from .inbound_check import check_inbox, check_listing
from .payments_check import PaymentsCheck
from .period import Period, local_now
from .portal_check import PortalCheck
from .province_state import ProvinceStateCheck, held_portal_codes
from .report import JSON_NAME, Report
from .workbook import WorkBook

log = logging.getLogger(__name__)

DATED = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{6}(-\d+)?$")
FILE_NAMES = {"json": JSON_NAME, "html": "reconcile.html", "xlsx": "reconcile.xlsx", "csv": "reconcile.csv"}

# A more specific finding explains these for the same dossier: they are not listed again.
IMPLIES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("withdrawal_conflict",), ("status_differs", "stale")),
    (
        ("missing_on_portal",),
        ("history_missing", "history_duplicated", "status_differs", "dates_differ", "fees_differ"),
    ),
    (("quarantined", "dead_letter"), ("stale", "status_differs", "dates_differ", "fees_differ")),
)

Progress = Callable[[str, int, int], None]


@dataclass
class ReconcileOptions:
    period: Period
    out_dir: Path | None = None  # None: a dated folder under [reconcile] out_dir
    formats: list[str] = field(default_factory=lambda: list(REPORT_FORMATS))
    portal_check: str = "all"  # all | sample:N | none
    show_personal: bool = False
    seed: int | None = None  # the sample's; None: a new sample each run
    payments: bool = True


@dataclass
class ReconcileResult:
    report: Report
    out_dir: Path
    files: list[Path]
    stages: dict[str, Any]
    problems: list[str]


def sample_size(portal_check: str) -> int | None:
    return int(portal_check.split(":", 1)[1]) if portal_check.startswith("sample:") else None


def reports_root(settings: Settings) -> Path:
    """``[reconcile] out_dir``, a tenant's own ``<code>/`` under it (its reports, working file
    and retention never meet another tenant's)."""
    from dvcsync.tenants import tenant_folder

    return tenant_folder(settings, settings.reconcile.out_dir)


def dated_folder(root: Path, now: datetime) -> Path:
    base = now.strftime("%Y-%m-%d_%H%M%S")
    candidate, n = root / base, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{base}-{n}"
    return candidate


def latest_report(root: Path) -> Path | None:
    """The newest dated report's JSON under ``root`` (what the next report compares with)."""
    if not root.is_dir():
        return None
    folders = sorted((p for p in root.iterdir() if p.is_dir() and DATED.match(p.name)), reverse=True)
    for folder in folders:
        if (folder / JSON_NAME).is_file():
            return folder / JSON_NAME
    return None


POINTER_NAME = ".last-report"  # in a tenant's reports root: where the last report was written


def remember_report(root: Path, written: Path) -> None:
    """Note where the last report went (``--out`` may put it anywhere), so ``reconcile repair``
    finds it: one line, the JSON's absolute path, replaced atomically."""
    root.mkdir(parents=True, exist_ok=True)
    pointer = root / POINTER_NAME
    partial = pointer.with_name(f"{POINTER_NAME}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"{written.resolve()}\n")
    partial.replace(pointer)


def last_report(root: Path) -> Path | None:
    """The report written last under this root's pointer, wherever it went; without a pointer, or
    when the file it names is gone, the newest dated report under ``root``."""
    pointer = root / POINTER_NAME
    try:
        named = Path(pointer.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        named = None
    if named is not None and named.is_absolute() and named.is_file():
        return named
    return latest_report(root)


def prune_reports(root: Path, keep: int) -> list[Path]:
    """Dated report folders beyond the newest ``keep``, removed (the retention of the job)."""
    if not root.is_dir():
        return []
    folders = sorted((p for p in root.iterdir() if p.is_dir() and DATED.match(p.name)), reverse=True)
    removed = []
    for folder in folders[keep:]:
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _signature(settings: Settings, options: ReconcileOptions) -> str:
    text = json.dumps(
        [
            options.period.as_dict(),
            options.portal_check,
            options.seed,
            settings.province.source_url,
            settings.state.url,
        ],
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def reconcile(
    runtime: Runtime, options: ReconcileOptions, *, progress: Progress | None = None
) -> ReconcileResult:
    settings = runtime.settings
    now = local_now()
    root = reports_root(settings)
    out = options.out_dir or dated_folder(root, now)
    previous_path = out / JSON_NAME if (out / JSON_NAME).is_file() else latest_report(root)
    signature = _signature(settings, options)
    book = WorkBook(root / f".work-{signature}.sqlite", signature)
    finished = False
    problems: list[str] = []
    stages: dict[str, Any] = {}
    note = progress or (lambda *_: None)
    try:
        previous = _previous(book, previous_path, problems)
        read_back = options.portal_check != "none"
        merge = ProvinceStateCheck(
            settings,
            runtime.mappings,
            runtime.store,
            runtime.source,
            options.period,
            book,
            now=now,
            read_back=read_back,
            show_personal=options.show_personal,
        )
        note("province ⋈ state", 0, 0)
        stages["province_state"] = merge.run(progress=lambda n: note("province ⋈ state", n, 0)).__dict__
        stages["inbox"] = check_inbox(runtime.store, book, options.period)
        if read_back:
            await _read_back(runtime, options, book, now, note, problems, stages)
        if options.payments:
            await _payments(runtime, options, book, note, problems, stages)
        stages["implied_dropped"] = _drop_implied(book)
        report = _report(settings, options, book, now, previous, problems)
        private = options.show_personal
        out.mkdir(mode=0o700 if private else 0o777, parents=True, exist_ok=True)
        files = write_report(report, out, options.formats, html_max_rows=settings.reconcile.html_max_rows)
        remember_report(root, out / JSON_NAME)
        finished = True
    except (UnreachableError, AuthError):
        raise  # the read-back so far stays in the working file: the next run resumes
    finally:
        book.close(finished=finished)
    if options.out_dir is None:
        for folder in prune_reports(root, settings.reconcile.keep_reports):
            log.info("removed old report %s (keep_reports = %d)", folder, settings.reconcile.keep_reports)
    # the working file is gone: items are read back from the JSON written (for --json, tests)
    written = out / JSON_NAME
    report.items = lambda: Report.read_json(written).items()
    return ReconcileResult(report, out, files, stages, problems)


def _previous(book: WorkBook, previous_path: Path | None, problems: list[str]) -> Report | None:
    """The report to compare with, loaded into the working file; an unreadable one is a problem."""
    if previous_path is None:
        return None
    try:
        previous = Report.read_json(previous_path)
        book.load_previous(previous.items())
    except (OSError, ValueError, KeyError) as exc:
        problems.append(f"previous report {previous_path} unreadable: {exc}; no comparison")
        return None
    return previous


async def _read_back(
    runtime: Runtime,
    options: ReconcileOptions,
    book: WorkBook,
    now: datetime,
    note: Progress,
    problems: list[str],
    stages: dict[str, Any],
) -> None:
    """The portal's read-back of a sample of dossiers, compared, and its listing of what it holds."""
    settings = runtime.settings
    check = PortalCheck(
        settings,
        runtime.mappings,
        runtime.store,
        runtime.client,
        runtime.source,
        book,
        now=now,
        period=options.period,
    )
    seed = options.seed if options.seed is not None else int(now.timestamp())
    await check.read(sample_size(options.portal_check), seed, lambda d, t: note("portal read-back", d, t))
    if check.counts.failed:
        problems.append(
            f"{check.counts.failed} portal read-backs failed (the portal refused them);"
            " they are not compared: run the report again later"
        )
    check.compare()
    stages["not_received"] = await check_listing(
        runtime.client,
        runtime.store,
        book,
        options.period,
        lambda codes: held_portal_codes(runtime.source, runtime.mappings, settings, codes),
    )
    stages["portal"] = check.counts.__dict__


async def _payments(
    runtime: Runtime,
    options: ReconcileOptions,
    book: WorkBook,
    note: Progress,
    problems: list[str],
    stages: dict[str, Any],
) -> None:
    """The payment platform's daily statements against the province's ledger."""
    settings = runtime.settings
    note("payment statements", 0, len(options.period.days()))
    payments = PaymentsCheck(
        PaymentLedger(runtime.source, load_schema(runtime.mappings.folder)),
        runtime.payment_http,
        settings.reconcile.statement_url_for(settings.payment.init_url),
        book,
        options.period,
    )
    complete = await payments.fetch_statements()
    payments.compare(complete)
    problems.extend(payments.counts.problems)
    stages["payments"] = {k: v for k, v in payments.counts.__dict__.items() if k != "problems"}


def _drop_implied(book: WorkBook) -> int:
    dropped = 0
    for specific, implied in IMPLIES:
        keys = sorted({k for category in specific for k in book.keys_of(category)})
        for category in implied:
            dropped += book.drop(category, keys)
    return dropped


def _report(
    settings: Settings,
    options: ReconcileOptions,
    book: WorkBook,
    now: datetime,
    previous: Report | None,
    problems: list[str],
) -> Report:
    period = {
        **options.period.as_dict(),
        "portal_check": options.portal_check,
        "stale_after": settings.reconcile.stale_after,
        "generated_at": now.isoformat(),
        "timezone": "Asia/Ho_Chi_Minh",
        "personal_data": "shown" if options.show_personal else "masked",
        "problems": problems,
    }
    counts = book.counts()
    assert list(counts) == list(KEYS)
    return Report(
        period=period,
        counts=counts,
        items=book.items,
        resolved_since_last=book.resolved_since_last() if previous is not None else [],
        new_since_last=book.new_since_last() if previous is not None else [],
        by_agency=book.by_agency(),
        by_age=book.by_age(now),
        previous=str(previous.period.get("generated_at")) if previous is not None else None,
    )


def write_report(report: Report, out: Path, formats: list[str], *, html_max_rows: int = 20_000) -> list[Path]:
    """Every requested format, plus the JSON always (the next report and repairs read it).
    Each file is written beside its final name and renamed, so a reader never sees half a file.
    A report with personal data in clear (``--show-personal``) is owner-only: each file 0600
    before it takes its name (the folder dvcsync made for it is 0700; one given with ``--out`` keeps
    its mode, and a warning says when others can list it)."""
    private = report.period.get("personal_data") == "shown"
    if private and out.stat().st_mode & 0o077:
        log.warning("report folder %s can be listed by others; its files with personal data are 0600", out)
    files = []
    for fmt in ["json", *[f for f in formats if f != "json"]]:
        path = out / FILE_NAMES[fmt]
        partial = path.with_name(f".{path.name}.partial")
        if fmt == "json":
            with partial.open("w", encoding="utf-8") as handle:
                report.write_json(handle)
        elif fmt == "html":
            from .render_html import write_html

            write_html(report, partial, max_rows=html_max_rows)
        elif fmt == "xlsx":
            from .render_tables import write_xlsx

            write_xlsx(report, partial)
        else:
            from .render_tables import write_csv

            write_csv(report, partial)
        if private:
            os.chmod(partial, 0o600)  # the file dvcsync just wrote, before anyone can open it by name
        partial.replace(path)
        files.append(path)
    return files


__all__ = [
    "ReconcileOptions",
    "ReconcileResult",
    "last_report",
    "latest_report",
    "prune_reports",
    "reconcile",
    "reports_root",
    "sample_size",
    "write_report",
]
