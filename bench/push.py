"""Push throughput, end to end, against baselines measured in the same run.

  adapter   `dvcsync sync push` (its own process) on a fresh state store: read, map, enqueue,
            deliver. Records are dossiers (DongBoHoSoMC + their history) and portal-submitted
            dossiers (a DongBoTrangThaiHoSo status report each, one object per call).
  (i)  bare  an httpx loop posting exactly the bodies the adapter sends (made by its own
             map_record), with the same concurrency and no state: the transport's limit here.
  (i') bare+reads  the same with a TraCuuHoSo of every record first: the calls the adapter makes
             on a fresh state, where every dossier is met for the first time and read back;
  (iii) known  the adapter again on a state that has met every record (``dvcsync adopt`` first,
             not timed) and a portal lacking them: no read-back, the bare loop's calls; what
             every push after a province's first costs.
  (ii) naive what deployed one-stop systems do: read a dossier, map it, TraCuuHoSo, push it
             alone, then its history; sequentially (measured on a subset).
  ceiling    (i) again with the mock's largest history batch (100 entries a call): the most any
             httpx client pushes through this mock on this machine.
Then the same with portal latency injected, a cycle with nothing changed, and the adapter's peak
memory. The mock runs in its own process and knows the sample's portal-submitted dossiers. Each
measurement runs --runs times (default 3), the median kept, with the load average printed at the
start and end and beside each run (``bench/_runs.py``). Usage:

  .venv/bin/python -P bench/push.py [--dossiers 100000] [--latency-ms 5,10,20,100] [--naive 2000]
                                   [--profile sample|opencps] [--runs 3] [--py-spy DIR]

--profile opencps runs the same on an OpenCPS v2 database (``dvcsync sample-db --profile opencps``)
with the shipped ``mappings/opencps``; the quiet cycle at scale (state filled by SQL over the
sample's own tables) is the sample's only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

sys.path.append(str(Path(__file__).resolve().parents[1]))  # `-P` leaves the repository off the path
from bench._runs import Load, add_runs_option, median, median_runs, spread
from dvcsync._resources import PROFILES
from dvcsync.config import Settings
from dvcsync.demo import seed_portal_side
from dvcsync.mapping import load_mappings
from dvcsync.province.sample import generate as generate_sample
from dvcsync.province.sample.opencps import generate as generate_opencps
from dvcsync.province.source import make_engine
from dvcsync.sync.push import PushJob
from mock_portal.testing import RunningMock, run_mock_process

REPO = Path(__file__).resolve().parents[1]
BATCH, CONCURRENCY = 100, 8
STEPS_PER_CALL = 10  # --history-batch
PROFILE = "sample"  # --profile
MAPPINGS = REPO / "mappings"  # the profile's shipped mappings
PY_SPY: str | None = None  # --py-spy DIR


def generate(db: Path, dossiers: int, seed: int) -> None:
    """The profile's database (the sample's one-stop schema, or OpenCPS v2)."""
    if PROFILE == "opencps":
        generate_opencps(db, dossiers, seed)
    else:
        generate_sample(db, dossiers, seed)


@dataclass
class Prepared:
    """What the adapter sends for a sample, made by the adapter's own mapping code."""

    dossiers: list[dict[str, Any]] = field(default_factory=list)  # DongBoHoSoMC items
    histories: list[list[dict[str, Any]]] = field(default_factory=list)  # their CapNhatTienDo entries
    statuses: list[dict[str, Any]] = field(default_factory=list)  # DongBoTrangThaiHoSo of portal dossiers
    keys: list[str] = field(default_factory=list)  # every record sent: what first contact reads back

    @property
    def records(self) -> int:
        return len(self.dossiers) + len(self.statuses)


def mapper(db: Path) -> tuple[PushJob, Engine]:
    """A push job used only for its ``map_record``: the bodies are the adapter's, byte for byte."""
    settings = Settings.load(
        None,
        province={"source_url": f"sqlite:///{db}", "mappings": str(MAPPINGS)},
        portal={"adapter_url": "http://127.0.0.1:9/unused"},
        state={"url": "sqlite://"},
    )
    engine = make_engine(settings.province.source_url)
    unused: Any = None  # no state, no client: map_record needs neither
    return PushJob(settings, load_mappings(MAPPINGS), unused, unused, engine), engine


def prepare(db: Path) -> Prepared:
    job, engine = mapper(db)
    out = Prepared()
    for page in job.source.iter_pages(1000):
        for record in page:
            mapped = job.map_record(record)
            if mapped.dossier is None:
                continue  # quarantined: nobody sends it
            out.keys.append(mapped.record_key)
            if mapped.kind == "status":
                out.statuses.append(mapped.dossier)
            else:
                out.dossiers.append(mapped.dossier)
                out.histories.append([entry for _, entry in mapped.steps])
    engine.dispose()
    return out


def bodies(prepared: Prepared, per_call: int) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = [
        ("DongBoHoSoMC", {"isUpdating": "False", "data": prepared.dossiers[i : i + BATCH]})
        for i in range(0, len(prepared.dossiers), BATCH)
    ]
    call: list[dict[str, Any]] = []
    for history in prepared.histories:
        if call and len(call) + len(history) > per_call:
            out.append(("CapNhatTienDoHoSoMC", {"data": call}))
            call = []
        call.extend(history)
    if call:
        out.append(("CapNhatTienDoHoSoMC", {"data": call}))
    out.extend(("DongBoTrangThaiHoSo", {"type": "2", "data": status}) for status in prepared.statuses)
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
    dossier_calls = [b for b in prepared if b[0] != "CapNhatTienDoHoSoMC"]
    history_calls = [b for b in prepared if b[0] == "CapNhatTienDoHoSoMC"]

    async def one(service: str, body: dict[str, Any]) -> None:
        async with semaphore:
            reply = await bare.post(service, body)
            assert str(reply.get("error_code")) == "0", (service, reply)

    start = time.perf_counter()
    await asyncio.gather(*(one(s, b) for s, b in dossier_calls))  # dossiers before their history
    await asyncio.gather(*(one(s, b) for s, b in history_calls))
    elapsed = time.perf_counter() - start
    await bare.client.aclose()
    return elapsed


async def naive(mock: RunningMock, db: Path, limit: int) -> tuple[int, float]:
    """Deployed one-stop systems: read a dossier, map it, look it up, push it alone, then its
    history; a portal-submitted dossier gets its status report. Returns (records sent, seconds)."""
    job, engine = mapper(db)
    bare = Bare(mock)
    await bare.login()
    sent = 0
    start = time.perf_counter()
    for page in job.source.iter_pages(50):
        for record in page:
            mapped = job.map_record(record)
            if mapped.dossier is None:
                continue
            if mapped.kind == "status":
                await bare.post("DongBoTrangThaiHoSo", {"type": "2", "data": mapped.dossier})
            else:
                found = await bare.post("TraCuuHoSo", {"mahoso": mapped.record_key})
                updating = "True" if found.get("result") else "False"
                await bare.post("DongBoHoSoMC", {"isUpdating": updating, "data": [mapped.dossier]})
                if mapped.steps:
                    await bare.post("CapNhatTienDoHoSoMC", {"data": [entry for _, entry in mapped.steps]})
            sent += 1
            if sent >= limit:
                break
        if sent >= limit:
            break
    elapsed = time.perf_counter() - start
    await bare.client.aclose()
    engine.dispose()
    return sent, elapsed


def _config(mock: RunningMock, db: Path, state: Path) -> Path:
    config = state.with_suffix(".toml")
    config.write_text(
        f'[province]\nsource_url = "sqlite:///{db}"\nmappings = "{MAPPINGS}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\nbatch_size = {BATCH}\nconcurrency = {CONCURRENCY}\n'
        f"rate_limit = 100000\ntimeout = 60\nhistory_batch_size = {STEPS_PER_CALL}\n"
        f'[state]\nurl = "sqlite:///{state}"\n',
        encoding="utf-8",
    )
    return config


def adapter_adopt(mock: RunningMock, db: Path, state: Path) -> dict[str, Any]:
    """``dvcsync adopt`` on a new state: every record read back once, nothing written. The push
    after it is the steady state's (every push after a province's first): it sends without
    reading back, the same calls as the bare loop."""
    config = _config(mock, db, state)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    done = subprocess.run(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), "adopt", "--json"],
        check=False,
        capture_output=True,
        env=env,
        cwd=REPO,
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr.decode())
    text = done.stdout.decode()
    found: dict[str, Any] = json.JSONDecoder().raw_decode(text[text.index("{") :])[0]
    return found


def adapter_push(mock: RunningMock, db: Path, state: Path) -> dict[str, Any]:
    config = _config(mock, db, state)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    if not state.exists():  # a push never creates its state: a new province starts one this way
        subprocess.run(
            [sys.executable, "-m", "dvcsync.cli", "--config", str(config), "db", "upgrade"],
            check=True,
            capture_output=True,
            env=env,
            cwd=REPO,
        )
    command = [sys.executable, "-m", "dvcsync.cli", "--config", str(config), "sync", "push", "--json"]
    if PY_SPY:  # each process's CPU, the forked producer's included (--subprocesses)
        out = Path(PY_SPY) / f"{state.stem}-{int(time.time())}.txt"
        command = ["py-spy", "record", "--subprocesses", "--format", "raw", "-o", str(out), "--", *command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    # Peak RSS from /proc while it runs: getrusage(RUSAGE_CHILDREN) would also count the forked
    # copy of this (large) benchmark process before exec. The enqueue producer's peak is added
    # to the cycle's (an over-count: the pages they share after the fork are counted twice).
    # PSS (each shared page split between its sharers) is sampled too: the sum of the peaks
    # over-counts, the peak of the sampled PSS sum may miss a spike between two samples.
    peaks: dict[int, int] = {}
    peak_pss_kb = 0
    while proc.poll() is None:
        pids = (proc.pid, *_children(proc.pid))
        for pid in pids:
            peaks[pid] = max(peaks.get(pid, 0), _vm_hwm_kb(pid))
        peak_pss_kb = max(peak_pss_kb, sum(_status_kb(pid, "Pss:", "smaps_rollup") for pid in pids))
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the cycle and its producer, reaped
    cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if proc.returncode not in (0, 1):
        raise RuntimeError(stderr.decode())
    text = stdout.decode()  # py-spy's own lines around the summary, if it ran
    summary: dict[str, Any] = json.JSONDecoder().raw_decode(text[text.index("{") :])[0]
    summary["cpu_s"] = cpu_s
    summary["peak_rss_mb"] = sum(peaks.values()) / 1024
    summary["peaks_mb"] = [round(kb / 1024) for kb in peaks.values()]  # the cycle first, then its producer
    summary["peak_pss_mb"] = peak_pss_kb / 1024
    summary["processes"] = len(peaks)
    return summary


def _proc_cpu(pid: int) -> float:
    """CPU seconds a running process has used (user + system)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _vm_hwm_kb(pid: int) -> int:
    return _status_kb(pid, "VmHWM:", "status")


def _status_kb(pid: int, field: str, file: str) -> int:
    try:
        with open(f"/proc/{pid}/{file}", encoding="ascii") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def quiet_cycle_at_scale(work: Path, mock: RunningMock, synced: int) -> float:
    """Seconds of a push cycle with nothing changed over ``synced`` already-synced dossiers.

    The province table and the state (sync records, done outbox entries, cursor) are filled with
    SQL rather than by pushing a million dossiers: what is measured is the cycle's fixed cost."""
    import sqlite3

    from dvcsync.config import Settings
    from dvcsync.portal import PortalClient, make_http_client
    from dvcsync.province.sample.schema import DDL
    from dvcsync.province.source import make_engine
    from dvcsync.state import StateStore
    from dvcsync.sync.push import CURSOR, PushJob

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
        province={"source_url": f"sqlite:///{db}", "mappings": str(MAPPINGS)},
        portal={"adapter_url": mock.adapter_url},
        state={"url": f"sqlite:///{state}"},
    )

    async def cycle() -> float:
        client = PortalClient(settings.portal, make_http_client(settings.portal))
        source = make_engine(settings.province.source_url)
        job = PushJob(settings, load_mappings(MAPPINGS), store, client, source)
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


def reset(mock: RunningMock, db: Path) -> None:
    """An empty portal that knows the sample's portal-submitted dossiers (as a real one would)."""
    httpx.post(f"{mock.url}/_admin/reset", timeout=60).raise_for_status()
    seed_portal_side(mock.url, f"sqlite:///{db}", load_mappings(MAPPINGS))


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dossiers", type=int, default=100_000)
    parser.add_argument(
        "--latency-ms", default="5,10,20,100", help="portal latencies to compare at (the target is at 20)"
    )
    parser.add_argument("--naive", type=int, default=2000, help="records for the naive baseline")
    parser.add_argument("--latency-dossiers", type=int, default=3000)
    parser.add_argument("--history-batch", type=int, default=10, help="history entries per call")
    parser.add_argument(
        "--ceiling-batch",
        type=int,
        default=100,
        help="history entries per call of the ceiling run (the mock's batch limit); 0 skips it",
    )
    parser.add_argument("--quiet-sizes", default="100000,1000000", help="synced sizes for the quiet cycle")
    parser.add_argument("--profile", choices=PROFILES, default="sample", help="whose database and mappings")
    parser.add_argument(
        "--py-spy", metavar="DIR", help="record each adapter process with py-spy (on PATH) into DIR"
    )
    add_runs_option(parser)
    return parser.parse_args()


def main() -> None:
    args = options()
    global STEPS_PER_CALL, PROFILE, MAPPINGS, PY_SPY
    STEPS_PER_CALL, PROFILE, PY_SPY = args.history_batch, args.profile, args.py_spy
    MAPPINGS = REPO / "mappings" if PROFILE == "sample" else REPO / "mappings" / PROFILE
    if PROFILE != "sample":
        args.quiet_sizes = ""  # fills the sample's own tables by SQL
    load = Load("bench/push.py")
    print(f"profile: {PROFILE} ({MAPPINGS.relative_to(REPO)}); {args.runs} run(s), medians kept")
    print(f"history entries per call: {STEPS_PER_CALL}, dossiers per call: {BATCH}, in flight: {CONCURRENCY}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        throughput(args, work)
        if args.quiet_sizes:
            with run_mock_process() as mock:
                for size in (int(x) for x in args.quiet_sizes.split(",") if x):
                    print(
                        f"  no-change cycle over {size:,} synced (state filled by SQL): "
                        f"{quiet_cycle_at_scale(work, mock, size):.3f}s (target < 0.5 s)"
                    )
        with_latency(args, work)
    load.finish()


def throughput(args: argparse.Namespace, work: Path) -> None:
    """Adapter, bare loop, naive sync and ceiling, each run ``--runs`` times on the same data."""
    db = work / "onestop.db"
    generate(db, args.dossiers, 42)
    prepared = prepare(db)
    calls = bodies(prepared, STEPS_PER_CALL)
    n = prepared.records
    steps = sum(len(h) for h in prepared.histories)
    print(
        f"{args.dossiers:,} generated: {len(prepared.dossiers):,} dossiers with {steps:,} history "
        f"entries + {len(prepared.statuses):,} portal-submitted (status reports) = {n:,} records, "
        f"{len(calls):,} calls"
    )
    ceiling_calls = bodies(prepared, args.ceiling_batch) if args.ceiling_batch else []
    reads: list[tuple[str, dict[str, Any]]] = [("TraCuuHoSo", {"mahoso": k}) for k in prepared.keys]

    def measure(run: int) -> dict[str, float]:
        with run_mock_process(state=str(work / f"mock-{run}.db")) as mock:
            assert mock.process is not None
            pid = mock.process.pid
            reset(mock, db)
            cpu, mock_cpu = time.process_time(), _proc_cpu(pid)
            bare_s = asyncio.run(bare_loop(mock, calls))
            figures = {"bare": n / bare_s, "bare_cpu_ms": (time.process_time() - cpu) * 1000 / n}
            figures["bare_mock_cpu_ms"] = (_proc_cpu(pid) - mock_cpu) * 1000 / n
            # the same calls as the adapter's on a fresh state: first a TraCuuHoSo of every record
            reset(mock, db)
            figures["bare_reads"] = n / asyncio.run(bare_loop(mock, reads + calls))
            if ceiling_calls:
                reset(mock, db)
                figures["ceiling"] = n / asyncio.run(bare_loop(mock, ceiling_calls))
            reset(mock, db)
            naive_n, naive_s = asyncio.run(naive(mock, db, args.naive))
            figures["naive"] = naive_n / naive_s
            reset(mock, db)
            state = work / f"state-{run}.db"
            mock_cpu = _proc_cpu(pid)
            pushed = adapter_push(mock, db, state)
            figures["adapter_mock_cpu_ms"] = (_proc_cpu(pid) - mock_cpu) * 1000 / n
            quiet = adapter_push(mock, db, state)
            # (iii) a state that has met every record (read back by `dvcsync adopt` first, not
            # timed), pushing to a portal that lacks them: no read-back, the bare loop's calls
            reset(mock, db)
            known_state = work / f"state-known-{run}.db"
            adapter_adopt(mock, db, known_state)
            known = adapter_push(mock, db, known_state)
        # a status the portal already holds (read back on first contact) needs no report
        same = pushed.get("first_contact", {}).get("status_same", 0)
        sent = pushed["dossiers_pushed"] + pushed["statuses_reported"] + same
        assert sent == n and pushed["dead"] == 0, f"the adapter sent {sent} of {n}: {pushed}"
        figures["adapter"] = n / pushed["elapsed_s"]
        known_sent = known["dossiers_pushed"] + known["statuses_reported"]
        assert known["dossiers_pushed"] == len(prepared.dossiers) and known["dead"] == 0, known
        assert known.get("first_contact", {}).get("read", 0) == 0, "the known state read back"
        figures["adapter_known"] = known_sent / known["elapsed_s"]
        figures["known_cpu_ms"] = known["cpu_s"] * 1000 / n  # (iii): its cycle and producer
        figures["ratio_known"] = figures["adapter_known"] / figures["bare"]
        figures["ratio"] = figures["adapter"] / figures["bare"]
        figures["ratio_reads"] = figures["adapter"] / figures["bare_reads"]
        figures["adapter_cpu_ms"] = pushed["cpu_s"] * 1000 / n
        figures["quiet_s"] = quiet["elapsed_s"]
        figures["rss_mb"], figures["pss_mb"] = pushed["peak_rss_mb"], pushed["peak_pss_mb"]
        figures["processes"] = pushed["processes"]
        figures["cycle_mb"] = pushed["peaks_mb"][0] if pushed["peaks_mb"] else 0
        figures["producer_mb"] = sum(pushed["peaks_mb"][1:])
        return figures

    values = median_runs(args.runs, measure)
    m = {key: median(v) for key, v in values.items()}
    print(f"medians of {len(values['bare'])} run(s) (each run's values in brackets):")
    for key, name in (
        ("adapter", "adapter (dvcsync sync push)"),
        ("bare", "(i)  bare httpx loop, same bodies"),
        ("bare_reads", "(i') bare loop, + a TraCuuHoSo a record"),
        ("naive", "(ii) naive: read, map, TraCuuHoSo, push"),
    ):
        print(f"  {name:40s} {m[key]:9,.0f} records/s  [{spread(values[key])}]")
    print(
        f"  adapter / bare  = {m['ratio']:.2f}x [{spread(values['ratio'], 2)}]"
        f" (goal >= 0.8: {'met' if m['ratio'] >= 0.8 else 'NOT met'})"
    )
    print(
        f"  adapter / bare with the same reads = {m['ratio_reads']:.2f}x [{spread(values['ratio_reads'], 2)}]"
        " (the calls the adapter makes on a fresh state: a first-contact read-back per record)"
    )
    print(
        f"  (iii) adapter on a state that has met its records (after `dvcsync adopt`: no read-back)"
        f" {m['adapter_known']:,.0f} records/s [{spread(values['adapter_known'])}]"
        f" = {m['ratio_known']:.2f}x bare [{spread(values['ratio_known'], 2)}]"
        f" (goal >= 0.8: {'met' if m['ratio_known'] >= 0.8 else 'NOT met'})"
    )
    print(f"  adapter / naive = {m['adapter'] / m['naive']:.1f}x (loopback)")
    if "ceiling" in m:
        print(
            f"  ceiling: bare loop, {args.ceiling_batch} history entries a call,"
            f" {m['ceiling']:,.0f} records/s"
            f" = {m['ceiling'] / m['naive']:.1f}x naive (no httpx client does better here)"
        )
    print(
        f"  CPU a record (ms): adapter's processes {m['adapter_cpu_ms']:.2f}"
        f" [{spread(values['adapter_cpu_ms'], 2)}],"
        f" the mock meanwhile {m['adapter_mock_cpu_ms']:.2f}; bare loop {m['bare_cpu_ms']:.2f}"
        f" [{spread(values['bare_cpu_ms'], 2)}], the mock meanwhile {m['bare_mock_cpu_ms']:.2f};"
        f" (iii) on a state that met them {m['known_cpu_ms']:.2f} [{spread(values['known_cpu_ms'], 2)}]"
    )
    print(f"  no-change cycle over {n:,} synced: {m['quiet_s']:.3f}s (target < 0.5 s)")
    print(
        f"  adapter peak memory (goal < 300 MB): {m['rss_mb']:.0f} MB RSS summed over"
        f" {m['processes']:.0f} process(es) [{spread(values['rss_mb'])}],"
        f" {m['pss_mb']:.0f} MB PSS (shared pages split) [{spread(values['pss_mb'])}]"
        f": {'met' if m['rss_mb'] < 300 else 'NOT met'}; the cycle's own peak {m['cycle_mb']:.0f} MB,"
        f" its producer's {m['producer_mb']:.0f} MB"
    )


def with_latency(args: argparse.Namespace, work: Path) -> None:
    """Where the sequential naive sync pays a round trip per call."""
    lat_n = min(args.latency_dossiers, args.dossiers)
    lat_db = work / "latency.db"
    generate(lat_db, lat_n, 43)
    lat_records = prepare(lat_db).records
    for latency in (float(x) for x in args.latency_ms.split(",") if x):

        def measure(run: int, latency: float = latency) -> dict[str, float]:
            with run_mock_process() as mock:
                faults = {"seed": 1, "rules": [{"service": "*", "latency_ms": latency}]}
                httpx.put(f"{mock.url}/_admin/faults", json=faults, timeout=30).raise_for_status()
                reset(mock, lat_db)
                naive_n, naive_s = asyncio.run(naive(mock, lat_db, max(30, int(3000 / (latency + 1)))))
                reset(mock, lat_db)
                lat_push = adapter_push(mock, lat_db, work / f"latency-{latency:g}-{run}.db")
                reset(mock, lat_db)  # (iii): a state that has met every record, as in `throughput`
                known_state = work / f"latency-known-{latency:g}-{run}.db"
                adapter_adopt(mock, lat_db, known_state)
                known = adapter_push(mock, lat_db, known_state)
            return {
                "adapter": lat_records / lat_push["elapsed_s"],
                "known": (known["dossiers_pushed"] + known["statuses_reported"]) / known["elapsed_s"],
                "naive": naive_n / naive_s,
            }

        values = median_runs(args.runs, measure)
        for key, what in (("adapter", "adapter (fresh state)"), ("known", "adapter (state that met them)")):
            ratios = [a / b for a, b in zip(values[key], values["naive"], strict=True)]
            ratio = median(ratios)
            goal = f" (goal >= 20: {'met' if ratio >= 20 else 'NOT met'})" if latency == 20 else ""
            print(
                f"with {latency:g} ms latency: {what} {median(values[key]):,.0f} records/s, naive "
                f"{median(values['naive']):,.1f} records/s = {ratio:.1f}x [{spread(ratios, 1)}]{goal}"
            )


if __name__ == "__main__":
    main()
