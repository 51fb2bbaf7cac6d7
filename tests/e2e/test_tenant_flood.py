"""One tenant's flood does not starve another (issue 20 item 2): a caller holding only tenant A's
payment token floods A's payment callback from 50 connections with bad-signature callbacks, while
tenant B's payment callbacks keep being answered (at most 5 % refused for capacity).

The service's output goes to files, not to pipes nobody reads: a full pipe blocks the service on
its next log line, which is how the first version of this test hung for 600 s (every refused
callback logged a line; the 64 KiB pipe filled within seconds and every request then waited).
Every loop is bounded by a count and a deadline."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvcsync.contract import PaymentCallback
from dvcsync.province.sample import generate
from mock_portal.testing import free_port, run_mock_process

from .conftest import REPO, db_upgrade
from .test_run import _ok, _wait

CALLBACK = "/inbound/payment/dpnhankqthanhtoanhs"
TOKENS = {"a": "tenant-a-payment-token-0123", "b": "tenant-b-payment-token-4567"}
SECRET = "khoa-bi-mat-thu-nghiem"  # [payment] secret's default, the mock's test secret
FLOODERS, FLOOD_MAX, B_CALLS = 50, 2000, 200
DEADLINE_S = 90.0


def _callback(ref: str, secret: str | None) -> dict[str, str]:
    """A well-formed callback for ``ref``: signed with ``secret``, or with a wrong signature."""
    callback = PaymentCallback(
        MaLoi="00", MaDoiTac="H40-QNINH", MaThamChieu=ref, SoTien=100000, ThoiGianGD="20240101120000"
    )
    if secret is None:
        return callback.model_copy(update={"MaXacThuc": "0" * 64}).to_wire()
    return callback.signed(secret).to_wire()


def _serve(config: Path, logs: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    with open(logs / "out.log", "wb") as out, open(logs / "err.log", "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "dvcsync.cli", "--config", str(config), "run"],
            stdout=out,
            stderr=err,
            env=env,
            cwd=REPO,
        )


def _write_config(tmp_path: Path, port: int, mock_a: Any, mock_b: Any) -> Path:
    """Two tenants, a and b, each with its own sample province, mock and payment token."""
    lines = [
        f'[province]\nmappings = "{REPO / "mappings"}"',
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"',
        f"[server]\nport = {port}",
        '[schedule]\npush = "every 1h"\npull = "every 1h"\npayments = "every 1h"',
    ]
    for code, mock in (("a", mock_a), ("b", mock_b)):
        db = tmp_path / f"{code}.db"
        generate(db, 20, 5 if code == "a" else 6)
        lines += [
            f'[tenants.{code}.province]\nsource_url = "sqlite:///{db}"',
            f'[tenants.{code}.portal]\nadapter_url = "{mock.url}/dvcqg"\nsoap_url = "{mock.url}/soap"',
            f'[tenants.{code}.payment]\ninit_url = "{mock.url}/payment/init"'
            f'\nquery_url = "{mock.url}/payment/query"\nbill_url = "{mock.url}/payment/bill"'
            f'\nreceipts_dir = "{tmp_path / "receipts" / code}"',
            f'[tenants.{code}.server.payment]\ntoken = "{TOKENS[code]}"',
        ]
    config = tmp_path / "dvcsync.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def _calls_of_b(base: str, deadline: float) -> tuple[list[int], list[float]]:
    """B_CALLS signed callbacks to tenant b (each answered MaLoi 99: no such attempt at b): their
    statuses (0 for a transport error) and latencies."""
    statuses: list[int] = []
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {TOKENS['b']}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        for i in range(B_CALLS):
            if time.monotonic() > deadline:
                break
            started = time.monotonic()
            try:
                answer = client.post(f"/t/b{CALLBACK}", json=_callback(f"B-{i}", SECRET))
                statuses.append(answer.status_code)
                assert answer.json()["MaLoi"] == "99"  # signed, but no such attempt at B
            except httpx.HTTPError:
                statuses.append(0)
            latencies.append(time.monotonic() - started)
    return statuses, latencies


@pytest.mark.slow
def test_a_flood_on_one_tenant_leaves_the_other_its_share(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with run_mock_process() as mock_a, run_mock_process() as mock_b:
        config = _write_config(tmp_path, port, mock_a, mock_b)
        for code in TOKENS:
            db_upgrade(config, "--tenant", code)
        service = _serve(config, tmp_path)
        stop = threading.Event()
        deadline = time.monotonic() + DEADLINE_S
        flood_answers: list[int] = []

        def flood(n: int) -> None:
            headers = {"Authorization": f"Bearer {TOKENS['a']}"}
            with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
                for i in range(FLOOD_MAX):
                    if stop.is_set() or time.monotonic() > deadline:
                        return
                    try:
                        answer = client.post(f"/t/a{CALLBACK}", json=_callback(f"FLOOD-{n}-{i}", None))
                        flood_answers.append(answer.status_code)
                    except httpx.HTTPError:
                        flood_answers.append(0)

        flooders = [threading.Thread(target=flood, args=(n,), daemon=True) for n in range(FLOODERS)]
        try:
            assert _wait(lambda: _ok(f"{base}/healthz"), 60), "the service did not start"
            for thread in flooders:
                thread.start()
            assert _wait(lambda: len(flood_answers) > 200, 30), "the flood never got going"
            statuses, latencies = _calls_of_b(base, deadline)
            flood_during_b = len(flood_answers)
            assert all(t.is_alive() for t in flooders), "the flood ended before B's calls did"
            stop.set()
            for thread in flooders:
                thread.join(max(0.1, deadline + 15 - time.monotonic()))
            assert len(statuses) == B_CALLS, f"only {len(statuses)} of B's calls before the deadline"
            refused = sum(1 for s in statuses if s != 200)
            latencies.sort()
            print(
                f"B: {refused}/{B_CALLS} refused ({100 * refused / B_CALLS:.1f} %), median"
                f" {latencies[len(latencies) // 2] * 1000:.0f} ms, p95"
                f" {latencies[int(0.95 * len(latencies))] * 1000:.0f} ms; A's flood: {flood_during_b}"
                f" answers, {flood_answers.count(503)} of them 503"
            )
            assert refused <= 0.05 * B_CALLS, f"{refused} of B's {B_CALLS} callbacks refused: {statuses}"
            assert 503 in flood_answers, "the flood never met its own tenant's cap"
            metrics = httpx.get(f"{base}/metrics", timeout=10).text
            assert 'dvcsync_inbound_refused_total{group="payment",status="503"}' in metrics
        finally:
            stop.set()
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(timeout=60)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait(timeout=10)
        log = (tmp_path / "err.log").read_text(encoding="utf-8", errors="replace")
        refusals = flood_answers.count(200) + B_CALLS  # every one a MaLoi 99
        logged = log.count("payment callback refused")
        assert 0 < logged < refusals / 5, f"{logged} lines for {refusals} refused callbacks"
        # A's forged callbacks are counted, not stored one row each (issue 20 item 7)
        with sqlite3.connect(tmp_path / "state-a.db") as conn:
            assert conn.execute("SELECT count(*) FROM inbox").fetchone() == (0,)
            [(rows, counted)] = conn.execute("SELECT count(*), sum(count) FROM inbound_refusal").fetchall()
        assert rows == 1 and counted == flood_answers.count(200), (rows, counted)
