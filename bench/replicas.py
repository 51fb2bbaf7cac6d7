"""Replicas on PostgreSQL (issue 13), against baselines measured in the same run, at each portal
latency injected by the mock (its own process):

  (a) the same backlog (an outbox filled in advance, as after an outage) delivered by one
      `dvcsync sync push` process, then by three started at once on the same PostgreSQL state;
      beside it, one and three bare loops (one process each): what the machine itself allows;
  (b) one replica on a SQLite state against one on PostgreSQL, same settings;
  (c) calls per record before and after cross-dossier history batches: `[portal]
      history_batch_size` 1 (one outbox entry, i.e. one dossier's ≤ 10 entries, a call: the
      "before") against 10 and 50 (entries of several dossiers a call);
  (d) one replica against the bare loop (`bench/push.py`: an httpx loop posting the same bodies
      with the same concurrency, no state).

A replica is made latency-bound on purpose: few calls in flight, small batches, no rate limit to
speak of; with c calls in flight and a latency of L, no client passes c / L calls a second. Every
process's CPU seconds (replicas, bare loops, the mock, PostgreSQL) and the machine's busy share
are printed beside the times, so a ratio that misses its goal says whether the cores were the
limit. PostgreSQL is a throwaway server (tests/postgres.py, fsync off). A "before" series runs
another commit's adapter: `git archive <rev> | tar -x -C DIR`, then `PYTHONPATH=DIR` in front of
the command below (the backlog's state and the replicas are then that commit's). Usage:

  .venv/bin/python -P bench/replicas.py [--quick] [--dossiers 2000] [--latency-ms 20,50]
      [--concurrency 2] [--batch 10] [--history-batch 10] [--runs 3] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import pstats
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

REPO = Path(__file__).resolve().parents[1]
# `-P` leaves the repository off the path (bench.push, tests.postgres); appended, so that a
# PYTHONPATH naming another checkout's adapter (a "before" run) still comes first.
sys.path.append(str(REPO))

from bench import push as push_bench  # noqa: E402
from bench.push import Prepared, bare_loop, bodies, prepare, reset  # noqa: E402
from dvcsync.config import Settings  # noqa: E402
from dvcsync.mapping import load_mappings  # noqa: E402
from dvcsync.province.sample import generate  # noqa: E402
from dvcsync.province.source import make_engine  # noqa: E402
from dvcsync.state import StateStore  # noqa: E402
from dvcsync.state.store import STEPS_PER_CALL  # noqa: E402
from dvcsync.sync.push import PushJob, local_iso  # noqa: E402
from mock_portal.testing import RunningMock, run_mock_process  # noqa: E402

HISTORY = "CapNhatTienDoHoSoMC"
SAMPLE_S = 0.25  # how often the mock's call counts are read while replicas run
TICK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- CPU accounting


def _proc_cpu(pid: int, *, children: bool = True) -> float:
    """CPU seconds of a process (its reaped children included: PostgreSQL's ended backends)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    used = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return used / TICK


def _tree_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    return _proc_cpu(pid) + sum(_proc_cpu(child) for child in push_bench._children(pid))


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot: busy excludes idle and iowait."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(x) for x in stat.readline().split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


def _postmaster(port: int) -> int | None:
    """The PostgreSQL server's main process, found by its port on the command line."""
    wanted = f"-p\0{port}\0".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if wanted in cmdline and cmdline.split(b"\0", 1)[0].endswith(b"postgres"):
                return int(entry.name)
    return None


@dataclass
class Meter:
    """CPU of the mock and PostgreSQL, and the machine's busy share, over one measured run."""

    mock_pid: int | None
    pg_pid: int | None
    start: tuple[float, float, int, int] = (0.0, 0.0, 0, 0)

    def __enter__(self) -> Meter:
        self.start = (_tree_cpu(self.mock_pid), _tree_cpu(self.pg_pid), *_machine_ticks())
        return self

    def __exit__(self, *_: object) -> None:
        busy, total = _machine_ticks()
        mock0, pg0, busy0, total0 = self.start
        self.mock_s = _tree_cpu(self.mock_pid) - mock0
        self.pg_s = _tree_cpu(self.pg_pid) - pg0
        self.busy = (busy - busy0) / max(total - total0, 1)  # share of all cores

    def run(self, label: str, records: int, wall_s: float, calls: dict[str, int]) -> Run:
        return Run(label, records, wall_s, self.mock_s, self.pg_s, self.busy, calls)


# ---------------------------------------------------------------- runs


@dataclass
class Run:
    label: str
    records: int
    wall_s: float
    mock_cpu_s: float = 0.0
    pg_cpu_s: float = 0.0
    busy: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    exits: list[int] = field(default_factory=list)
    cycles_s: list[float] = field(default_factory=list)  # each process's own time, start-up excluded
    per_process_cpu_s: list[float] = field(default_factory=list)  # replicas or bare loops
    ended_s: list[float] = field(default_factory=list)  # when each process ended, from the start
    samples: list[tuple[float, int]] = field(default_factory=list)  # (time, calls answered so far)
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Records a second from the first process's start to the last one's exit."""
        return self.records / self.wall_s

    @property
    def span_s(self) -> float:
        """From the first process's cycle start to the last one's exit: the interpreter's start-up
        (~1 s of CPU a replica, paid once by a long-running `dvcsync run`) left out, as the bare
        loop's own clock leaves it out; the later replicas' start-up is still counted."""
        if not self.cycles_s:
            return self.wall_s
        if len(self.ended_s) != len(self.cycles_s):
            return max(self.cycles_s)  # bare loops: forked at once, each timing itself
        return max(self.ended_s) - min(e - c for e, c in zip(self.ended_s, self.cycles_s, strict=True))

    @property
    def steady(self) -> tuple[float, float]:
        """(calls a second, seconds) while every process was delivering: from the last one's
        cycle start to the first one's exit, counted by the mock. Neither the start-up nor the
        end of the backlog (one replica finishing what it claimed while the others have left)."""
        if not self.samples or len(self.ended_s) != len(self.cycles_s) or not self.cycles_s:
            return self.total_calls / self.span_s, self.span_s  # bare loops: all start and end together
        first = max(e - c for e, c in zip(self.ended_s, self.cycles_s, strict=True))
        last = min(self.ended_s)
        if last - first < 4 * SAMPLE_S:
            return 0.0, 0.0
        return (_at(self.samples, last) - _at(self.samples, first)) / (last - first), last - first

    @property
    def cycle_rate(self) -> float:
        return self.records / self.span_s

    @property
    def cpu_ms(self) -> float:
        """CPU milliseconds a record of the senders (replicas or bare loops), start-up included."""
        return 1000 * sum(self.per_process_cpu_s) / self.records

    @property
    def cores(self) -> float:
        """Cores kept busy by the senders, the mock and PostgreSQL together, from start to exit."""
        return (sum(self.per_process_cpu_s) + self.mock_cpu_s + self.pg_cpu_s) / self.wall_s

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def line(self) -> str:
        own = "/".join(f"{c:.1f}" for c in self.cycles_s)
        exits = f", exit {'/'.join(str(e) for e in self.exits)}" if self.exits else ""
        per = "+".join(f"{c:.1f}" for c in self.per_process_cpu_s)
        ended = f", ended at {'/'.join(f'{e:.1f}' for e in self.ended_s)} s" if len(self.ended_s) > 1 else ""
        return "\n".join(
            [
                f"  {self.label:<34} {self.rate:6,.1f} records/s ({self.wall_s:.1f} s from start to exit);"
                f" {self.cycle_rate:6,.1f} delivering ({self.span_s:.1f} s; cycles {own} s){exits}{ended}",
                f"  {'':<34} {self.steady[0]:6,.1f} calls/s while all delivered ({self.steady[1]:.1f} s)",
                f"  {'':<34} CPU s: {per} (its processes), mock {self.mock_cpu_s:.1f}, PostgreSQL"
                f" {self.pg_cpu_s:.1f}: {self.cores:.2f} cores; machine {self.busy:.0%} busy of"
                f" {os.cpu_count()}; {self.total_calls:,} calls",
                *(f"  {'':<34} !! {p}" for p in self.problems),
            ]
        )


def _at(samples: list[tuple[float, int]], moment: float) -> float:
    """The sampled count at ``moment``, linearly between the samples around it."""
    for (t0, c0), (t1, c1) in pairwise(samples):
        if t0 <= moment <= t1:
            return c0 + (c1 - c0) * (moment - t0) / (t1 - t0) if t1 > t0 else c1
    return float(samples[-1][1] if moment > samples[-1][0] else samples[0][1])


@dataclass
class Backlog:
    """A sample, what the adapter sends for it, and a state with all of it enqueued."""

    db: Path
    prepared: Prepared
    sqlite_state: Path
    pg_template: str | None

    @property
    def records(self) -> int:
        return self.prepared.records

    @property
    def steps(self) -> int:
        return sum(len(h) for h in self.prepared.histories)


def _settings(db: Path, state_url: str) -> Settings:
    return Settings.load(
        None,
        province={"source_url": f"sqlite:///{db}", "mappings": str(REPO / "mappings")},
        portal={"adapter_url": "http://127.0.0.1:9/unused"},
        state={"url": state_url},
    )


def enqueue_backlog(db: Path, state_url: str) -> float:
    """Fill the state's outbox with the whole sample (the enqueue half of a push, no portal):
    every replica then only delivers. Returns the seconds it took."""
    settings = _settings(db, state_url)
    store = StateStore(state_url)
    store.prepare()
    source = make_engine(settings.province.source_url)
    unused: Any = None  # enqueueing needs no portal client
    job = PushJob(settings, load_mappings(REPO / "mappings"), store, unused, source)
    start = time.perf_counter()
    job.enqueue(until=local_iso(time.time()))
    elapsed = time.perf_counter() - start
    source.dispose()
    store.close()
    return elapsed


def _admin_engine(server: str) -> Any:
    return create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT", poolclass=NullPool)


def pg_copy(server: str, template: str, name: str) -> str:
    """A fresh database cloned from the backlog's (CREATE DATABASE … TEMPLATE): same state each run."""
    engine = _admin_engine(server)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    engine.dispose()
    return f"{server}/{name}"


def sqlite_copy(source: Path, target: Path) -> str:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{target}"


def write_config(
    path: Path, mock: RunningMock, db: Path, state_url: str, args: argparse.Namespace, history_batch: int
) -> Path:
    path.write_text(
        f'[province]\nsource_url = "sqlite:///{db}"\nmappings = "{REPO / "mappings"}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\nbatch_size = {args.batch}\n'
        f"concurrency = {args.concurrency}\nrate_limit = 100000\ntimeout = 60\n"
        f"history_batch_size = {history_batch}\n"
        f'[state]\nurl = "{state_url}"\n',
        encoding="utf-8",
    )
    return path


def mock_calls(mock: RunningMock) -> dict[str, int]:
    """Successful calls per service since the last reset, from the mock's own counters."""
    services = httpx.get(f"{mock.url}/_admin/stats", timeout=30).json()["services"]
    return {name: int(outcomes.get("ok", 0)) for name, outcomes in services.items() if name != "auth"}


def mock_stored(mock: RunningMock) -> tuple[int, int]:
    """(dossiers, history entries) the mock holds."""
    dossiers = history = 0
    page = 1
    while True:
        params = {"page": page, "size": 1000}
        body = httpx.get(f"{mock.url}/_admin/dossiers", params=params, timeout=60).json()
        dossiers += len(body["items"])
        history += sum(int(item["history"]) for item in body["items"])
        if page * body["size"] >= body["total"]:
            return dossiers, history
        page += 1


def fresh_portal(mock: RunningMock, backlog: Backlog) -> int:
    """An empty portal that knows the sample's portal-submitted dossiers; how many dossiers it holds."""
    reset(mock, backlog.db)
    return mock_stored(mock)[0]


def check(run: Run, mock: RunningMock, backlog: Backlog, held_before: int) -> None:
    """Every dossier and history entry arrived, none twice: the mock's own store says so (an
    entry appended twice would be counted twice), not only the senders' summaries."""
    dossiers, history = mock_stored(mock)
    if dossiers - held_before != len(backlog.prepared.dossiers) or history != backlog.steps:
        run.problems.append(
            f"the mock holds {dossiers - held_before:,} new dossiers and {history:,} history entries;"
            f" {len(backlog.prepared.dossiers):,} and {backlog.steps:,} expected"
        )


def _pid(mock: RunningMock) -> int | None:
    return mock.process.pid if mock.process is not None else None


def run_replicas(
    label: str,
    mock: RunningMock,
    backlog: Backlog,
    state_url: str,
    replicas: int,
    args: argparse.Namespace,
    work: Path,
    *,
    history_batch: int,
    pg_pid: int | None,
    profile: Path | None = None,
) -> Run:
    """``replicas`` `dvcsync sync push` processes started at once on one state; wall time from
    the first start to the last exit, each process's CPU from wait4 (its forks included)."""
    held = fresh_portal(mock, backlog)
    config = write_config(work / "replica.toml", mock, backlog.db, state_url, args, history_batch)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    prefix = [sys.executable, "-m", "cProfile", "-o", str(profile)] if profile else [sys.executable]
    argv = [*prefix, "-m", "dvcsync.cli", "--config", str(config), "sync", "push", "--json"]
    outs = [(work / f"out-{i}.json", work / f"err-{i}.log") for i in range(replicas)]
    with Meter(_pid(mock), pg_pid) as meter:
        start = time.perf_counter()
        procs = []
        for out, err in outs:
            with open(out, "wb") as stdout, open(err, "wb") as stderr:
                # cwd: not the repository, whose adapter `-m` would put first (see PYTHONPATH above)
                procs.append(subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env, cwd=work))
        cpu, ended, samples = wait_all(procs, start, lambda: sum(mock_calls(mock).values()))
        wall = max(ended)
    run = meter.run(label, backlog.records, wall, mock_calls(mock))
    run.exits, run.per_process_cpu_s, run.ended_s, run.samples = (
        [p.returncode for p in procs],
        cpu,
        ended,
        samples,
    )
    pushed = steps = 0
    for proc, (out, err) in zip(procs, outs, strict=True):
        text_out = out.read_text(encoding="utf-8").strip()
        if proc.returncode in (0, 1) and text_out:
            summary = json.loads(text_out)
            run.cycles_s.append(float(summary["elapsed_s"]))
            pushed += summary["dossiers_pushed"] + summary["statuses_reported"]
            steps += summary["steps_pushed"]
            if summary["dead"]:
                run.problems.append(f"{summary['dead']} dead letters")
        else:
            tail = err.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-2:]
            run.problems.append(f"exit {proc.returncode}: {' | '.join(tail)}")
    if pushed != backlog.records or steps != backlog.steps:
        run.problems.append(
            f"the replicas say they sent {pushed:,} of {backlog.records:,} records and {steps:,} of"
            f" {backlog.steps:,} history entries"
        )
    check(run, mock, backlog, held)
    return run


def wait_all(
    procs: list[subprocess.Popen[bytes]], start: float, count: Callable[[], int]
) -> tuple[list[float], list[float], list[tuple[float, int]]]:
    """Each process's CPU seconds (wait4: its forks included), when it ended (±20 ms), and the
    mock's count of answered calls every ``SAMPLE_S`` meanwhile."""
    cpu, ended = [0.0] * len(procs), [0.0] * len(procs)
    samples: list[tuple[float, int]] = []
    left = set(range(len(procs)))
    while left:
        now = time.perf_counter() - start
        if not samples or now - samples[-1][0] >= SAMPLE_S:
            samples.append((now, count()))
        for i in sorted(left):
            pid, status, usage = os.wait4(procs[i].pid, os.WNOHANG)
            if pid:
                procs[i].returncode = os.waitstatus_to_exitcode(status)
                cpu[i], ended[i] = usage.ru_utime + usage.ru_stime, time.perf_counter() - start
                left.discard(i)
        time.sleep(0.02)
    return cpu, ended, samples


def _bare_worker(mock: RunningMock, calls: list[tuple[str, dict[str, Any]]], out: Queue[Any]) -> None:
    elapsed = asyncio.run(bare_loop(mock, calls))
    usage = resource.getrusage(resource.RUSAGE_SELF)  # a forked child's counts start at the fork
    out.put((elapsed, usage.ru_utime + usage.ru_stime))


def split(prepared: Prepared, parts: int) -> list[Prepared]:
    """Every ``parts``-th dossier (with its history) and status report: one share per process."""
    return [
        Prepared(prepared.dossiers[k::parts], prepared.histories[k::parts], prepared.statuses[k::parts])
        for k in range(parts)
    ]


def chunked(prepared: Prepared) -> Prepared:
    """Histories cut into the outbox's pieces (≤ STEPS_PER_CALL entries of one dossier each), so
    the bare loop packs the same pieces the adapter packs."""
    pieces = [h[i : i + STEPS_PER_CALL] for h in prepared.histories for i in range(0, len(h), STEPS_PER_CALL)]
    return Prepared(prepared.dossiers, pieces, prepared.statuses)


def run_bare(
    label: str, mock: RunningMock, backlog: Backlog, processes: int, history_batch: int, pg_pid: int | None
) -> Run:
    """bench/push.py's bare loop in ``processes`` forked processes at once, each posting its share
    (its clock, like the replica's, starts after its process is up)."""
    held = fresh_portal(mock, backlog)
    shares = [bodies(chunked(part), history_batch) for part in split(backlog.prepared, processes)]
    context = multiprocessing.get_context("fork")
    queue: Queue[Any] = context.Queue()
    with Meter(_pid(mock), pg_pid) as meter:
        start = time.perf_counter()
        workers = [context.Process(target=_bare_worker, args=(mock, calls, queue)) for calls in shares]
        for worker in workers:
            worker.start()
        results = [queue.get(timeout=3600) for _ in workers]
        wall = time.perf_counter() - start
        for worker in workers:
            worker.join()
    run = meter.run(label, backlog.records, wall, mock_calls(mock))
    run.cycles_s, run.per_process_cpu_s = [e for e, _ in results], [c for _, c in results]
    check(run, mock, backlog, held)
    return run


# ---------------------------------------------------------------- the session


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines()
    model = next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "?")
    return (
        f"{platform.machine()}, {model}, {os.cpu_count()} cores, Python {platform.python_version()},"
        f" SQLite {sqlite3.sqlite_version}"
    )


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextmanager
def postgres() -> Iterator[str | None]:
    """tests/postgres.py's throwaway server, or None (said plainly) when PostgreSQL is absent."""
    import pytest

    from tests.postgres import postgres_server

    try:
        with postgres_server() as server:
            yield server
    except pytest.skip.Exception as exc:  # no server binaries
        print(f"PostgreSQL: {exc} — the PostgreSQL figures are left out")
        yield None


def ratio(a: float, b: float) -> str:
    """``n/a`` where a side has no figure (e.g. three replicas never all delivering at once for a
    second: a --quick backlog is too small for that)."""
    return f"{a / b:.2f}x" if a and b else "n/a"


def session(args: argparse.Namespace, work: Path, server: str | None) -> None:
    db = work / "onestop.db"
    generate(db, args.dossiers, 42)
    prepared = prepare(db)
    sqlite_state = work / "backlog.db"
    seconds = enqueue_backlog(db, f"sqlite:///{sqlite_state}")
    template = None
    pg_pid = None
    if server is not None:
        pg_pid = _postmaster(int(server.rsplit(":", 1)[1]))
        engine = _admin_engine(server)
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
            print(f"PostgreSQL {version} (a throwaway server: fsync off)")
            conn.execute(text('CREATE DATABASE "backlog"'))
        engine.dispose()
        template = "backlog"
        pg_seconds = enqueue_backlog(db, f"{server}/backlog")
        print(f"backlog enqueued in {seconds:.1f} s (SQLite), {pg_seconds:.1f} s (PostgreSQL)")
    backlog = Backlog(db, prepared, sqlite_state, template)
    print(
        f"{args.dossiers:,} generated: {len(prepared.dossiers):,} dossiers with {backlog.steps:,} history"
        f" entries + {len(prepared.statuses):,} status reports = {backlog.records:,} records"
    )
    print(
        f"per replica (latency-bound on purpose): [portal] concurrency = {args.concurrency},"
        f" batch_size = {args.batch} dossiers a call, history_batch_size = {args.history_batch},"
        f" rate_limit = 100000/s; the bare loops use the same concurrency and batches"
    )
    push_bench.CONCURRENCY = args.concurrency  # the bare loop's calls in flight …
    push_bench.BATCH = args.batch  # … and dossiers a call: the replica's own settings
    summary: list[str] = []
    for number, latency in enumerate(float(x) for x in args.latency_ms.split(",") if x):
        with run_mock_process() as mock:
            faults = {"seed": 1, "rules": [{"service": "*", "latency_ms": latency}]}
            httpx.put(f"{mock.url}/_admin/faults", json=faults, timeout=30).raise_for_status()
            cap = args.concurrency / (latency / 1000)
            print(
                f"\n== {latency:g} ms portal latency: one client passes ≤ {cap:,.0f} calls/s; load {load()}"
            )
            runs = at_latency(f"{latency:g}", mock, backlog, server, pg_pid, args, work)
            print(f"  load after: {load()}")
            summary.extend(report(latency, runs, backlog, args))
            if args.profile and server is not None and number == 0:
                profile(mock, backlog, server, args, work, pg_pid)
    print("\n".join(summary))


def at_latency(
    tag: str,
    mock: RunningMock,
    backlog: Backlog,
    server: str | None,
    pg_pid: int | None,
    args: argparse.Namespace,
    work: Path,
) -> dict[str, Run]:
    """Every run at the mock's current latency, each on a fresh copy of the backlog's state;
    with ``--runs``, the whole series again and the median of each kept (the machine is shared:
    a neighbour's burst should not decide a ratio, nor a lucky quiet moment)."""

    def state(name: str) -> str:
        if server is not None and name != "sqlite":
            return pg_copy(server, "backlog", f"run_{tag}_{name}".replace(".", "_"))
        return sqlite_copy(backlog.sqlite_state, work / f"run-{tag}-{name}.db")

    def replicas(label: str, name: str, n: int, history_batch: int) -> Callable[[], Run]:
        def run() -> Run:  # on a fresh copy of the backlog's state every time
            return run_replicas(
                label, mock, backlog, state(name), n, args, work, history_batch=history_batch, pg_pid=pg_pid
            )

        return run

    hb = args.history_batch
    plan: dict[str, Callable[[], Run]] = {
        "bare1": lambda: run_bare("bare loop, 1 process", mock, backlog, 1, hb, pg_pid),
        "bare3": lambda: run_bare("bare loops, 3 processes", mock, backlog, 3, hb, pg_pid),
    }
    if server is not None:
        plan["pg1"] = replicas("PostgreSQL, 1 replica", "pg1", 1, hb)
        plan["pg3"] = replicas("PostgreSQL, 3 replicas", "pg3", 3, hb)
    plan["sqlite1"] = replicas("SQLite, 1 replica", "sqlite", 1, hb)
    for size in sorted({1, 50} - {hb}):
        plan[f"h{size}"] = replicas(f"history_batch_size {size}, 1 replica", f"h{size}", 1, size)
    if args.only:
        plan = {key: run for key, run in plan.items() if key in args.only.split(",")}
    done: dict[str, list[Run]] = {}
    for round_ in range(args.repeat):
        if args.repeat > 1:
            print(f"  -- series {round_ + 1} of {args.repeat}; load {load()}")
        for key, run_it in plan.items():
            run = run_it()
            print(run.line(), flush=True)
            done.setdefault(key, []).append(run)
    # the run of median cycle rate (with an even count, the upper of the two middle ones)
    return {key: sorted(runs, key=lambda r: r.cycle_rate)[len(runs) // 2] for key, runs in done.items()}


def report(latency: float, runs: dict[str, Run], backlog: Backlog, args: argparse.Namespace) -> list[str]:
    """The run's figures as Markdown (a table and the four ratios), ready for BENCHMARKS.md."""
    out = [
        f"\n{latency:g} ms | records/s, start to exit | records/s, delivering | CPU s: its processes,"
        " mock, PostgreSQL | cores they used | machine busy | calls",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs.values():
        cpu = "+".join(f"{c:.1f}" for c in run.per_process_cpu_s)
        out.append(
            f"| {run.label} | {run.rate:,.1f} | {run.cycle_rate:,.1f} | {cpu}, {run.mock_cpu_s:.1f},"
            f" {run.pg_cpu_s:.1f} | {run.cores:.2f} | {run.busy:.0%} | {run.total_calls:,} |"
            + (" **" + "; ".join(run.problems) + "**" if run.problems else "")
        )
    bare1, bare3 = runs.get("bare1"), runs.get("bare3")
    pg1, pg3, lite = runs.get("pg1"), runs.get("pg3"), runs.get("sqlite1")
    if pg1 and pg3 and bare1 and bare3:
        out.append(
            f"- (a) 3 replicas / 1 on PostgreSQL (goal ≥ 2.5): **{ratio(pg3.steady[0], pg1.steady[0])}** in"
            f" calls/s while all three deliver; {ratio(pg3.cycle_rate, pg1.cycle_rate)} in records/s from"
            f" the first cycle's start to the last exit (the end of the backlog: last exits"
            f" {max(pg3.ended_s) - min(pg3.ended_s):.1f} s apart), {ratio(pg3.rate, pg1.rate)} from start"
            f" to exit; 3 bare loops / 1 in the same run: {ratio(bare3.cycle_rate, bare1.cycle_rate)}; CPU"
            f" a record: replicas {pg1.cpu_ms:.2f} → {pg3.cpu_ms:.2f} ms, bare loops {bare1.cpu_ms:.2f} →"
            f" {bare3.cpu_ms:.2f} ms"
        )
    if pg1 and lite:
        out.append(
            f"- (b) PostgreSQL / SQLite, 1 replica = **{ratio(pg1.cycle_rate, lite.cycle_rate)}**"
            f" delivering, {ratio(pg1.rate, lite.rate)} from start to exit"
        )
    one = pg1 or lite
    hb = args.history_batch
    for size in sorted({1, 50, hb}):
        sized = one if size == hb else runs.get(f"h{size}")
        if sized is None:
            continue
        history = sized.calls.get(HISTORY, 0)
        out.append(
            f"- (c) history_batch_size {size}{' (before: one dossier a call)' if size == 1 else ''}:"
            f" {sized.total_calls / backlog.records:.3f} calls a record,"
            f" {history / max(backlog.steps, 1):.3f} {HISTORY} calls a history entry"
            f" ({history:,} for {backlog.steps:,}), {sized.cycle_rate:,.1f} records/s delivering"
        )
    if one and bare1:
        out.append(
            f"- (d) 1 replica ({'PostgreSQL' if pg1 else 'SQLite'}) / bare loop ="
            f" **{ratio(one.cycle_rate, bare1.cycle_rate)}** delivering (goal ≥ 0.85),"
            f" {ratio(one.rate, bare1.rate)} with the replica's start-up,"
            f" {ratio(one.steady[0], bare1.steady[0])} in calls/s ({one.total_calls:,} and"
            f" {bare1.total_calls:,} calls)"
            + (f"; SQLite: {ratio(lite.cycle_rate, bare1.cycle_rate)}" if pg1 and lite else "")
        )
    return out


def profile(
    mock: RunningMock, backlog: Backlog, server: str, args: argparse.Namespace, work: Path, pg_pid: int | None
) -> None:
    """One more replica run on PostgreSQL under cProfile: where its time goes besides waiting."""
    out = work / "replica.prof"
    url = pg_copy(server, "backlog", "run_profile")
    run = run_replicas(
        "profiled, PostgreSQL, 1 replica",
        mock,
        backlog,
        url,
        1,
        args,
        work,
        history_batch=args.history_batch,
        pg_pid=pg_pid,
        profile=out,
    )
    print(run.line())
    stats = pstats.Stats(str(out))
    stats.sort_stats("tottime").print_stats(18)
    stats.sort_stats("cumulative").print_stats(r"adapter|sqlalchemy|httpx", 25)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a ~2-minute smoke run: 500 dossiers at 20 ms")
    parser.add_argument("--dossiers", type=int, default=None, help="generated dossiers (default 2000)")
    parser.add_argument("--latency-ms", default=None, help="portal latencies (default 20,50)")
    parser.add_argument("--concurrency", type=int, default=2, help="calls in flight per replica")
    parser.add_argument("--batch", type=int, default=10, help="dossiers per DongBoHoSoMC call")
    parser.add_argument("--history-batch", type=int, default=10, help="[portal] history_batch_size")
    parser.add_argument(
        "--runs",
        "--repeat",
        dest="repeat",
        type=int,
        default=None,
        help="series at each latency, the median kept (default 3; 1 with --quick)",
    )
    parser.add_argument("--profile", action="store_true", help="add a cProfile'd replica run")
    parser.add_argument("--only", default="", help="these runs only: bare1,bare3,pg1,pg3,sqlite1,h1,h50")
    args = parser.parse_args()
    args.dossiers = args.dossiers or (500 if args.quick else 2000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.latency_ms = args.latency_ms or ("20" if args.quick else "20,50")
    print(f"machine: {machine()}; load average {load()}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, postgres() as server:
        session(args, Path(tmp), server)
    print(f"\nload average after: {load()}; the benchmark took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
