"""/metrics while a real push runs against the mock portal, and the plans of the scrape's backlog
queries: an index, never a walk over every settled outbox row.

The inbound server's app runs in process (``run_app_in_process``): what it serves is tested, not the
socket. The mock stays on loopback (``run_mock``): ``run_push`` builds its portal client from the
settings, as ``dvcsync sync`` does, so only a real address reaches it."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dvcsync.config import Settings
from dvcsync.mapping import load_mappings
from dvcsync.metrics import backlog_sql, current_tenant
from dvcsync.province.sample import generate
from dvcsync.server import create_server_app, create_tenants_app
from dvcsync.state import StateStore
from dvcsync.sync.cycles import run_push
from dvcsync.tenants import for_tenant
from mock_portal.testing import run_app_in_process, run_mock

REPO = Path(__file__).resolve().parents[2]
UNTHROTTLED = 10_000.0
"""[portal] rate_limit of these pushes: what they count is tested, not the pacing (the default 20 a
second made these tests wait seconds on the limiter; tests/unit/portal/test_shared.py has its own)."""


def _families(text: str) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """family name → {(sample name, sorted labels): value}."""
    out: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation, f"{family.name} has no HELP"
        out[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    return out


def _value(
    families: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]], sample: str, **labels: str
) -> float:
    for samples in families.values():
        for (name, got), value in samples.items():
            if name == sample and dict(got) == labels:
                return value
    return 0.0


def _sum(
    families: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]], sample: str, **labels: str
) -> float:
    """Sum over the samples named ``sample`` whose labels include ``labels``."""
    return sum(
        value
        for samples in families.values()
        for (name, got), value in samples.items()
        if name == sample and labels.items() <= dict(got).items()
    )


@pytest.fixture
def onestop(tmp_path: Path) -> Path:
    path = tmp_path / "onestop.db"
    generate(path, 40, 5)
    return path


@pytest.fixture
def settings(tmp_path: Path, onestop: Path) -> Iterator[Settings]:
    with run_mock() as mock:
        yield Settings.load(
            None,
            use_env=False,
            province={"source_url": f"sqlite:///{onestop}", "mappings": str(REPO / "mappings")},
            portal={
                "adapter_url": mock.adapter_url,
                "soap_url": f"{mock.url}/soap",
                "timeout": 5.0,
                "rate_limit": UNTHROTTLED,
            },
            state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
            push={"parallel_enqueue": False},
        )


def test_a_push_moves_the_counters_seen_on_metrics(settings: Settings) -> None:
    mappings = load_mappings(settings.province.mappings)
    app = create_server_app(settings, mappings)
    try:
        with run_app_in_process(app) as served, served.client(timeout=10) as http:
            before = _families(http.get("/metrics").text)
            during: list[str] = []

            def progress(phase: str, done: int, total: int) -> None:
                if phase == "deliver" and not during:  # scraped from inside the cycle
                    during.append(http.get("/metrics").text)

            summary = asyncio.run(run_push(settings, mappings, progress=progress))
            response = http.get("/metrics")
            docs = http.get("/docs")
            script = re.search(r'src="([^"]*swagger-ui-bundle\.js)"', docs.text)
            asset = http.get(script.group(1)) if script else None
    finally:
        for engine in app.state.engines:
            engine.dispose()

    assert summary.dossiers_pushed > 0
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    after = _families(text)
    for name in after:  # every family says what it is
        assert re.search(rf"^# HELP {re.escape(name)}(_total)? \S", text, re.M), name

    # what the push did, counted as it happened
    pushed = _value(after, "dvcsync_records_pushed_total", kind="dossier")
    assert pushed - _value(before, "dvcsync_records_pushed_total", kind="dossier") == summary.dossiers_pushed
    assert _value(after, "dvcsync_records_pushed_total", kind="steps") >= summary.steps_pushed > 0
    dead = _sum(after, "dvcsync_dead_letters_total") - _sum(before, "dvcsync_dead_letters_total")
    assert dead == summary.dead  # the sample has records the mock's strict rules refuse
    requests = _sum(after, "dvcsync_portal_requests_total", service="DongBoHoSoMC", outcome="ok")
    assert requests > _sum(before, "dvcsync_portal_requests_total", service="DongBoHoSoMC", outcome="ok")
    assert _sum(after, "dvcsync_portal_requests_total", service="auth", outcome="ok") >= 1
    assert _sum(after, "dvcsync_portal_latency_seconds_count", service="DongBoHoSoMC") >= requests
    assert _value(after, "dvcsync_cycle_duration_seconds_count", job="push") == (
        _value(before, "dvcsync_cycle_duration_seconds_count", job="push") + 1
    )
    status = "ok" if summary.dead == 0 else "dead-letters"
    assert _value(after, "dvcsync_cycles_total", job="push", status=status) >= 1
    last = _value(after, "dvcsync_cycle_last_success_timestamp_seconds", job="push")
    assert time.time() - 600 < last <= time.time()
    # mid-cycle: requests already counted, the cycle not yet
    assert during, "the push delivered nothing"
    middle = _families(during[0])
    assert _sum(middle, "dvcsync_portal_requests_total", service="DongBoHoSoMC") > _sum(
        before, "dvcsync_portal_requests_total", service="DongBoHoSoMC"
    )
    assert _value(middle, "dvcsync_cycle_duration_seconds_count", job="push") == _value(
        before, "dvcsync_cycle_duration_seconds_count", job="push"
    )

    # read at scrape time: nothing left to settle; the quarantined records of the sample
    assert _sum(after, "dvcsync_outbox_entries") == summary.dead
    assert _sum(after, "dvcsync_outbox_entries", state="dead") == summary.dead
    assert _value(after, "dvcsync_quarantined_records") == summary.enqueue.quarantined
    # the process collector and the inbound counters are there (the latter may have no sample yet)
    assert _value(after, "process_resident_memory_bytes") > 0
    assert "process_cpu_seconds" in after and "python_info" in after
    assert {"dvcsync_inbound_refused", "dvcsync_inbound_dropped_connections"} <= set(after)

    # /docs works without the Internet: its script is served here
    assert docs.status_code == 200 and script is not None and "cdn" not in script.group(1)
    assert asset is not None and asset.status_code == 200 and len(asset.content) > 10_000


def test_each_tenants_counters_and_backlog_carry_its_label(tmp_path: Path) -> None:
    """Two tenants pushed in turn (as their scheduler threads would, ``current_tenant`` set):
    each one's counters and state backlog under its own ``tenant``, nothing unlabelled moved,
    and ``?tenant=`` shows one tenant's series."""
    codes = ("metrics-a", "metrics-b")
    for n, code in enumerate(codes):
        generate(tmp_path / f"{code}.db", 30, 20 + n)
    with run_mock() as mock_a, run_mock() as mock_b:
        settings = Settings.load(
            None,
            use_env=False,
            province={"mappings": str(REPO / "mappings")},
            state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
            push={"parallel_enqueue": False},
            tenants={
                code: {
                    "province": {"source_url": f"sqlite:///{tmp_path / f'{code}.db'}"},
                    "portal": {
                        "adapter_url": mock.adapter_url,
                        "soap_url": f"{mock.url}/soap",
                        "timeout": 5.0,
                        "rate_limit": UNTHROTTLED,
                    },
                }
                for code, mock in zip(codes, (mock_a, mock_b), strict=True)
            },
        )
        mappings = load_mappings(settings.province.mappings)
        app = create_tenants_app(settings, {code: (for_tenant(settings, code), mappings) for code in codes})
        try:
            with run_app_in_process(app) as served, served.client(timeout=10) as http:
                before = _families(http.get("/metrics").text)
                summaries = {}
                for code in codes:
                    token = current_tenant.set(code)
                    try:
                        summaries[code] = asyncio.run(run_push(for_tenant(settings, code), mappings))
                    finally:
                        current_tenant.reset(token)
                after = _families(http.get("/metrics").text)
                only_a = http.get("/metrics", params={"tenant": codes[0]}).text
        finally:
            for engine in app.state.engines:
                engine.dispose()

    for code, summary in summaries.items():
        assert summary.dossiers_pushed > 0
        pushed = _value(after, "dvcsync_records_pushed_total", kind="dossier", tenant=code)
        assert pushed == summary.dossiers_pushed  # a tenant of this test only: counted from 0
        assert (
            _value(after, "dvcsync_cycles_total", job="push", tenant=code, status="dead-letters")
            + _value(after, "dvcsync_cycles_total", job="push", tenant=code, status="ok")
            == 1
        )
        assert _sum(after, "dvcsync_portal_requests_total", service="DongBoHoSoMC", tenant=code) > 0
        # read from the tenant's own state at scrape time
        assert _sum(after, "dvcsync_outbox_entries", tenant=code, state="dead") == summary.dead
        assert _value(after, "dvcsync_quarantined_records", tenant=code) == summary.enqueue.quarantined
    # the pushes counted nothing without a tenant
    assert _value(after, "dvcsync_records_pushed_total", kind="dossier") == _value(
        before, "dvcsync_records_pushed_total", kind="dossier"
    )
    tenants_in_a = {
        dict(labels).get("tenant") for samples in _families(only_a).values() for _, labels in samples
    }
    assert tenants_in_a == {None, codes[0]}


def _plans(state: Path) -> dict[str, list[str]]:
    plans: dict[str, list[str]] = {}
    with sqlite3.connect(state) as conn:
        for name, sql in backlog_sql("sqlite").items():
            plans[name] = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", {"since": 0.0})]
    return plans


def test_the_backlog_queries_use_an_index_not_a_scan_of_settled_rows(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    store = StateStore(f"sqlite:///{state}")
    store.prepare()  # the migrated schema: the indexes a deployed state has
    store.close()
    empty = _plans(state)
    with sqlite3.connect(state) as conn:  # a state mostly settled, with statistics (ANALYZE)
        conn.executemany(
            "INSERT INTO outbox (idem_key, kind, record_key, payload, payload_hash, state, attempts,"
            " next_attempt_at, verify_first, created_at, updated_at) VALUES (?, 'dossier', ?, '{}', 'h', ?,"
            " 0, 0, 0, 0, 0)",
            [(f"k{i}", f"R{i}", "done" if i % 100 else "pending") for i in range(5000)],
        )
        conn.executemany(
            "INSERT INTO inbox (kind, natural_key, payload, state, received_at, updated_at)"
            " VALUES ('portal_dossier', ?, '{}', ?, 0, 0)",
            [(f"N{i}", "acknowledged" if i % 50 else "received") for i in range(2000)],
        )
        conn.execute("ANALYZE")
    for plans in (empty, _plans(state)):  # without statistics, then with
        for table in ("outbox", "inbox"):
            steps = plans[table]
            assert not any(re.match(rf"SCAN {table}\b", step) for step in steps), (table, steps)
            assert any(re.match(rf"SEARCH {table} USING (COVERING )?INDEX", s) for s in steps), steps
        # the quarantine holds only the records failing now: counted whole
        assert len(plans["quarantine"]) == 1
