"""Adoption cost (issue 18): `dvcsync adopt` of a province whose dossiers are already on the
portal, against the bare read-back loop measured in the same run.

The mock (its own process) is first filled with the province's dossiers and history by one
`dvcsync sync push` at 0 ms into a throwaway state (its portal-submitted dossiers seeded before,
as a real portal holds them); then every service gets the injected latency and, alternately,
``--runs`` (or ``--repeat``) times each, 3 by default (the median kept):

  (a) bare   an httpx loop making the same `TraCuuHoSo` calls (every dossier and every status
             report's key), the same calls in flight as `[portal] concurrency`, each reply parsed,
             no state, no mapping: the transport's limit at this latency;
  (b) adopt  `dvcsync adopt --json` in its own process on a fresh state: the scan (read, map,
             enqueue the province) and the read-back (one `TraCuuHoSo` a dossier, settled without
             writing). Its scan is timed from its progress lines on stderr.
Goals: adopt ≥ 0.85× the bare loop's dossiers/s; ≤ 1 read and 0 writes a dossier that is
identical (the mock's own counters: DongBoHoSoMC, CapNhatTienDoHoSoMC, DongBoTrangThaiHoSo must
not move).
  (c) differences planted through the mock's admin API (history entries dropped, statuses set one
      legal step back, a few entries duplicated: what a previous integration leaves, as
      tests/e2e/test_adoption.py does), then `dvcsync adopt` and `dvcsync sync push` on a fresh
      state: the push writes exactly the dropped entries and the set-back dossiers, nothing else
      (the mock's per-dossier write counters and history counts are the judge).
CPU seconds of each side and of the mock are printed beside the times, and the load average at
the start and the end. Usage:

  .venv/bin/python -P bench/adopt.py [--quick] [--dossiers 20000] [--latency-ms 20]
      [--concurrency 8] [--runs 3] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import pstats
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))  # `-P` leaves the repository off the path (bench.push, bench.replicas)

from bench.push import Bare, mapper, reset  # noqa: E402
from bench.replicas import _tree_cpu, load, machine  # noqa: E402
from mock_portal.testing import RunningMock, run_mock_process  # noqa: E402

WRITES = ("DongBoHoSoMC", "CapNhatTienDoHoSoMC", "DongBoTrangThaiHoSo")
READ = "TraCuuHoSo"
BATCH = 100  # dossiers a DongBoHoSoMC call (the fill and the push of (c))
# a status one legal step behind the province's (tests/e2e/test_adoption.py `_damage`)
BEHIND = {"10": "9", "9": "4", "4": "2", "5": "2", "6": "2", "8": "4"}
# adopt's progress off a terminal (dvcsync/cli/_adopt.py): "adopt: scan 19000/19000[, about N s left]"
PROGRESS = re.compile(r"adopt: (?P<phase>.+?) (?P<done>\d+)/(?P<total>\d+)")


# ---------------------------------------------------------------- the sample


@dataclass
class Sample:
    """What the province's dossiers become on the wire (the adapter's own mapping)."""

    db: Path
    dossiers: dict[str, tuple[str, int]] = field(default_factory=dict)  # code → (status, history entries)
    statuses: list[str] = field(default_factory=list)  # portal-submitted dossiers' codes (status reports)

    @property
    def keys(self) -> list[str]:
        """Every key adoption reads back: dossiers, then status reports."""
        return [*self.dossiers, *self.statuses]

    @property
    def steps(self) -> int:
        return sum(n for _, n in self.dossiers.values())


def sample(db: Path) -> Sample:
    job, engine = mapper(db)
    out = Sample(db)
    for page in job.source.iter_pages(1000):
        for record in page:
            mapped = job.map_record(record)
            if mapped.dossier is None:
                continue  # quarantined: adoption neither reads nor sends it
            if mapped.kind == "status":
                out.statuses.append(mapped.record_key)
            else:
                out.dossiers[mapped.record_key] = (
                    str(mapped.dossier.get("TrangThaiHoSo")),
                    len(mapped.steps),
                )
    engine.dispose()
    return out


# ---------------------------------------------------------------- the mock


def calls(mock: RunningMock) -> dict[str, int]:
    """Calls per service (every outcome) since the mock started."""
    services = httpx.get(f"{mock.url}/_admin/stats", timeout=30).json()["services"]
    return {name: sum(int(n) for n in outcomes.values()) for name, outcomes in services.items()}


def delta(after: dict[str, int], before: dict[str, int], service: str) -> int:
    return after.get(service, 0) - before.get(service, 0)


def stored(mock: RunningMock) -> dict[str, tuple[int, int]]:
    """code → (client writes, history entries) of every dossier the mock holds."""
    out: dict[str, tuple[int, int]] = {}
    page = 1
    with httpx.Client(base_url=mock.url, timeout=120) as client:
        while True:
            body = client.get("/_admin/dossiers", params={"page": page, "size": 1000}).json()
            out.update({i["MaHoSo"]: (int(i["writes"]), int(i["history"])) for i in body["items"]})
            if page * body["size"] >= body["total"]:
                return out
            page += 1


def set_latency(mock: RunningMock, latency_ms: float) -> None:
    faults = (
        {"seed": 1, "rules": [{"service": "*", "latency_ms": latency_ms}]} if latency_ms else {"rules": []}
    )
    httpx.put(f"{mock.url}/_admin/faults", json=faults, timeout=30).raise_for_status()


# ---------------------------------------------------------------- dvcsync as a process


def config(path: Path, mock: RunningMock, db: Path, state: Path, concurrency: int) -> Path:
    path.write_text(
        f'[province]\nsource_url = "sqlite:///{db}"\nmappings = "{REPO / "mappings"}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\nbatch_size = {BATCH}\n'
        f"concurrency = {concurrency}\nrate_limit = 100000\ntimeout = 60\nhistory_batch_size = 10\n"
        f'[state]\nurl = "sqlite:///{state}"\n',
        encoding="utf-8",
    )
    return path


@dataclass
class Proc:
    """One dvcsync command's run: its summary, its times and its CPU."""

    summary: dict[str, Any]
    wall_s: float  # from the start of the process to its exit
    cpu_s: float  # the process's own (wait4: its forks included)
    mock_cpu_s: float
    marks: dict[str, float] = field(default_factory=dict)  # progress line → seconds after the start
    exit: int = 0

    @property
    def cycle_s(self) -> float:
        return float(self.summary["elapsed_s"])

    @property
    def scan_s(self) -> float | None:
        """From the cycle's start to the last scan progress line (the scan's end)."""
        done = self.marks.get("scan")
        if done is None:
            return None
        started = self.wall_s - self.cycle_s  # the interpreter's start-up and imports before the cycle
        return max(done - started, 0.0)


def dvcsync(mock: RunningMock, cfg: Path, *command: str, work: Path, profile: Path | None = None) -> Proc:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    prefix = [sys.executable, "-m", "cProfile", "-o", str(profile)] if profile else [sys.executable]
    argv = [*prefix, "-m", "dvcsync.cli", "--config", str(cfg), *command, "--json"]
    out_file = work / "out.json"
    marks: dict[str, float] = {}
    tail: list[str] = []
    mock_pid = mock.process.pid if mock.process is not None else None
    mock0 = _tree_cpu(mock_pid)
    start = time.perf_counter()
    with open(out_file, "wb") as stdout:
        proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=env, cwd=work)

    def read_progress() -> None:
        # "adopt: scan 19000/19000": the last line of a phase is printed when it is complete
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").strip()
            tail[:] = [*tail[-4:], line]
            progress = PROGRESS.match(line)
            if progress is not None and progress["done"] == progress["total"]:
                marks[progress["phase"]] = time.perf_counter() - start

    reader = threading.Thread(target=read_progress, daemon=True)
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    reader.join(10)
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = out_file.read_text(encoding="utf-8").strip()
    if proc.returncode not in (0, 1) or not text:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}: {' | '.join(tail)}")
    return Proc(
        json.loads(text),
        wall,
        usage.ru_utime + usage.ru_stime,
        _tree_cpu(mock_pid) - mock0,
        marks,
        proc.returncode,
    )


def fill(mock: RunningMock, smp: Sample, work: Path, concurrency: int) -> float:
    """The portal as a previous integration left it: every dossier and history entry, every
    status report (one `dvcsync sync push` at 0 ms into a throwaway state). Seconds taken."""
    reset(mock, smp.db)  # an empty portal that knows the portal-submitted dossiers
    cfg = config(work / "fill.toml", mock, smp.db, work / "fill-state.db", concurrency)
    dvcsync(mock, cfg, "db", "upgrade", work=work)  # a push creates no state (adopt does)
    pushed = dvcsync(mock, cfg, "sync", "push", work=work)
    s = pushed.summary
    if s["dead"] or s["dossiers_pushed"] != len(smp.dossiers) or s["steps_pushed"] != smp.steps:
        raise RuntimeError(f"the fill did not push the whole sample: {s}")
    held = stored(mock)
    missing = [code for code in smp.dossiers if code not in held]
    if missing or sum(h for code, (_, h) in held.items() if code in smp.dossiers) != smp.steps:
        raise RuntimeError(f"the mock does not hold the sample after the fill ({len(missing)} missing)")
    return pushed.wall_s


# ---------------------------------------------------------------- (a) the bare loop


@dataclass
class BareRun:
    wall_s: float
    cpu_s: float
    mock_cpu_s: float
    reads: int

    def line(self, n: int) -> str:
        return (
            f"{n / self.wall_s:8,.1f} dossiers/s ({self.wall_s:.1f} s; CPU {self.cpu_s:.1f} s,"
            f" mock {self.mock_cpu_s:.1f} s; {self.reads:,} reads)"
        )


async def _bare(mock: RunningMock, keys: list[str], concurrency: int) -> float:
    bare = Bare(mock)
    await bare.login()
    semaphore = asyncio.Semaphore(concurrency)

    async def one(key: str) -> None:
        async with semaphore:
            reply = await bare.post(READ, {"mahoso": key})
            if str(reply.get("error_code")) != "0" or not reply.get("result"):
                raise RuntimeError(f"{READ} {key}: {reply.get('error_code')} {reply.get('message')}")

    start = time.perf_counter()
    await asyncio.gather(*(one(k) for k in keys))
    elapsed = time.perf_counter() - start
    await bare.client.aclose()
    return elapsed


def bare_loop(mock: RunningMock, keys: list[str], concurrency: int) -> BareRun:
    mock_pid = mock.process.pid if mock.process is not None else None
    before, mock0, cpu0 = calls(mock), _tree_cpu(mock_pid), time.process_time()
    wall = asyncio.run(_bare(mock, keys, concurrency))
    cpu, mock_cpu = time.process_time() - cpu0, _tree_cpu(mock_pid) - mock0
    return BareRun(wall, cpu, mock_cpu, delta(calls(mock), before, READ))


# ---------------------------------------------------------------- (b) adopt


@dataclass
class AdoptRun:
    proc: Proc
    reads: int  # TraCuuHoSo calls the mock answered
    writes: dict[str, int]  # calls of each writing service during the adoption

    def line(self, n: int) -> str:
        p, scan = self.proc, self.proc.scan_s
        phases = f"scan ended at {scan:.1f} s, read-back {p.cycle_s - scan:.1f} s more" if scan else "scan ?"
        return (
            f"{n / p.cycle_s:8,.1f} dossiers/s (cycle {p.cycle_s:.1f} s: {phases}; {p.wall_s:.1f} s start"
            f" to exit; CPU {p.cpu_s:.1f} s, mock {p.mock_cpu_s:.1f} s; {self.reads:,} reads,"
            f" {sum(self.writes.values())} writes)"
        )


def adopt(
    mock: RunningMock, smp: Sample, work: Path, name: str, concurrency: int, profile: Path | None = None
) -> AdoptRun:
    state = work / f"{name}.db"
    for stale in (state, state.with_name(state.name + "-wal"), state.with_name(state.name + "-shm")):
        stale.unlink(missing_ok=True)
    cfg = config(work / f"{name}.toml", mock, smp.db, state, concurrency)
    before = calls(mock)
    proc = dvcsync(mock, cfg, "adopt", work=work, profile=profile)
    after = calls(mock)
    return AdoptRun(proc, delta(after, before, READ), {w: delta(after, before, w) for w in WRITES})


def check_identical(run: AdoptRun, smp: Sample) -> list[str]:
    """What an adoption of an untouched portal must find: everything identical, nothing written."""
    s, found = run.proc.summary, run.proc.summary["found"]
    problems = []
    expect = {
        "identical": len(smp.dossiers),
        "status_same": len(smp.statuses),
        "history_present": smp.steps,
        "history_missing": 0,
        "differing": 0,
        "missing_on_portal": 0,
        "portal_only": 0,
        "read_failed": 0,
    }
    problems += [f"found.{k} = {found[k]}, {v} expected" for k, v in expect.items() if found[k] != v]
    if s["unsettled"] or any(s["to_send"].values()):
        problems.append(f"unsettled {s['unsettled']}, to send {s['to_send']}")
    if run.reads != len(smp.keys) or s["calls"] != len(smp.keys):
        problems.append(f"{run.reads} reads on the mock ({s['calls']} said), {len(smp.keys)} expected")
    if any(run.writes.values()):
        problems.append(f"writes during the adoption: {run.writes}")
    return problems


# ---------------------------------------------------------------- (c) differences


@dataclass
class Damage:
    dropped: dict[str, int] = field(default_factory=dict)  # code → last entries dropped
    set_back: dict[str, str] = field(default_factory=dict)  # code → the province's status
    extra: list[str] = field(default_factory=list)  # codes given an entry the province does not have


def damage(mock: RunningMock, smp: Sample, seed: int, per: int) -> Damage:
    """What a previous integration leaves, on one dossier in ``per``: its last 1-3 history entries
    missing; on one in 2×``per`` the status one legal step behind; one in 20×``per`` gets a copy
    of its first entry (the portal only has it)."""
    rng = random.Random(seed)
    with_history = sorted(code for code, (_, n) in smp.dossiers.items() if n >= 4)
    out = Damage()
    with httpx.Client(base_url=mock.url, timeout=30) as client:
        for code in rng.sample(with_history, max(1, len(smp.dossiers) // per)):
            n = rng.randint(1, 3)
            total = len(client.get(f"/_admin/dossiers/{code}").json()["QuaTrinhXuLy"])
            for k in range(n):
                client.delete(f"/_admin/dossiers/{code}/history/{total - k}").raise_for_status()
            out.dropped[code] = n
        candidates = sorted(c for c, (status, _) in smp.dossiers.items() if status in BEHIND)
        for code in rng.sample(candidates, max(1, len(smp.dossiers) // (2 * per))):
            status = smp.dossiers[code][0]
            client.patch(
                f"/_admin/dossiers/{code}", json={"TrangThaiHoSo": BEHIND[status]}
            ).raise_for_status()
            out.set_back[code] = status
        untouched = [c for c in with_history if c not in out.dropped]
        for code in rng.sample(untouched, max(1, len(smp.dossiers) // (20 * per))):
            client.post(f"/_admin/dossiers/{code}/history/1/duplicate").raise_for_status()
            out.extra.append(code)
    return out


@dataclass
class Repair:
    damage: Damage
    adopted: AdoptRun
    pushed: Proc
    push_writes: dict[str, int]
    problems: list[str]

    def line(self) -> str:
        planted, found, pushed = self.damage, self.adopted.proc.summary["found"], self.pushed.summary
        return (
            f"planted {sum(planted.dropped.values())} entries dropped on {len(planted.dropped)} dossiers,"
            f" {len(planted.set_back)} statuses set back, {len(planted.extra)} entries duplicated → adopt"
            f" found {found['history_missing']} missing, {found['differing']} differing,"
            f" {found['portal_only']} portal-only ({self.adopted.reads:,} reads,"
            f" {sum(self.adopted.writes.values())} writes); push sent {pushed['dossiers_pushed']} dossiers"
            f" in {self.push_writes['DongBoHoSoMC']} calls, {pushed['steps_pushed']} entries in"
            f" {self.push_writes['CapNhatTienDoHoSoMC']} calls, {self.push_writes['DongBoTrangThaiHoSo']}"
            f" status reports ({pushed['calls']} calls in all, {self.pushed.cycle_s:.1f} s)"
        )


def repair(
    mock: RunningMock, smp: Sample, work: Path, number: int, args: argparse.Namespace, extras: int
) -> Repair:
    """Plant differences, adopt on a fresh state, push: only the differences are written.
    ``extras``: portal-only entries planted by earlier rounds (kept by the portal for ever)."""
    set_latency(mock, 0)  # planting is the admin's work, not measured
    planted = damage(mock, smp, seed=100 + number, per=args.damage_per)
    before_store = stored(mock)
    set_latency(mock, args.latency)
    adopted = adopt(mock, smp, work, f"repair-{number}", args.concurrency)
    found, problems = adopted.proc.summary["found"], []
    steps = sum(planted.dropped.values())
    expect = {
        "history_missing": steps,
        "differing": len(planted.set_back),
        "identical": len(smp.dossiers) - len(planted.set_back),
        "portal_only": extras + len(planted.extra),
        "status_same": len(smp.statuses),
    }
    problems += [f"adopt found.{k} = {found[k]}, {v} expected" for k, v in expect.items() if found[k] != v]
    if any(adopted.writes.values()):
        problems.append(f"adopt wrote: {adopted.writes}")
    cfg = work / f"repair-{number}.toml"
    before = calls(mock)
    pushed = dvcsync(mock, cfg, "sync", "push", work=work)
    after = calls(mock)
    push_writes = {w: delta(after, before, w) for w in WRITES}
    s = pushed.summary
    if (s["dossiers_pushed"], s["steps_pushed"], s["statuses_reported"], s["dead"]) != (
        len(planted.set_back),
        steps,
        0,
        0,
    ):
        problems.append(
            f"push sent {s['dossiers_pushed']} dossiers, {s['steps_pushed']} entries, "
            f"{s['statuses_reported']} status reports ({s['dead']} dead); "
            f"{len(planted.set_back)}, {steps}, 0 expected"
        )
    if (
        push_writes["DongBoHoSoMC"] > math.ceil(len(planted.set_back) / BATCH)
        or push_writes["DongBoTrangThaiHoSo"]
    ):
        problems.append(f"push calls: {push_writes}")
    if delta(after, before, READ):
        problems.append(f"the push read {delta(after, before, READ)} dossiers back again")
    after_store = stored(mock)
    rewritten = {c for c, (w, _) in after_store.items() if w != before_store[c][0]}
    if rewritten != set(planted.set_back) | set(planted.dropped):
        problems.append(
            f"{len(rewritten)} dossiers written, {len(set(planted.set_back) | set(planted.dropped))} expected"
        )
    wrong = [c for c, (_, n) in smp.dossiers.items() if after_store[c][1] < n]
    if wrong:
        problems.append(f"{len(wrong)} dossiers still short of history, e.g. {wrong[0]}")
    held = sum(after_store[c][1] for c in smp.dossiers)
    if held != smp.steps + extras + len(planted.extra):
        problems.append(
            f"the mock holds {held} history entries, {smp.steps + extras + len(planted.extra)} expected"
        )
    return Repair(planted, adopted, pushed, push_writes, problems)


# ---------------------------------------------------------------- the session


def med(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def spread(values: list[float], fmt: str = "{:,.1f}") -> str:
    return "/".join(fmt.format(v) for v in values)


def session(args: argparse.Namespace, work: Path) -> None:
    from dvcsync.province.sample import generate

    db = work / "onestop.db"
    generate(db, args.dossiers, 42)
    smp = sample(db)
    n = len(smp.keys)
    print(
        f"{args.dossiers:,} generated: {len(smp.dossiers):,} dossiers with {smp.steps:,} history entries"
        f" + {len(smp.statuses):,} portal-submitted (status reports) = {n:,} dossiers to adopt"
    )
    print(
        f"[portal] concurrency = {args.concurrency} (the bare loop's calls in flight too), rate_limit ="
        f" 100000/s, {args.latency:g} ms on every service; no client passes"
        f" {args.concurrency / (args.latency / 1000):,.0f} calls/s"
    )
    with run_mock_process(state=str(work / "mock.db")) as mock:
        fill_s = fill(mock, smp, work, args.concurrency)
        print(f"portal filled by `dvcsync sync push` at 0 ms in {fill_s:.1f} s; load {load()}")
        set_latency(mock, args.latency)
        bares: list[BareRun] = []
        adopts: list[AdoptRun] = []
        for round_ in range(args.repeat):
            print(f"  -- round {round_ + 1} of {args.repeat}; load {load()}", flush=True)
            bare = bare_loop(mock, smp.keys, args.concurrency)
            bares.append(bare)
            print(f"  (a) bare loop   {bare.line(n)}", flush=True)
            run = adopt(mock, smp, work, f"adopt-{round_}", args.concurrency)
            adopts.append(run)
            print(f"  (b) adopt       {run.line(n)}", flush=True)
            for problem in check_identical(run, smp):
                print(f"      !! {problem}")
        if args.profile:
            out = work / "adopt.prof"
            run = adopt(mock, smp, work, "profiled", args.concurrency, profile=out)
            print(f"\nprofiled adopt (this process only): {run.line(n)}")
            stats = pstats.Stats(str(out))
            stats.sort_stats("tottime").print_stats(20)
            stats.sort_stats("cumulative").print_stats(r"adapter|sqlalchemy|httpx", 30)
        repairs: list[Repair] = []
        extras = 0
        for round_ in range(args.repairs):
            rep = repair(mock, smp, work, round_, args, extras)
            extras += len(rep.damage.extra)
            repairs.append(rep)
            print(f"  (c) {rep.line()}\n      adopt {rep.adopted.line(n)}", flush=True)
            for problem in rep.problems:
                print(f"      !! {problem}")
    report(args, smp, bares, adopts, repairs)


def report(
    args: argparse.Namespace, smp: Sample, bares: list[BareRun], adopts: list[AdoptRun], repairs: list[Repair]
) -> None:
    """The medians as Markdown, ready for BENCHMARKS.md."""
    n = len(smp.keys)
    bare_rates = [n / b.wall_s for b in bares]
    cycle_rates = [n / a.proc.cycle_s for a in adopts]
    exit_rates = [n / a.proc.wall_s for a in adopts]
    scans = [a.proc.scan_s for a in adopts if a.proc.scan_s is not None]
    after = [a.proc.cycle_s - a.proc.scan_s for a in adopts if a.proc.scan_s is not None]
    print(f"\n{n:,} dossiers, {args.latency:g} ms, {args.concurrency} in flight; medians of {args.repeat}:")
    print("| | dossiers/s | seconds | CPU s: its process(es) / mock | runs, dossiers/s |")
    print("|---|---|---|---|---|")
    print(
        f"| (a) bare `TraCuuHoSo` loop, no state | {med(bare_rates):,.1f} |"
        f" {med([b.wall_s for b in bares]):.1f} | {med([b.cpu_s for b in bares]):.1f} /"
        f" {med([b.mock_cpu_s for b in bares]):.1f} |"
        f" {spread(bare_rates)} |"
    )
    print(
        f"| (b) `dvcsync adopt`, its cycle (scan and read-back) | **{med(cycle_rates):,.1f}** |"
        f" {med([a.proc.cycle_s for a in adopts]):.1f} | {med([a.proc.cpu_s for a in adopts]):.1f} /"
        f" {med([a.proc.mock_cpu_s for a in adopts]):.1f} | {spread(cycle_rates)} |"
    )
    print(
        f"| … from the process's start to its exit | {med(exit_rates):,.1f} |"
        f" {med([a.proc.wall_s for a in adopts]):.1f} | | {spread(exit_rates)} |"
    )
    if scans:
        print(
            f"| … its scan (read, map, enqueue), from the cycle's start to the scan's end |"
            f" {n / med(scans):,.1f} | {med(scans):.1f} | | {spread(scans)} s |"
        )
        print(f"| … read-back left after the scan's end | | {med(after):.1f} | | {spread(after)} s |")
    pairs = [b.wall_s / a.proc.cycle_s for b, a in zip(bares, adopts, strict=True)]
    print(
        f"- adopt / bare, cycle: **{med(cycle_rates) / med(bare_rates):.2f}×** (goal ≥ 0.85×); round by"
        f" round (each adopt right after its bare loop) {spread(pairs, '{:.2f}')}; start to exit"
        f" {med(exit_rates) / med(bare_rates):.2f}×"
    )
    reads = med([a.reads / n for a in adopts])
    writes = max((sum(a.writes.values()) for a in adopts), default=0)
    print(f"- reads a dossier: {reads:.3f} (goal ≤ 1); writes during the adoptions: {writes} (goal 0)")
    bad = [p for a in adopts for p in check_identical(a, smp)]
    print(
        f"- every adoption found all {len(smp.dossiers):,} dossiers identical and {len(smp.statuses):,}"
        f" status reports the same: {'yes' if not bad else 'NO: ' + '; '.join(bad[:3])}"
    )
    for k, rep in enumerate(repairs):
        verdict = "only the differences" if not rep.problems else "NOT only: " + "; ".join(rep.problems)
        print(f"- (c) round {k + 1}: {rep.line()}: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a ~2-minute smoke run: 2,000 dossiers, once")
    parser.add_argument("--dossiers", type=int, default=None, help="generated dossiers (default 20000)")
    parser.add_argument("--latency-ms", dest="latency", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8, help="[portal] concurrency and the bare loop's")
    parser.add_argument(
        "--runs",
        "--repeat",
        dest="repeat",
        type=int,
        default=None,
        help="runs of each phase, median kept (default 3; 1 with --quick)",
    )
    parser.add_argument("--damage-per", type=int, default=100, help="(c): one dossier in N loses history")
    parser.add_argument(
        "--repairs", type=int, default=1, help="rounds of (c), each on new damage; 0 skips it"
    )
    parser.add_argument("--profile", action="store_true", help="one more adopt under cProfile")
    args = parser.parse_args()
    args.dossiers = args.dossiers or (2000 if args.quick else 20_000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    print(f"machine: {machine()}; load average {load()}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        session(args, Path(tmp))
    print(f"\nload average after: {load()}; the benchmark took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
