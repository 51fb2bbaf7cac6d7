"""The jobs take only what they read of the configuration (issue 22 item 2): each is built from its
small frozen config (``dvcsync.sync.job_config``, the reconcile checks' own) and runs a cycle with
no ``Settings`` anywhere; ``from_settings`` picks the right sections; and no job or helper in
``dvcsync/sync`` or ``dvcsync/reconcile`` keeps the whole ``Settings`` (read from the source, so
a job that starts keeping it again fails here)."""

from __future__ import annotations

import ast
import asyncio
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvcsync.config import (
    CitizenCheckSettings,
    Limits,
    PaymentSettings,
    PortalSettings,
    PushSettings,
    ReconcileSettings,
    Retry,
    Settings,
)
from dvcsync.portal import PortalClient
from dvcsync.province.source import make_engine
from dvcsync.reconcile.period import Period
from dvcsync.reconcile.portal_check import PortalCheck, PortalCheckConfig
from dvcsync.reconcile.province_state import ProvinceStateCheck, ProvinceStateConfig
from dvcsync.reconcile.workbook import WorkBook
from dvcsync.sync.adopt import AdoptJob
from dvcsync.sync.citizen_check import CitizenCheck
from dvcsync.sync.job_config import CitizenCheckConfig, PaymentConfig, PullConfig, PushConfig
from dvcsync.sync.payments import PaymentJob
from dvcsync.sync.portal_side import portal_side_dossiers
from dvcsync.sync.pull import PullJob
from dvcsync.sync.push import PushJob
from dvcsync.tenants import for_tenant

from ...builders import portal_dossier
from .conftest import PORTAL, REPO, Rig, admin
from .test_payment_job import _attempts, _make_paying

ZONE = "Asia/Ho_Chi_Minh"
JOB_PACKAGES = (REPO / "dvcsync" / "sync", REPO / "dvcsync" / "reconcile")
# classes that legitimately hold the whole Settings: the composition root's
COMPOSITION_ROOT = {"Runtime"}


def _portal(limits: Limits) -> PortalSettings:
    """The portal section alone (the client's), pointing at the in-process mock."""
    return PortalSettings(
        adapter_url=f"{PORTAL}/dvcqg",
        soap_url=f"{PORTAL}/soap",
        concurrency=limits.concurrency,
        rate_limit=limits.rate_per_s,
        batch_size=limits.batch_size,
    )


# ------------------------------------------------------------------ each job from its narrow config


def test_a_push_job_built_from_its_config_alone_delivers_in_that_configs_batches(rig: Rig) -> None:
    limits = Limits(concurrency=2, rate_per_s=10_000, batch_size=7)
    config = PushConfig(
        push=PushSettings(page_size=9, parallel_enqueue=False),
        limits=limits,
        retry=Retry(max_attempts=3, give_up_after_s=3600),
        history_batch_size=4,
        timezone=ZONE,
    )
    source_url = rig.settings.province.source_url

    async def scenario() -> tuple[Any, Any, Counter[str]]:
        async with rig.http() as http:
            bodies = portal_side_dossiers(source_url, rig.mappings)
            await admin(http, "POST", "/portal-dossiers", params={"push": "false"}, json={"dossiers": bodies})
            source = make_engine(source_url)
            try:
                client = PortalClient(_portal(limits), http)
                job = PushJob(config, rig.mappings, rig.store, client, source)
                first = await job.run_cycle()
                second = await job.run_cycle()
            finally:
                source.dispose()
            stats = await admin(http, "GET", "/stats")
        calls = Counter({service: sum(n.values()) for service, n in stats["services"].items()})
        return first, second, calls

    first, second, calls = asyncio.run(scenario())
    assert first.dead == 0 and first.dossiers_pushed > limits.batch_size
    assert first.enqueue.records > config.push.page_size  # several pages of 9 were read
    # the config's batch size, not the default 50: every new dossier in calls of 7
    assert calls["DongBoHoSoMC"] == math.ceil(first.dossiers_pushed / limits.batch_size)
    assert (second.dossiers_pushed, second.steps_pushed, second.calls) == (0, 0, 0)


def test_a_pull_job_built_from_its_config_alone_takes_dossiers_in(rig: Rig) -> None:
    limits = Limits(concurrency=2, rate_per_s=10_000, batch_size=50)
    config = PullConfig(limits=limits, documents_dir=rig.tmp / "giay-to")
    dossiers = [portal_dossier(n) for n in range(500, 505)]

    async def scenario() -> tuple[Any, Any]:
        async with rig.http() as http:
            await admin(
                http, "POST", "/portal-dossiers", params={"push": "false"}, json={"dossiers": dossiers}
            )
            sink = make_engine(rig.settings.province.effective_sink_url)
            try:
                job = PullJob(config, rig.mappings, rig.store, PortalClient(_portal(limits), http), sink)
                assert job.attachments.root == config.documents_dir
                return await job.run_cycle(), await job.run_cycle()
            finally:
                sink.dispose()

    first, second = asyncio.run(scenario())
    assert (first.listed, first.created, first.acknowledged, first.failed) == (5, 5, 5, 0)
    assert (second.listed, second.created) == (0, 0)


def test_a_payment_job_built_from_its_config_alone_keeps_receipts_where_it_says(rig: Rig) -> None:
    code, _ = _make_paying(rig)
    receipts = rig.tmp / "bien-lai"

    def config(poll_min_age_s: float) -> PaymentConfig:
        payment = PaymentSettings(
            init_url=f"{PORTAL}/payment/init",
            query_url=f"{PORTAL}/payment/query",
            bill_url=f"{PORTAL}/payment/bill",
            poll_min_age_s=poll_min_age_s,
        )
        return PaymentConfig(payment=payment, receipts_dir=receipts, max_reply_bytes=1024 * 1024)

    async def scenario() -> Any:
        async with rig.http() as http:
            engine = make_engine(rig.settings.province.effective_sink_url)
            try:
                await PaymentJob(config(3600), rig.mappings, engine, http).run_cycle()
                [(ref, *_)] = _attempts(rig, code)
                await admin(http, "POST", f"/payments/{ref}/pay", json={"deliver": False})
                return await PaymentJob(config(0), rig.mappings, engine, http).run_cycle()
            finally:
                engine.dispose()

    polled = asyncio.run(scenario())
    assert (polled.paid, polled.receipts, polled.errors) == (1, 1, 0), polled.problems
    [(ref, state, *_rest, receipt)] = _attempts(rig, code)
    assert state == "paid" and receipt == str(receipts / f"{ref}.pdf")
    assert (receipts / f"{ref}.pdf").read_bytes().startswith(b"%PDF")


# ------------------------------------------------------------------ from_settings


@pytest.fixture
def distinct(tmp_path: Path) -> Settings:
    """Settings whose every value a config reads differs from its default."""
    return Settings.load(
        None,
        province={"timezone": "Asia/Bangkok", "documents_dir": str(tmp_path / "docs")},
        portal={
            "concurrency": 7,
            "rate_limit": 123.0,
            "batch_size": 33,
            "history_batch_size": 3,
            "max_attempts": 5,
            "give_up_after": 600,
            "max_reply_bytes": 4096,
        },
        push={"page_size": 77, "lookback_s": 12, "parallel_enqueue": False},
        payment={"receipts_dir": str(tmp_path / "receipts"), "partner_code": "P-1"},
        citizen_check={"enabled": True, "concurrency": 2, "ttl_s": 5},
        reconcile={"stale_after": "3h"},
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
    )


def test_push_config_takes_the_push_section_the_portals_limits_and_retry(distinct: Settings) -> None:
    config = PushConfig.from_settings(distinct)
    assert config.push == distinct.push and config.push.page_size == 77
    assert config.limits == Limits(concurrency=7, rate_per_s=123.0, batch_size=33)
    assert config.retry == Retry(max_attempts=5, give_up_after_s=600)
    assert (config.history_batch_size, config.timezone) == (3, "Asia/Bangkok")
    assert config.citizen_check == CitizenCheckConfig(distinct.citizen_check, distinct.portal)
    off = distinct.model_copy(update={"citizen_check": CitizenCheckSettings(enabled=False)})
    assert PushConfig.from_settings(off).citizen_check is None  # off: no check is built


def test_pull_payment_and_reconcile_configs_take_their_sections(distinct: Settings, tmp_path: Path) -> None:
    pull = PullConfig.from_settings(distinct)
    assert pull == PullConfig(limits=distinct.portal.limits, documents_dir=tmp_path / "docs")
    payment = PaymentConfig.from_settings(distinct)
    assert payment == PaymentConfig(distinct.payment, tmp_path / "receipts", 4096)
    assert payment.payment.partner_code == "P-1"
    merge = ProvinceStateConfig.from_settings(distinct)
    assert merge == ProvinceStateConfig(reconcile=distinct.reconcile, timezone="Asia/Bangkok")
    read_back = PortalCheckConfig.from_settings(distinct)
    assert read_back.push == PushConfig.from_settings(distinct)
    assert read_back.stale_after_s == 3 * 3600 == distinct.reconcile.stale_after_s


def test_a_tenants_folders_are_resolved_into_its_config(tmp_path: Path) -> None:
    """Documents and receipts of a tenant stay in its own folder: the config carries the
    resolved path, so the job needs neither [state] nor the tenant's name."""
    settings = Settings.load(
        None,
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        tenants={"h40": {"portal": {"dstcode": "H40"}}, "h41": {"portal": {"dstcode": "H41"}}},
    )
    h41 = for_tenant(settings, "h41")
    assert PullConfig.from_settings(h41).documents_dir == tmp_path / "documents" / "h41"
    assert PaymentConfig.from_settings(h41).receipts_dir == tmp_path / "receipts" / "h41"


# ------------------------------------------------------------------ no job keeps Settings


def _held(value: Any, seen: set[int], depth: int = 0) -> Iterator[Any]:
    """Every object reachable from ``value`` through dvcsync's own objects (their attributes,
    dataclass fields, and the lists, tuples and dicts they hold), a few levels deep."""
    if id(value) in seen or depth > 4:
        return
    seen.add(id(value))
    yield value
    if isinstance(value, (list, tuple, set, frozenset)):
        items: list[Any] = list(value)
    elif isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif type(value).__module__.startswith("dvcsync.") and not isinstance(value, Settings):
        if is_dataclass(value):
            items = [getattr(value, f.name) for f in fields(value)]
        else:
            items = list(getattr(value, "__dict__", {}).values())
    else:
        items = []
    for item in items:
        yield from _held(item, seen, depth + 1)


def test_no_job_built_from_settings_keeps_them(rig: Rig, tmp_path: Path) -> None:
    """Old callers still pass a whole Settings (the CLI's, the tests'): it is narrowed at once."""
    settings = rig.settings.model_copy(
        update={"citizen_check": CitizenCheckSettings(enabled=True)}
    )  # the push then builds its citizen check too
    source = make_engine(settings.province.source_url)
    http = httpx.AsyncClient(base_url=PORTAL)
    client = PortalClient(settings.portal, http)
    period = Period(date(2026, 12, 1), date(2026, 12, 7))
    book = WorkBook(tmp_path / "work.sqlite", "s")
    now = datetime(2026, 12, 7, 22, 0)
    try:
        jobs: list[Any] = [
            PushJob(settings, rig.mappings, rig.store, client, source),
            PullJob(settings, rig.mappings, rig.store, client, source),
            PaymentJob(settings, rig.mappings, source, http),
            AdoptJob(settings, rig.mappings, rig.store, client, source),
            CitizenCheck(settings),
            PortalCheck(settings, rig.mappings, rig.store, client, source, book, now=now, period=period),
            ProvinceStateCheck(
                settings, rig.mappings, rig.store, source, period, book, now=now, read_back=False
            ),
        ]
        assert jobs[0].citizen is not None
        for job in jobs:
            kept = [type(v).__name__ for v in _held(job, set()) if isinstance(v, Settings)]
            assert kept == [], f"{type(job).__name__} keeps the whole Settings"
        assert isinstance(jobs[-1].config.reconcile, ReconcileSettings)
    finally:
        book.close(finished=True)
        source.dispose()
        asyncio.run(http.aclose())


def _names(annotation: ast.expr | None) -> set[str]:
    """The names an annotation mentions (a quoted one is read too)."""
    if annotation is None:
        return set()
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = ast.parse(annotation.value, mode="eval").body
    return {n.id for n in ast.walk(annotation) if isinstance(n, ast.Name)}


def _settings_kept(where: str, source: str) -> tuple[list[str], list[str]]:
    """What the classes of one module do with ``Settings``: (problems, classes that narrow it).
    No class may annotate an attribute as ``Settings`` or touch ``self.settings``; a constructor
    that accepts ``Settings`` must take its own config too (``XConfig | Settings``) and convert at
    once (``XConfig.from_settings``)."""
    problems: list[str] = []
    narrowed: list[str] = []
    classes = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef)]
    for cls in (c for c in classes if c.name not in COMPOSITION_ROOT):
        for node in ast.walk(cls):
            if isinstance(node, ast.AnnAssign) and "Settings" in _names(node.annotation):
                problems.append(f"{where}:{cls.name} line {node.lineno}: an attribute typed Settings")
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "settings"
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
            ):
                problems.append(f"{where}:{cls.name} line {node.lineno}: self.settings")
        init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        for arg in (init.args.args + init.args.kwonlyargs) if init is not None else []:
            names = _names(arg.annotation)
            if "Settings" not in names:
                continue
            configs = {n for n in names if n.endswith("Config")}
            converts = any(
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "from_settings"
                and isinstance(call.func.value, ast.Name)
                and call.func.value.id in configs
                and any(isinstance(a, ast.Name) and a.id == arg.arg for a in call.args)
                for call in ast.walk(init)  # type: ignore[arg-type]
            )
            if converts:
                narrowed.append(cls.name)
            else:
                problems.append(f"{where}:{cls.name}: __init__ takes {arg.arg}: Settings and keeps it whole")
    return problems, narrowed


def test_no_class_in_sync_or_reconcile_keeps_the_whole_settings() -> None:
    """Read from the source, so that a job keeping ``Settings`` again fails here."""
    problems: list[str] = []
    narrowed: list[str] = []
    for folder in JOB_PACKAGES:
        for path in sorted(folder.glob("*.py")):
            found, ok = _settings_kept(str(path.relative_to(REPO)), path.read_text(encoding="utf-8"))
            problems += found
            narrowed += ok
    assert problems == []
    # the ones this issue narrowed are all seen (the test reads the right files)
    assert {
        "PushJob",
        "PullJob",
        "PaymentJob",
        "AdoptJob",
        "CitizenCheck",
        "PortalCheck",
        "ProvinceStateCheck",
    } <= set(narrowed)


BAD_JOBS = """
class Keeps:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

class Annotated:
    whole: Settings

class NarrowsTheWrongOne:
    def __init__(self, config: FooConfig | Settings, other: Settings) -> None:
        self.config = FooConfig.from_settings(other)

class Narrows:
    def __init__(self, config: FooConfig | Settings) -> None:
        self.config = FooConfig.from_settings(config) if isinstance(config, Settings) else config
"""


def test_the_source_check_finds_a_job_that_keeps_settings() -> None:
    problems, narrowed = _settings_kept("bad.py", BAD_JOBS)
    assert narrowed == ["Narrows"]
    assert problems == [
        "bad.py:Keeps line 4: self.settings",
        "bad.py:Keeps: __init__ takes settings: Settings and keeps it whole",
        "bad.py:Annotated line 7: an attribute typed Settings",
        "bad.py:NarrowsTheWrongOne: __init__ takes config: Settings and keeps it whole",
        "bad.py:NarrowsTheWrongOne: __init__ takes other: Settings and keeps it whole",
    ]
