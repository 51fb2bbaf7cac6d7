"""`dvcsync run` as a service: jobs on schedule, the inbound server, one instance per state."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dvcsync.province.sample import generate
from dvcsync.sync.state_lock import acquire
from mock_portal.testing import free_port, run_mock_process

from .conftest import REPO, db_upgrade
from .test_pull import portal_dossier

PROMOTION = json.loads(
    (REPO / "tests/fixtures/contract/thongbaokhuyenmai_push.json").read_text(encoding="utf-8")
)


def _start(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    return subprocess.Popen(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )


def _wait(check, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_run_pushes_pulls_serves_and_refuses_a_second_instance(tmp_path: Path) -> None:
    onestop = tmp_path / "onestop.db"
    generate(onestop, 60, 4)
    port = free_port()
    inbound = f"http://127.0.0.1:{port}"
    with run_mock_process(province_url=f"{inbound}/inbound/dvcqg/hoso", push_retry_s=0.2) as mock:
        config = tmp_path / "dvcsync.toml"
        config.write_text(
            f'[province]\nsource_url = "sqlite:///{onestop}"\nmappings = "{REPO / "mappings"}"\n'
            f'[portal]\nadapter_url = "{mock.adapter_url}"\nrate_limit = 500\n'
            f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\nlock_wait_s = 1\n'
            "[push]\npage_size = 20\n"  # the first push forks its enqueue producer under the service
            f'[server]\nport = {port}\n[schedule]\npush = "every 1s"\npull = "every 1s"\n',
            encoding="utf-8",
        )
        db_upgrade(config)  # as deploy/ does before each start: `dvcsync run` starts no state
        service = _start(config)
        try:
            assert _wait(lambda: _ok(f"{inbound}/healthz")), (
                service.stderr.read1().decode() if service.stderr else ""
            )
            # a second instance on the same state waits [state] lock_wait_s, then exits 3
            second = _start(config)
            _, err = second.communicate(timeout=60)
            assert second.returncode == 3 and b"held by pid" in err and b"dvcsync run" in err, err

            def pushed() -> bool:
                total = httpx.get(f"{mock.url}/_admin/dossiers", params={"size": 1}).json()["total"]
                return bool(total >= 40)  # 60 dossiers less the portal-submitted and the quarantined

            assert _wait(pushed), "the push job did not run on its schedule"
            httpx.post(
                f"{mock.url}/_admin/portal-dossiers", json=[portal_dossier(7001), PROMOTION]
            ).raise_for_status()

            def taken_in() -> bool:
                with sqlite3.connect(onestop) as conn:
                    codes = {r[0] for r in conn.execute("SELECT so_ho_so FROM ho_so WHERE nguon = 'dvcqg'")}
                return {portal_dossier(7001)["MaHoSo"], PROMOTION["MaHoSo"]} <= codes

            assert _wait(taken_in), "the pull job or the inbound server did not take the portal dossiers in"
            metrics = httpx.get(f"{inbound}/metrics").text
            # counted as the scheduled cycles ran, in the process that serves /metrics
            assert 'dvcsync_records_pushed_total{kind="dossier"}' in metrics
            assert 'dvcsync_cycle_last_success_timestamp_seconds{job="push"}' in metrics
            assert "# HELP dvcsync_portal_requests_total" in metrics

            def pruned() -> bool:  # the retention job runs at start-up, then daily
                with sqlite3.connect(tmp_path / "state.db") as conn:
                    return bool(
                        conn.execute("SELECT 1 FROM run WHERE job = 'prune' AND status = 'ok'").fetchall()
                    )

            assert _wait(pruned), "the prune job did not run"
        finally:
            service.send_signal(signal.SIGTERM)
            service.communicate(timeout=30)
        # uvicorn shuts down gracefully, then re-raises SIGTERM so a supervisor sees why it stopped
        assert service.returncode in (0, -signal.SIGTERM), service.returncode
        lock = acquire(f"sqlite:///{tmp_path / 'state.db'}")  # released: a new run may start
        assert lock is not None
        lock.close()


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
