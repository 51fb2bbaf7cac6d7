"""One `dvcsync run` serving three tenants, each with its own one-stop database, mock portal and
state: "down" (its portal is a dead port), "big" (a 100,000-dossier backlog) and "quiet". The
quiet tenant's change reaches its portal within one push interval while big works through its
backlog and down's failures are logged; /metrics shows each tenant's series; a payment callback
under /t/quiet/ lands in quiet's state and province only."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dvcsync.province.sample import generate
from dvcsync.sync.push import local_iso
from mock_portal.testing import RunningMock, free_port, run_mock_process

from .conftest import REPO, db_upgrade

INTERVAL_S = 5  # every job of every tenant
BIG = 100_000
CALLBACK = "/inbound/payment/dpnhankqthanhtoanhs"


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The big tenant's one-stop database (generated once: ~9 s for 100,000 dossiers)."""
    path = tmp_path_factory.mktemp("big") / "onestop.db"
    started = time.perf_counter()
    generate(path, BIG, 7)
    print(f"generated {BIG} dossiers in {time.perf_counter() - started:.1f} s")
    return path


def _wait(check: Callable[[], Any], timeout: float) -> Any:
    """``check()``'s first truthy value, or None once ``timeout`` is over."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.1)


def _rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(sql, params).fetchall()


def _make_paying(db: Path) -> str:
    """A dossier asking for its up-front fees, unpaid, with no attempt yet: the payments job
    asks the platform for a payment at start-up."""
    ((dossier_id, code),) = _rows(
        db,
        "SELECT h.id, h.so_ho_so FROM ho_so h WHERE EXISTS (SELECT 1 FROM le_phi l WHERE"
        " l.ho_so_id = h.id AND l.hinh_thuc_thu = 'thu_truoc' AND l.so_tien > 0)"
        " AND h.ma_ho_so_qg IS NULL ORDER BY h.id LIMIT 1",
    )
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE ho_so SET trang_thai = 'paying' WHERE id = ?", (dossier_id,))
        conn.execute("UPDATE le_phi SET da_thanh_toan = 0 WHERE ho_so_id = ?", (dossier_id,))
        conn.execute("DELETE FROM thanh_toan WHERE ho_so_id = ?", (dossier_id,))
    return str(code)


def _total(mock: RunningMock) -> int:
    return int(httpx.get(f"{mock.url}/_admin/dossiers", params={"size": 1}, timeout=30).json()["total"])


def _writes(mock: RunningMock, code: str) -> int:
    return int(httpx.get(f"{mock.url}/_admin/dossiers/{code}", timeout=30).json()["writes"])


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples
    ]


def _sum(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum over the samples named ``name`` whose labels include ``labels``."""
    return sum(v for n, got, v in samples if n == name and labels.items() <= got.items())


def _config(tmp: Path, port: int, dbs: dict[str, Path], portals: dict[str, str]) -> Path:
    """The configuration, and each tenant's state started by ``dvcsync db upgrade --tenant CODE``
    as an operator does before ``dvcsync run`` (which starts no state)."""
    lines = [
        f'[province]\nmappings = "{REPO / "mappings"}"',
        f'[state]\nurl = "sqlite:///{tmp / "state.db"}"\nlock_wait_s = 1',
        f"[server]\nport = {port}",
        "[schedule]\n"
        + "".join(f'{job} = "every {INTERVAL_S}s"\n' for job in ("push", "pull", "payments"))
        + 'prune = "every 24h"\nsatisfaction = "every 24h"',
    ]
    for code, db in dbs.items():
        base = portals[code]
        lines.append(f'[tenants.{code}.province]\nsource_url = "sqlite:///{db}"')
        lines.append(
            f'[tenants.{code}.portal]\nadapter_url = "{base}/dvcqg"\nsoap_url = "{base}/soap"\ntimeout = 5'
            + ("\nrate_limit = 200\nconcurrency = 8" if code == "big" else "")
        )
        lines.append(
            f'[tenants.{code}.payment]\ninit_url = "{base}/payment/init"\nquery_url = "{base}/payment/query"'
            f'\nbill_url = "{base}/payment/bill"\nreceipts_dir = "{tmp / "receipts" / code}"'
        )
    path = tmp / "dvcsync.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for code in dbs:
        db_upgrade(path, "--tenant", code)
    return path


@pytest.mark.slow
def test_a_quiet_tenant_keeps_its_interval_beside_a_dead_portal_and_a_backlog(
    tmp_path: Path, big_source: Path
) -> None:
    dbs = {"big": big_source, "down": tmp_path / "down.db", "quiet": tmp_path / "quiet.db"}
    generate(dbs["down"], 60, 12)
    generate(dbs["quiet"], 60, 11)
    paying = _make_paying(dbs["quiet"])
    states = {code: tmp_path / f"state-{code}.db" for code in dbs}  # the tenants' own states
    port = free_port()
    inbound = f"http://127.0.0.1:{port}"
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with (
        run_mock_process(callback_url=f"{inbound}/t/quiet{CALLBACK}", callback_retry_s=0.2) as quiet,
        run_mock_process() as big,
    ):
        config = _config(tmp_path, port, dbs, {"big": big.url, "down": dead, "quiet": quiet.url})
        log = tmp_path / "service.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
        with log.open("wb") as err:
            service = subprocess.Popen(
                [sys.executable, "-m", "dvcsync.cli", "--config", str(config), "run"],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                cwd=REPO,
            )
        try:
            assert _wait(lambda: _ok(f"{inbound}/healthz"), 60), log.read_text(errors="replace")

            def quiet_pushed() -> bool:  # its first push cycle is over
                sql = "SELECT 1 FROM run WHERE job = 'push' AND status != 'running'"
                return states["quiet"].exists() and bool(_rows(states["quiet"], sql))

            assert _wait(quiet_pushed, 60), log.read_text(errors="replace")
            assert _wait(lambda: _total(big) > 0, 120), "big never delivered"

            # quiet's change: the next push cycle takes it to quiet's portal
            own = _rows(dbs["quiet"], "SELECT so_ho_so FROM ho_so WHERE ma_ho_so_qg IS NULL ORDER BY id")
            code = own[3][0]
            before = _writes(quiet, code)
            with sqlite3.connect(dbs["quiet"]) as conn:
                conn.execute(
                    "UPDATE ho_so SET trich_yeu = trich_yeu || '.', updated_at = ? WHERE so_ho_so = ?",
                    (local_iso(time.time() - 1), code),
                )
            changed, changed_at = time.monotonic(), time.time()
            # one interval for the next cycle to start, one more as the loaded machine's grace
            arrived = _wait(lambda: _writes(quiet, code) > before and time.monotonic(), 2 * INTERVAL_S)
            big_then = _total(big)
            big_running = _rows(
                states["big"], "SELECT COUNT(*) FROM run WHERE job = 'push' AND status = 'running'"
            )
            assert arrived, f"quiet's change did not reach its portal within {2 * INTERVAL_S} s"
            cycles = _rows(
                states["quiet"],
                "SELECT started_at, finished_at FROM run WHERE job = 'push' AND finished_at > ?"
                " ORDER BY finished_at LIMIT 1",
                changed_at,
            )
            started, finished = cycles[0] if cycles else (float("nan"), float("nan"))
            print(
                f"quiet's change arrived after {arrived - changed:.2f} s (push every {INTERVAL_S} s):"
                f" the cycle that took it started {started - changed_at:+.2f} s after the change and ran"
                f" {finished - started:.2f} s; big's portal had {big_then} of its backlog"
            )
            # ... while big was still working through its backlog
            assert big_then < BIG and big_running == [(1,)], (big_then, big_running)

            # down's portal is dead: its failures are logged under its name, its breaker opens
            assert _wait(lambda: "[down] push: portal unreachable" in log.read_text(errors="replace"), 30)

            # /metrics: each tenant's series
            samples = _samples(httpx.get(f"{inbound}/metrics", timeout=30).text)
            assert {"big", "down", "quiet"} <= {labels.get("tenant") for _, labels, _ in samples}
            assert _sum(samples, "dvcsync_portal_requests_total", tenant="down", outcome="unreachable") > 0
            assert _sum(samples, "dvcsync_records_pushed_total", tenant="quiet", kind="dossier") > 0
            assert _sum(samples, "dvcsync_outbox_entries", tenant="big") > 0  # big's backlog, from its state
            assert _sum(samples, "dvcsync_cycles_total", tenant="quiet", job="push") >= 2
            quiet_only = httpx.get(f"{inbound}/metrics", params={"tenant": "quiet"}, timeout=30)
            assert {labels.get("tenant") for _, labels, _ in _samples(quiet_only.text)} == {None, "quiet"}
            assert httpx.get(f"{inbound}/metrics", params={"tenant": "nope"}, timeout=30).status_code == 404

            # a payment callback under /t/quiet/ lands in quiet's state and province only
            def initiated() -> str | None:
                rows = _rows(
                    dbs["quiet"],
                    "SELECT t.ma_tham_chieu FROM thanh_toan t JOIN ho_so h ON h.id = t.ho_so_id"
                    " WHERE h.so_ho_so = ? AND t.trang_thai = 'created'",
                    paying,
                )
                return str(rows[0][0]) if rows else None

            ref = _wait(initiated, 60)
            assert ref, "quiet's payments job did not ask for the payment"
            paid = httpx.post(f"{quiet.url}/_admin/payments/{ref}/pay", json={}, timeout=30)
            assert paid.status_code == 200, paid.text
            sql = "SELECT t.trang_thai FROM thanh_toan t WHERE t.ma_tham_chieu = ?"
            assert _wait(lambda: _rows(dbs["quiet"], sql, ref) == [("paid",)], 30), "callback not applied"
            inbox = "SELECT kind, state FROM inbox WHERE natural_key = ?"
            applied = [("payment_result", "applied")]
            assert _wait(lambda: _rows(states["quiet"], inbox, ref) == applied, 30)
            assert _rows(states["big"], inbox, ref) == _rows(states["down"], inbox, ref) == []
            assert not (tmp_path / "state.db").exists()  # the shared state is nobody's

            # unprefixed inbound paths belong to no tenant: 404 in the contract's shape
            stray = httpx.post(f"{inbound}{CALLBACK}", json={}, timeout=30)
            assert stray.status_code == 404 and stray.json()["MaLoi"] == "99"
            stray = httpx.post(f"{inbound}/t/nope/inbound/dvcqg/hoso", json={}, timeout=30)
            assert stray.status_code == 404 and stray.json()["error_code"] == -1
        finally:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(timeout=60)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait(10)
        text = log.read_text(errors="replace")
        assert service.returncode in (0, -signal.SIGTERM), (service.returncode, text[-3000:])
        assert "Traceback" not in text, text[-3000:]
        assert f"[quiet] payment {ref} paid (applied)" in text  # the request ran as quiet's
        assert "[quiet] push: portal unreachable" not in text and "[big] push: portal unreachable" not in text
        # every tenant's loop stopped cleanly: no run left "running", big's cycle recorded cancelled
        for code, state in states.items():
            assert _rows(state, "SELECT COUNT(*) FROM run WHERE status = 'running'") == [(0,)], code
        big_runs = _rows(states["big"], "SELECT status, error FROM run WHERE job = 'push'")
        assert ("failed", "cancelled") in big_runs, big_runs


def test_a_job_another_replica_runs_is_skipped_and_said(caplog: pytest.LogCaptureFixture) -> None:
    """The scheduler's jobs but push hold ``job_lock`` (PostgreSQL): while another session holds
    ``quiet:pull`` the cycle is skipped with one INFO line; another tenant's pull is another lock."""
    from dvcsync.scheduler import _job
    from dvcsync.sync.state_lock import job_lock
    from tests.postgres import create_database, postgres_server

    ran: list[str] = []

    def cycle(tenant: str) -> Callable[[], Any]:
        async def run() -> dict[str, int]:
            ran.append(tenant)
            return {}

        return run

    with postgres_server() as server:
        url = create_database(server, "job_lock")
        quiet, big = (_job("pull", cycle(t), lock=(url, f"{t}:pull")) for t in ("quiet", "big"))
        with job_lock(url, "quiet:pull") as held, caplog.at_level(logging.INFO, logger="dvcsync.scheduler"):
            assert held  # "another replica" holds quiet's pull
            asyncio.run(quiet())
            asyncio.run(big())
        assert ran == ["big"]
        assert "pull: running on another replica; skipped" in caplog.text
        asyncio.run(quiet())  # released: runs here
        assert ran == ["big", "quiet"]


def test_a_tenant_cannot_move_the_one_inbound_server(tmp_path: Path) -> None:
    """Where the server listens is the process's: a tenant's table setting it refuses to start
    (exit 2 from the command), before any state is locked or port bound."""
    from dvcsync.config import Settings
    from dvcsync.mapping import load_mappings
    from dvcsync.scheduler import UnsafeToStart, run_service

    settings = Settings.load(
        None,
        use_env=False,
        province={"mappings": str(REPO / "mappings")},
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        tenants={"a": {}, "b": {"server": {"port": 9999}}},
    )
    with pytest.raises(UnsafeToStart, match=r"\[tenants\.b\.server\] port: one inbound server"):
        asyncio.run(run_service(settings, load_mappings(settings.province.mappings)))
    assert not list(tmp_path.iterdir())  # no state made, nothing locked
