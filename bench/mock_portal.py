"""Benchmark: dossiers/s the mock portal accepts via DongBoHoSoMC, batches of 100, over loopback.

Runs, in the same invocation, (1) a bare endpoint that only parses the JSON body (same uvicorn and
FastAPI stack) and (2) the mock portal with a SQLite state file, each in its own process, then
prints both rates and their ratio, with the load average at the start and the end of the run (a
shared machine: a figure means little without it). Targets (issue 23): the mock ≥ 0.4× the bare
endpoint and ≥ 20,000 dossiers per second of server CPU (issue 3: ≥ 20,000 dossiers/s).

    .venv/bin/python bench/mock_portal.py [--requests 400] [--concurrency 4] [--batch 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# This file's name shadows the package when run as a script: import from the repository root.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI, Request, Response  # noqa: E402

from bench._runs import machine  # noqa: E402
from mock_portal.config import MockConfig  # noqa: E402
from mock_portal.testing import free_port, run_mock_process, sample_dossier  # noqa: E402

CREDS = MockConfig().credentials


def serve_bare(port: int) -> None:
    """The baseline: FastAPI + uvicorn, parse the body, answer a fixed reply."""
    app = FastAPI()

    @app.post("/dvcqg/integration")
    async def integration(request: Request) -> Response:
        body = json.loads(await request.body())
        reply = {"error_code": 0, "message": f"{len(body['data'])} parsed"}
        return Response(json.dumps(reply).encode(), media_type="application/json")

    @app.get("/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def bodies(session: str, n_requests: int, batch: int, offset: int) -> list[bytes]:
    out = []
    for i in range(n_requests):
        data = [sample_dossier(offset + i * batch + k) for k in range(batch)]
        out.append(
            json.dumps(
                {
                    "session": session,
                    "madonvi": CREDS.madonvi,
                    "service": "DongBoHoSoMC",
                    "isUpdating": "False",
                    "data": data,
                },
                ensure_ascii=False,
            ).encode()
        )
    return out


def drive(url: str, payloads: list[bytes], concurrency: int) -> tuple[float, int]:
    """Send every payload (``concurrency`` threads, keep-alive); seconds taken and items refused."""
    lock = threading.Lock()
    queue = list(reversed(payloads))
    refused = 0

    def worker() -> None:
        nonlocal refused
        with httpx.Client(
            trust_env=False,
            timeout=60.0,
            headers={"dstcode": CREDS.dstcode, "content-type": "application/json"},
        ) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                response = client.post(url, content=body)
                response.raise_for_status()
                reply = response.json()
                bad = sum(1 for item in reply.get("result") or [] if item["error_code"] != 0)
                if reply["error_code"] != 0 and not reply.get("result"):
                    bad = 1
                with lock:
                    refused += bad

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, refused


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (Linux ``/proc``), "?" elsewhere."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux ``/proc``), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rounds(
    url: str, session: str, args: argparse.Namespace, offset: int, pid: int
) -> tuple[list[float], list[float], int, int]:
    """Warm-up, then ``args.rounds`` timed rounds of fresh dossiers: wall rates, rates per second of
    server CPU (what one core could take; steadier than wall time on a shared machine), refused
    items, items sent."""
    warm = max(10, args.requests // 10)
    sent = 0
    payloads = bodies(session, warm, args.batch, offset)
    drive(url, payloads, args.concurrency)
    sent += warm * args.batch
    rates: list[float] = []
    cpu_rates: list[float] = []
    refused = 0
    for _ in range(args.rounds):
        payloads = bodies(session, args.requests, args.batch, offset + sent)
        cpu_before = cpu_seconds(pid)
        seconds, bad = drive(url, payloads, args.concurrency)
        cpu_after = cpu_seconds(pid)
        rates.append(args.requests * args.batch / seconds)
        if cpu_before is not None and cpu_after is not None and cpu_after > cpu_before:
            cpu_rates.append(args.requests * args.batch / (cpu_after - cpu_before))
        refused += bad
        sent += args.requests * args.batch
    return rates, cpu_rates, refused, sent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300, help="requests per timed round")
    parser.add_argument(
        "--runs", "--rounds", dest="rounds", type=int, default=3, help="timed rounds, the median kept"
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0

    print(f"machine: {machine()}")
    load_start = load_average()
    # 1. baseline: parse only, same HTTP stack
    port = free_port()
    bare = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(port)])
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/ready", trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        bare_rates, bare_cpu, _, _ = rounds(f"{base}/dvcqg/integration", "x", args, 0, bare.pid)
    finally:
        bare.terminate()
        bare.wait(10)

    # 2. the mock portal: strict mode, SQLite state file (WAL), its own process
    with tempfile.TemporaryDirectory() as tmp, run_mock_process(state=str(Path(tmp) / "bench.db")) as mock:
        login = httpx.post(
            f"{mock.url}/dvcqg/auth",
            headers={"dstcode": CREDS.dstcode},
            trust_env=False,
            json={"username": CREDS.username, "password": CREDS.password},
        ).json()
        assert mock.process is not None
        mock_rates, mock_cpu, refused, sent = rounds(
            f"{mock.url}/dvcqg/integration", login["session"], args, 0, mock.process.pid
        )
        stored = httpx.get(f"{mock.url}/_admin/dossiers?size=1", trust_env=False).json()["total"]

    load_end = load_average()
    body_kb = len(bodies("x", 1, args.batch, 0)[0]) / 1024
    bare_best, mock_best = max(bare_rates), max(mock_rates)
    bare_med, mock_med = statistics.median(bare_rates), statistics.median(mock_rates)
    print(
        f"DongBoHoSoMC: {args.rounds} rounds x {args.requests} requests x {args.batch} dossiers "
        f"({body_kb:.0f} KiB per request), {args.concurrency} connections, loopback, {os.cpu_count()} cores"
    )
    print(f"  bare endpoint (parse JSON only): best {bare_best:9,.0f}  median {bare_med:9,.0f} dossiers/s")
    print(f"  mock portal (validate + store):  best {mock_best:9,.0f}  median {mock_med:9,.0f} dossiers/s")
    mock_per_cpu = statistics.median(mock_cpu) if mock_cpu else 0.0
    if bare_cpu and mock_cpu:
        bare_per_cpu = statistics.median(bare_cpu)
        print(
            f"  per second of server CPU:        bare {bare_per_cpu:9,.0f}  "
            f"mock {mock_per_cpu:9,.0f} dossiers/s (median; one core's capacity), "
            f"ratio {mock_per_cpu / bare_per_cpu:.2f}"
        )
    ratio = mock_best / bare_best
    print(
        f"  ratio mock / bare (best): {ratio:.2f} (target >= 0.4: {'met' if ratio >= 0.4 else 'NOT met'})"
        f"   per CPU second >= 20,000: {'met' if mock_per_cpu >= 20_000 else 'NOT met'}"
        f"   wall >= 20,000/s: {'met' if mock_best >= 20_000 else 'NOT met'}"
    )
    print(f"  load average (1/5/15 min): start {load_start}, end {load_end}")
    print(f"  stored {stored} dossiers of {sent} sent, {refused} refused")
    return 0 if refused == 0 and stored == sent else 1


if __name__ == "__main__":
    sys.exit(main())
