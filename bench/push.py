"""Push throughput, end to end, against baselines measured in the same run.

  adapter   `dvcsync sync push` (its own process) on a fresh state store: map, enqueue, deliver.
  (i)  bare  an httpx loop posting the same prepared bodies (DongBoHoSoMC batches and
             CapNhatTienDoHoSoMC calls) with the same concurrency and no state at all: the
             transport's and the mock's limit on this machine.
  (ii) naive what deployed one-stop systems do: one dossier per request, sequentially, a
             TraCuuHoSo before each push, then its history (measured on a subset).
Then the same with portal latency injected, a cycle with nothing changed, and the adapter's peak
memory. The mock runs in its own process. Usage:

  .venv/bin/python bench/push.py [--dossiers 100000] [--latency-ms 100] [--naive 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from adapter.mapping import load_mappings
from adapter.province.sample import generate
from adapter.province.source import SqlSource, make_engine
from mock_portal.faults import FaultSpec
from mock_portal.testing import RunningMock, run_mock_process

REPO = Path(__file__).resolve().parents[1]
BATCH, CONCURRENCY = 100, 8
STEPS_PER_CALL = 10  # --history-batch


def prepare(db: Path) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """The mapped dossiers and their history, exactly as the adapter would send them."""
    mset = load_mappings(REPO / "mappings")
    spec = mset.specs["dossier"]
    assert spec.source is not None
    engine = make_engine(f"sqlite:///{db}")
    dossiers, histories = [], []
    for page in SqlSource(engine, spec.source).iter_pages(1000):
        for record in page:
            result = mset.get("dossier").map(record)
            if result.ok:
                dossiers.append(result.value.to_wire())
                histories.append(
                    [mset.get("step").map(s, parent=record).value.to_wire() for s in record["steps"]]
                )
    engine.dispose()
    return dossiers, histories


def bodies(
    dossiers: list[dict[str, Any]], histories: list[list[dict[str, Any]]]
) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = [
        ("DongBoHoSoMC", {"isUpdating": "False", "data": dossiers[i : i + BATCH]})
        for i in range(0, len(dossiers), BATCH)
    ]
    call: list[dict[str, Any]] = []
    for history in histories:
        if call and len(call) + len(history) > STEPS_PER_CALL:
            out.append(("CapNhatTienDoHoSoMC", {"data": call}))
            call = []
        call.extend(history)
    if call:
        out.append(("CapNhatTienDoHoSoMC", {"data": call}))
    return out


class Bare:
    def __init__(self, mock: RunningMock) -> None:
        self.mock = mock
        creds = mock.config.credentials
        self.headers = {"Content-Type": "application/json", "dstcode": creds.dstcode}
        self.client = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=CONCURRENCY * 2))
        self.session = ""

    async def login(self) -> None:
        creds = self.mock.config.credentials
        reply = await self.client.post(
            f"{self.mock.adapter_url}/auth",
            headers=self.headers,
            json={"username": creds.username, "password": creds.password},
        )
        self.session = reply.json()["session"]

    async def post(self, service: str, body: dict[str, Any]) -> dict[str, Any]:
        full = {
            "session": self.session,
            "madonvi": self.mock.config.credentials.madonvi,
            "service": service,
            **body,
        }
        content = json.dumps(full, ensure_ascii=False, separators=(",", ":")).encode()
        reply = await self.client.post(
            f"{self.mock.adapter_url}/integration", headers=self.headers, content=content
        )
        data: dict[str, Any] = reply.json()
        return data


async def bare_loop(mock: RunningMock, prepared: list[tuple[str, dict[str, Any]]]) -> float:
    bare = Bare(mock)
    await bare.login()
    semaphore = asyncio.Semaphore(CONCURRENCY)
    dossier_calls = [b for b in prepared if b[0] == "DongBoHoSoMC"]
    history_calls = [b for b in prepared if b[0] != "DongBoHoSoMC"]

    async def one(service: str, body: dict[str, Any]) -> None:
        async with semaphore:
            await bare.post(service, body)

    start = time.perf_counter()
    await asyncio.gather(*(one(s, b) for s, b in dossier_calls))  # dossiers before their history
    await asyncio.gather(*(one(s, b) for s, b in history_calls))
    elapsed = time.perf_counter() - start
    await bare.client.aclose()
    return elapsed


async def naive(
    mock: RunningMock, dossiers: list[dict[str, Any]], histories: list[list[dict[str, Any]]]
) -> float:
    bare = Bare(mock)
    await bare.login()
    start = time.perf_counter()
    for dossier, history in zip(dossiers, histories, strict=True):
        found = await bare.post("TraCuuHoSo", {"mahoso": dossier["MaHoSo"]})
        updating = "True" if found.get("result") else "False"
        await bare.post("DongBoHoSoMC", {"isUpdating": updating, "data": [dossier]})
        if history:
            await bare.post("CapNhatTienDoHoSoMC", {"data": history})
    elapsed = time.perf_counter() - start
    await bare.client.aclose()
    return elapsed


def adapter_push(mock: RunningMock, db: Path, state: Path) -> dict[str, Any]:
    config = state.with_suffix(".toml")
    config.write_text(
        f'[province]\nsource_url = "sqlite:///{db}"\nmappings = "{REPO / "mappings"}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\nbatch_size = {BATCH}\nconcurrency = {CONCURRENCY}\n'
        f"rate_limit = 100000\ntimeout = 60\nhistory_batch_size = {STEPS_PER_CALL}\n"
        f'[state]\nurl = "sqlite:///{state}"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapter.cli", "--config", str(config), "sync", "push", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    # Peak RSS from /proc while it runs: getrusage(RUSAGE_CHILDREN) would also count the forked
    # copy of this (large) benchmark process before exec.
    peak_kb = 0
    while proc.poll() is None:
        peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    if proc.returncode not in (0, 1):
        raise RuntimeError(stderr.decode())
    summary: dict[str, Any] = json.loads(stdout)
    summary["peak_rss_mb"] = peak_kb / 1024
    return summary


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def quiet_cycle_at_scale(work: Path, mock: RunningMock, synced: int) -> float:
    """Seconds of a push cycle with nothing changed over ``synced`` already-synced dossiers.

    The province table and the state (sync records, done outbox entries, cursor) are filled with
    SQL rather than by pushing a million dossiers: what is measured is the cycle's fixed cost."""
    import sqlite3

    from adapter.config import Settings
    from adapter.portal import RestPortalClient, make_http_client
    from adapter.province.sample.schema import DDL
    from adapter.province.source import make_engine
    from adapter.state import StateStore
    from adapter.sync.push import CURSOR, PushJob

    db, state = work / f"quiet-{synced}.db", work / f"quiet-{synced}-state.db"
    seq = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
    minute = "strftime('%Y-%m-%dT%H:%M:%S', '2020-01-01', '+' || x || ' minutes')"  # one change a minute
    with sqlite3.connect(db) as conn:
        conn.executescript(DDL)
        conn.execute(
            seq + "INSERT INTO ho_so (id, so_ho_so, ma_thu_tuc, chu_ho_so, loai_chu_ho_so, kenh_nop,"
            " trang_thai, ma_don_vi, created_at, updated_at)"
            f" SELECT x, 'Q-' || x, 'HT-KS-01', 'A', 'cong_dan', 'truc_tiep', 'done', 'H40-UBND', {minute},"
            f" {minute} FROM c",
            (synced,),
        )
        (last,) = conn.execute("SELECT MAX(updated_at) FROM ho_so").fetchone()
    store = StateStore(f"sqlite:///{state}")
    store.upgrade()
    with sqlite3.connect(state) as conn:
        conn.execute(
            seq + "INSERT INTO dossier_state (record_key, source_id, source_updated_at, payload_hash,"
            " acked_hash, on_portal, updated_at) SELECT 'Q-' || x, x, '', 'h', 'h', 1, 0 FROM c",
            (synced,),
        )
        conn.execute(
            seq + "INSERT INTO outbox (idem_key, kind, record_key, payload, payload_hash, state, attempts,"
            " next_attempt_at, verify_first, created_at, updated_at) SELECT 'dossier:Q-' || x, 'dossier',"
            " 'Q-' || x, '{}', 'h', 'done', 1, 0, 0, 0, 0 FROM c",
            (synced,),
        )
        conn.execute(
            "INSERT INTO cursor (name, watermark, last_key, updated_at) VALUES (?, ?, ?, 0)",
            (CURSOR, last, synced),
        )
    settings = Settings.load(
        None,
        province={"source_url": f"sqlite:///{db}", "mappings": str(REPO / "mappings")},
        portal={"adapter_url": mock.adapter_url},
        state={"url": f"sqlite:///{state}"},
    )

    async def cycle() -> float:
        client = RestPortalClient(settings.portal, make_http_client(settings.portal))
        source = make_engine(settings.province.source_url)
        job = PushJob(settings, load_mappings(REPO / "mappings"), store, client, source)
        start = time.perf_counter()
        summary = await job.run_cycle()
        elapsed = time.perf_counter() - start
        # only the look-back window (the last 5 minutes of changes) is read again
        assert summary.calls == 0 and summary.enqueue.records <= 6, summary
        await client.aclose()
        source.dispose()
        return elapsed

    seconds = min(asyncio.run(cycle()) for _ in range(3))
    store.close()
    return seconds


def reset(mock: RunningMock) -> None:
    httpx.post(f"{mock.url}/_admin/reset", timeout=60).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dossiers", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--naive", type=int, default=300, help="dossiers for the naive baseline")
    parser.add_argument("--latency-dossiers", type=int, default=3000)
    parser.add_argument("--history-batch", type=int, default=10, help="history entries per call")
    parser.add_argument("--quiet-sizes", default="100000,1000000", help="synced sizes for the quiet cycle")
    args = parser.parse_args()
    global STEPS_PER_CALL
    STEPS_PER_CALL = args.history_batch
    print(f"history entries per call: {STEPS_PER_CALL}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = work / "onestop.db"
        generate(db, args.dossiers, 42)
        dossiers, histories = prepare(db)
        prepared = bodies(dossiers, histories)
        n, steps = len(dossiers), sum(len(h) for h in histories)
        print(f"{n:,} mappable dossiers, {steps:,} history entries, {len(prepared):,} calls")

        with run_mock_process(state=str(work / "mock.db")) as mock:
            bare_s = asyncio.run(bare_loop(mock, prepared))
            reset(mock)
            sub = args.naive
            naive_s = asyncio.run(naive(mock, dossiers[:sub], histories[:sub]))
            reset(mock)
            pushed = adapter_push(mock, db, work / "state.db")
            quiet = adapter_push(mock, db, work / "state.db")
        rates = {
            "adapter (dvcsync sync push)": n / pushed["elapsed_s"],
            "(i) bare httpx loop, same bodies": n / bare_s,
            "(ii) naive sequential + TraCuuHoSo": sub / naive_s,
        }
        for name, rate in rates.items():
            print(f"  {name:38s} {rate:10,.0f} dossiers/s")
        adapter_rate = rates["adapter (dvcsync sync push)"]
        bare_rate, naive_rate_ = (
            rates["(i) bare httpx loop, same bodies"],
            rates["(ii) naive sequential + TraCuuHoSo"],
        )
        print(f"  adapter / bare  = {adapter_rate / bare_rate:.2f}x  (target ≥ 0.6)")
        print(f"  adapter / naive = {adapter_rate / naive_rate_:.1f}x  (target ≥ 20)")
        print(f"  no-change cycle over {n:,} synced: {quiet['elapsed_s']:.3f}s (target < 0.5 s)")
        print(f"  adapter peak RSS: {pushed['peak_rss_mb']:.0f} MB (target < 300 MB)")

        with run_mock_process() as mock:
            for size in (int(x) for x in args.quiet_sizes.split(",") if x):
                print(
                    f"  no-change cycle over {size:,} synced (state filled by SQL): "
                    f"{quiet_cycle_at_scale(work, mock, size):.3f}s (target < 0.5 s)"
                )

        # with portal latency
        lat_n = min(args.latency_dossiers, args.dossiers)
        lat_db = work / "latency.db"
        generate(lat_db, lat_n, 43)
        lat_dossiers, lat_histories = prepare(lat_db)
        faults = FaultSpec.model_validate(
            {"seed": 1, "rules": [{"service": "*", "latency_ms": args.latency_ms}]}
        )
        with run_mock_process(faults=faults) as mock:
            naive_lat = asyncio.run(naive(mock, lat_dossiers[:30], lat_histories[:30]))
            reset(mock)
            lat_push = adapter_push(mock, lat_db, work / "latency-state.db")
        naive_rate, adapter_lat_rate = 30 / naive_lat, len(lat_dossiers) / lat_push["elapsed_s"]
        print(
            f"with {args.latency_ms:.0f} ms latency: adapter {adapter_lat_rate:,.0f} dossiers/s, "
            f"naive {naive_rate:,.1f} dossiers/s = {adapter_lat_rate / naive_rate:.1f}x (target ≥ 8)"
        )


if __name__ == "__main__":
    main()
