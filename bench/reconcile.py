"""Reconciliation at scale: province ⋈ state over a million dossiers, and the portal read-back.

  merge      ``ProvinceStateCheck(...).run()`` (dvcsync/reconcile/province_state.py): the province's
             dossiers and the state's records (with outbox and quarantine aggregates), each read
             ordered by code from its own database and walked together in Python; once with
             read_back=False (the pure merge and its findings) and once with read_back=True (also
             writing every read-back candidate to the run's working SQLite file).
  baseline   one SQL query, one SQLite connection with both files ATTACHed: ho_so LEFT JOIN
             dossier_state on the code, UNION ALL the state rows no dossier has (a full outer join),
             unordered; the rows fetched in Python and counted. Variants: the same ordered by code,
             and ordered with the outbox and quarantine aggregates joined in (what the adapter's two
             queries fetch, in one query). The baselines compare nothing: they are a floor.
  breakdown  the adapter's pieces alone, same subprocess: each stream iterated by itself, then the
             merge of the two without the comparison.
  read-back  ``PortalCheck.read()`` over the ~10,000 candidates of a pushed sample (``dvcsync sync
             push`` of a generated sample, so the state and the portal are real), against the mock in
             its own process with 20 ms injected TraCuuHoSo latency, under the client's rate budget
             and concurrency; against a bare httpx loop making the same TraCuuHoSo calls with the same
             concurrency, no budget and no state. Then the default budget (20/s, 4 in flight) on
             1,000 candidates, to show it is honoured.

Every merge, baseline and breakdown runs in a fresh subprocess (this script with ``--child``), which
reports its wall time and its own peak RSS (VmHWM of /proc/self/status) beside its RSS before the
measured part (the interpreter and its imports). ``getrusage(RUSAGE_SELF).ru_maxrss`` is printed too
but is not the figure: Linux keeps it across exec, so it can be the forked copy of this parent.

Data: a synthetic province database (the sample schema's DDL, ``ho_so`` only, filled with
executemany: codes like ``000.00.01.H40-250101-000001``, two years of dates, statuses, agencies,
procedures, 3 % submitted on the portal) and a synthetic state made by ``StateStore.prepare()`` and
filled with SQL (93.5 % in sync with a ``done`` outbox entry, 2 % pending, 0.5 % dead, 0.5 %
quarantined, 0.5 % unknown to the state, plus 0.5 % state-only records; the push cursor at the
newest ``updated_at``). Both are cached in ``$TMPDIR/dvcsync-bench-reconcile`` keyed by size and
seed: a re-run skips the build (delete the folder, or pass --rebuild, to build again).

Targets (the issue): the merge of 1,000,000 dossiers under 60 s and under 400 MB peak; the
read-back of 10,000 dossiers at 20 ms latency within the rate budget. Usage:

  .venv/bin/python -P bench/reconcile.py [--dossiers 1000000] [--read-back 10000] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))  # `-P` leaves the repository off the path
from bench._runs import Load, add_runs_option, spread  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "dvcsync-bench-reconcile"
FORMAT = 1  # bump when the synthetic data changes: cached files of another format are not reused
PUSH_CURSOR = "push:dossier"
CHUNK = 50_000

STATUS_WEIGHTS = (
    ("done", 70), ("processing", 12), ("releasing", 5), ("receiving", 4), ("waiting", 3),
    ("paying", 2), ("new", 1), ("denied", 1), ("cancelled", 1), ("unresolved", 1),
)  # fmt: skip
STATUS_CODES = {
    k: str(n)
    for n, k in enumerate(
        ("new", "receiving", "denied", "processing", "waiting", "paying", "cancelled", "unresolved",
         "releasing", "done"),
        1,
    )
}  # fmt: skip
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ")
GIVEN = ("Văn Nam", "Thị Hồng Nhung", "Minh Anh", "Thu Hà", "Quốc Bảo", "Ngọc Lan", "Đức Thịnh", "Hải Yến")


# ---------------------------------------------------------------------------------------------- data


def _weighted(rng: random.Random, table: tuple[tuple[str, int], ...]) -> Callable[[], str]:
    keys = [k for k, w in table for _ in range(w)]
    return lambda: keys[int(rng.random() * len(keys))]


def build_province(path: Path, n: int, seed: int) -> None:
    """``ho_so`` with ``n`` rows, arrival ordered over two years (2024-2025), in one transaction."""
    from dvcsync.province.sample import catalogue
    from dvcsync.province.sample.schema import DDL

    rng = random.Random(seed)
    agencies = [(a.ma_don_vi, a.ma_qg) for a in catalogue.agencies()]
    procedures = [p.ma_thu_tuc for p in catalogue.procedures()]
    status = _weighted(rng, STATUS_WEIGHTS)
    first, days = date(2024, 1, 1), 731
    day_iso = [(first + timedelta(days=d)).isoformat() for d in range(days + 60)]
    day_short = [(first + timedelta(days=d)).strftime("%y%m%d") for d in range(days + 60)]
    serials: dict[tuple[str, int], int] = {}
    portal_serials: dict[int, int] = {}

    def row(i: int) -> tuple[Any, ...]:
        day = i * days // n
        agency, ma_qg = agencies[int(rng.random() * len(agencies))]
        serial = serials[(ma_qg, day)] = serials.get((ma_qg, day), 0) + 1
        code = f"{ma_qg}-{day_short[day]}-{serial:06d}"
        minute = 450 + int(rng.random() * 570)  # 07:30 to 17:00
        submitted = f"{day_iso[day]}T{minute // 60:02d}:{minute % 60:02d}:00"
        later = day + int(rng.random() ** 2 * 45)
        minute = 450 + int(rng.random() * 570)
        updated = f"{day_iso[later]}T{minute // 60:02d}:{minute % 60:02d}:{int(rng.random() * 60):02d}"
        state = status()
        received = None if state == "new" else submitted
        online = rng.random() < 0.3
        origin = None
        if online and rng.random() < 0.1:  # 3 % submitted on the portal: the key is its code
            p_serial = portal_serials[day] = portal_serials.get(day, 0) + 1
            origin = f"G22.99-{day_short[day]}-{p_serial:06d}"
        owner = f"{FAMILY[int(rng.random() * 10)]} {GIVEN[int(rng.random() * 8)]}"
        return (
            i + 1, code, procedures[int(rng.random() * len(procedures))], owner,
            "cong_dan" if rng.random() < 0.9 else "doanh_nghiep", f"0012{int(rng.random() * 1e8):08d}",
            f"09{int(rng.random() * 1e8):08d}", "truc_tuyen" if online else "truc_tiep",
            f"Hồ sơ số {i + 1} của {owner}", submitted, received, f"{day_iso[day + 7]}T17:00:00", state,
            agency, "dvcqg" if origin else "mot_cua", origin, submitted, updated,
        )  # fmt: skip

    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.executescript(DDL)
    conn.execute("BEGIN")
    for lo in range(0, n, CHUNK):
        conn.executemany(
            "INSERT INTO ho_so (id, so_ho_so, ma_thu_tuc, chu_ho_so, loai_chu_ho_so, so_giay_to, dien_thoai,"
            " kenh_nop, trich_yeu, ngay_nop, ngay_tiep_nhan, ngay_hen_tra, trang_thai, ma_don_vi, nguon,"
            " ma_ho_so_qg, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [row(i) for i in range(lo, min(n, lo + CHUNK))],
        )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    partial.replace(path)


def build_state(path: Path, province: Path, seed: int) -> dict[str, int]:
    """The state of a push that has run over ``province``: one record per dossier, mostly in sync."""
    from dvcsync.state import StateStore

    partial = path.with_name(path.name + ".partial")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    store = StateStore(f"sqlite:///{partial}")
    store.prepare()
    store.close()
    rng = random.Random(seed + 1)
    now = time.time()
    counts = dict.fromkeys(("synced", "pending", "dead", "quarantined", "province_only", "state_only"), 0)
    src = sqlite3.connect(province)
    keys = src.execute(
        "SELECT id, CASE WHEN ma_ho_so_qg IS NOT NULL AND ma_ho_so_qg <> '' THEN ma_ho_so_qg ELSE so_ho_so"
        " END, updated_at, trang_thai, ma_ho_so_qg IS NOT NULL FROM ho_so ORDER BY id"
    )
    top = src.execute("SELECT updated_at, id FROM ho_so ORDER BY updated_at DESC, id DESC LIMIT 1").fetchone()
    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    states: list[tuple[Any, ...]] = []
    outbox: list[tuple[Any, ...]] = []
    quarantine: list[tuple[Any, ...]] = []

    def flush() -> None:
        conn.executemany(
            "INSERT INTO dossier_state (record_key, source_id, source_updated_at, payload_hash, acked_hash,"
            " on_portal, status, updated_at) VALUES (?,?,?,?,?,?,?,?)",
            states,
        )
        conn.executemany(
            "INSERT INTO outbox (idem_key, kind, record_key, payload, payload_hash, state, attempts,"
            " next_attempt_at, last_error, verify_first, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            outbox,
        )
        conn.executemany(
            "INSERT INTO quarantine (mapping, record_key, errors, source_updated_at, first_seen, last_seen)"
            " VALUES (?,?,?,?,?,?)",
            quarantine,
        )
        states.clear()
        outbox.clear()
        quarantine.clear()

    for n, (source_id, key, updated, status, portal) in enumerate(keys, 1):
        r = rng.random()
        code = STATUS_CODES[status]
        kind = "status" if portal else "dossier"
        h = f"{source_id:x}"
        t = now - rng.random() * 86_400 * 400
        if r < 0.005:
            counts["province_only"] += 1
        elif r < 0.010:
            counts["quarantined"] += 1
            errors = json.dumps([{"field": "MaTTHC", "error": "không có mã thủ tục quốc gia"}])
            quarantine.append(("dossier" if not portal else "status_report", key, errors, updated, t, t))
        elif r < 0.015:
            counts["dead"] += 1
            states.append((key, source_id, updated, f"p{h}", f"a{h}", int(rng.random() < 0.5), code, t))
            outbox.append(
                (f"{kind}:{key}:p{h}", kind, key, "{}", f"p{h}", "dead", 8, t, "HTTP 500 from the portal", 0,
                 t, t)
            )  # fmt: skip
        elif r < 0.035:
            counts["pending"] += 1
            since = now - rng.random() * 86_400 * 2  # half of them older than stale_after (24 h)
            states.append((key, source_id, updated, f"p{h}", f"a{h}", 1, code, since))
            outbox.append(
                (f"{kind}:{key}:p{h}", kind, key, "{}", f"p{h}", "pending", 0, since, None, 0, since, since)
            )
        else:
            counts["synced"] += 1
            states.append((key, source_id, updated, f"a{h}", f"a{h}", 1, code, t))
            outbox.append((f"{kind}:{key}:a{h}", kind, key, "{}", f"a{h}", "done", 1, t, None, 0, t, t))
        if rng.random() < 0.005:  # deleted from the province after it reached the portal
            counts["state_only"] += 1
            gone = f"{key[:-6]}9{n % 100_000:05d}"
            states.append((gone, None, updated, f"a{h}", f"a{h}", 1, code, t))
        if len(states) >= CHUNK:
            flush()
    flush()
    conn.execute(
        "INSERT INTO cursor (name, watermark, last_key, updated_at) VALUES (?, ?, ?, ?)",
        (PUSH_CURSOR, top[0], top[1], now),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    src.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    partial.replace(path)
    return counts


def data_files(n: int, seed: int, rebuild: bool) -> tuple[Path, Path, str]:
    CACHE.mkdir(parents=True, exist_ok=True)
    province = CACHE / f"province-{n}-s{seed}-v{FORMAT}.db"
    from dvcsync.state.migrations import head_revision

    # the state's schema revision is part of the name: a new migration means a new file
    state = CACHE / f"state-{n}-s{seed}-v{FORMAT}-r{head_revision()}.db"
    notes = []
    if rebuild or not province.is_file():
        start = time.perf_counter()
        build_province(province, n, seed)
        notes.append(f"province built in {time.perf_counter() - start:.1f}s")
        state.unlink(missing_ok=True)
    if rebuild or not state.is_file():
        start = time.perf_counter()
        counts = build_state(state, province, seed)
        notes.append(f"state built in {time.perf_counter() - start:.1f}s: {counts}")
    note = "; ".join(notes) or "cached files reused (--rebuild to build again)"
    return province, state, note


# ------------------------------------------------------------------------------ children (measured)


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _adapter_parts(province: Path, state: Path, work: Path) -> Any:
    from dvcsync.config import Settings
    from dvcsync.mapping import load_mappings
    from dvcsync.province.source import make_engine
    from dvcsync.reconcile.period import Period, local_now
    from dvcsync.reconcile.workbook import WorkBook
    from dvcsync.state import StateStore

    settings = Settings.load(
        None,
        use_env=False,
        province={"source_url": f"sqlite:///{province}", "mappings": str(REPO / "mappings")},
        state={"url": f"sqlite:///{state}"},
        reconcile={"out_dir": str(work)},
    )
    mappings = load_mappings(REPO / "mappings")
    store = StateStore(settings.state.url)
    store.prepare()
    source = make_engine(settings.province.source_url)
    book = WorkBook(work / "work.sqlite", "bench")
    period = Period(date(2000, 1, 1), date(2099, 12, 31))
    return settings, mappings, store, source, book, period, local_now()


def child_adapter(province: Path, state: Path, read_back: bool, profile: bool) -> dict[str, Any]:
    from dvcsync.reconcile.province_state import ProvinceStateCheck

    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        settings, mappings, store, source, book, period, now = _adapter_parts(province, state, Path(tmp))
        check = ProvinceStateCheck(
            settings, mappings, store, source, period, book, now=now, read_back=read_back
        )
        start_kb, start_cpu = _status_kb("VmRSS:"), time.process_time()
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        start = time.perf_counter()
        counts = check.run()
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - start_cpu
        out: dict[str, Any] = {"elapsed_s": elapsed, "cpu_s": cpu, "start_kb": start_kb}
        if profiler is not None:
            import io
            import pstats

            profiler.disable()
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(22)
            out["profile"] = text.getvalue()
        out["rows"] = counts.province + counts.state  # read from the two databases
        out["counts"] = dict(counts.__dict__)
        out["findings"] = {k: v for k, v in book.counts().items() if v}
        out["work_file_mb"] = os.path.getsize(book.path) / 1e6
        book.close(finished=True)
        store.close()
        source.dispose()
    return out


def child_breakdown(province: Path, state: Path) -> dict[str, Any]:
    from dvcsync.reconcile.province_state import _merged, province_rows, state_rows

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        settings, mappings, store, source, book, period, _now = _adapter_parts(province, state, Path(tmp))
        statements: list[str] = []
        from sqlalchemy import event

        @event.listens_for(source, "before_cursor_execute")
        def _keep(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
            statements.append(statement)

        def timed(name: str, rows: Iterator[Any]) -> None:
            start, cpu, n = time.perf_counter(), time.process_time(), 0
            for _ in rows:
                n += 1
            out[name] = {
                "elapsed_s": time.perf_counter() - start,
                "cpu_s": time.process_time() - cpu,
                "rows": n,
            }

        timed("province_rows", province_rows(source, mappings, settings, period))
        timed("state_rows", state_rows(store))
        timed("merged", _merged(province_rows(source, mappings, settings, period), state_rows(store)))
        # the province's query alone, in plain sqlite3 (no SQLAlchemy, no text_factory, no dicts)
        sql = next(s for s in statements if "ORDER BY" in s)
        conn = sqlite3.connect(province)
        timed("province_sql_raw", _fetch(conn.execute(sql)))
        conn.close()
        store.close()
        source.dispose()
        book.close(finished=True)
    return out


def _fetch(cursor: sqlite3.Cursor) -> Iterator[Any]:
    while True:
        rows = cursor.fetchmany(5000)
        if not rows:
            return
        yield from rows


_KEY = "CASE WHEN h.ma_ho_so_qg IS NOT NULL AND h.ma_ho_so_qg <> '' THEN h.ma_ho_so_qg ELSE h.so_ho_so END"
_H = (
    f"SELECT {_KEY} AS k, h.so_ho_so, h.updated_at, h.ngay_tiep_nhan, h.trang_thai, h.ma_don_vi,"
    " h.ma_thu_tuc, h.ma_ho_so_qg, h.chu_ho_so FROM p.ho_so h"
)
_D = "d.on_portal, d.payload_hash, d.acked_hash, d.source_updated_at, d.status, d.updated_at"
_AGG = """
    ob AS (SELECT record_key, SUM(state = 'pending') AS pending, SUM(state = 'dead') AS dead,
                  MIN(CASE WHEN state = 'pending' THEN created_at END) AS pending_since,
                  MAX(CASE WHEN state = 'dead' THEN updated_at END) AS dead_at,
                  MAX(CASE WHEN state = 'dead' THEN last_error END) AS dead_error
           FROM s.outbox WHERE state IN ('pending', 'dead') GROUP BY record_key),
    q AS (SELECT record_key, MIN(first_seen) AS first_seen, MAX(errors) AS errors
          FROM s.quarantine GROUP BY record_key),
"""


def baseline_sql(variant: str) -> str:
    if variant == "full":  # every key of either side, with the state's aggregates, by code
        return f"""
            WITH {_AGG} h AS ({_H}),
            k AS (SELECT k FROM h UNION SELECT record_key FROM s.dossier_state
                  UNION SELECT record_key FROM q UNION SELECT record_key FROM ob)
            SELECT k.k, h.so_ho_so, h.updated_at, h.ngay_tiep_nhan, h.trang_thai, h.ma_don_vi, h.ma_thu_tuc,
                   h.ma_ho_so_qg, h.chu_ho_so, {_D}, q.first_seen, q.errors, ob.pending, ob.dead,
                   ob.pending_since, ob.dead_at, ob.dead_error
            FROM k LEFT JOIN h ON h.k = k.k LEFT JOIN s.dossier_state d ON d.record_key = k.k
            LEFT JOIN q ON q.record_key = k.k LEFT JOIN ob ON ob.record_key = k.k ORDER BY k.k
        """
    sql = f"""
        WITH h AS ({_H})
        SELECT h.*, {_D} FROM h LEFT JOIN s.dossier_state d ON d.record_key = h.k
        UNION ALL
        SELECT d.record_key, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, {_D} FROM s.dossier_state d
        WHERE d.record_key NOT IN (SELECT k FROM h)
    """
    return sql + (" ORDER BY 1" if variant == "ordered" else "")


def child_baseline(province: Path, state: Path, variant: str) -> dict[str, Any]:
    conn = sqlite3.connect(":memory:")
    conn.execute("ATTACH DATABASE ? AS p", (str(province),))
    conn.execute("ATTACH DATABASE ? AS s", (str(state),))
    start_kb, start_cpu = _status_kb("VmRSS:"), time.process_time()
    start = time.perf_counter()
    n = in_both = 0
    for row in _fetch(conn.execute(baseline_sql(variant))):
        n += 1
        in_both += row[1] is not None and row[9] is not None
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    conn.close()
    return {"elapsed_s": elapsed, "cpu_s": cpu, "start_kb": start_kb, "rows": n, "in_both": in_both}


def median_child(args: list[str], runs: int) -> dict[str, Any]:
    """``run_child`` ``runs`` times: the run of median wall time, with every run's in ``runs_s``."""
    results = [run_child(args) for _ in range(max(1, runs))]
    kept = dict(sorted(results, key=lambda r: float(r.get("elapsed_s", 0.0)))[len(results) // 2])
    kept["runs_s"] = [float(r.get("elapsed_s", 0.0)) for r in results]
    return kept


def run_child(args: list[str]) -> dict[str, Any]:
    """This script in a fresh interpreter: its peak memory is its own, not this process's."""
    proc = subprocess.run(
        [sys.executable, "-P", str(Path(__file__).resolve()), "--child", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def child_main(mode: str, province: Path, state: Path, profile: bool) -> None:
    if mode == "adapter":
        out = child_adapter(province, state, False, profile)
    elif mode == "adapter-readback":
        out = child_adapter(province, state, True, profile)
    elif mode == "breakdown":
        out = child_breakdown(province, state)
    else:
        out = child_baseline(province, state, mode.removeprefix("baseline-"))
    out["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["hwm_kb"] = _status_kb("VmHWM:")
    print(json.dumps(out, ensure_ascii=False))


# ----------------------------------------------------------------------------------------- read-back


def _mb(kb: int) -> str:
    return f"{kb / 1024:,.0f} MB"


def push_sample(mock: Any, db: Path, state: Path) -> dict[str, Any]:
    config = state.with_suffix(".toml")
    config.write_text(
        f'[province]\nsource_url = "sqlite:///{db}"\nmappings = "{REPO / "mappings"}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\nbatch_size = 100\nconcurrency = 8\n'
        f'rate_limit = 100000\ntimeout = 60\n[state]\nurl = "sqlite:///{state}"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    proc = subprocess.run(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), "sync", "push", "--json"],
        capture_output=True,
        env=env,
        cwd=REPO,
    )
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr.decode())
    summary: dict[str, Any] = json.loads(proc.stdout)
    return summary


async def bare_reads(mock: Any, keys: list[str], concurrency: int) -> tuple[float, int]:
    """The same TraCuuHoSo calls, with an httpx client, ``concurrency`` in flight, nothing else."""
    import httpx

    creds = mock.config.credentials
    headers = {"Content-Type": "application/json", "dstcode": creds.dstcode}
    async with httpx.AsyncClient(
        timeout=60, limits=httpx.Limits(max_connections=concurrency), trust_env=False
    ) as client:
        reply = await client.post(
            f"{mock.adapter_url}/auth", headers=headers,
            json={"username": creds.username, "password": creds.password},
        )  # fmt: skip
        session = reply.json()["session"]
        semaphore = asyncio.Semaphore(concurrency)

        async def one(key: str) -> bool:
            body = {"session": session, "madonvi": creds.madonvi, "service": "TraCuuHoSo", "mahoso": key}
            async with semaphore:
                answer = await client.post(f"{mock.adapter_url}/integration", headers=headers, json=body)
            data = answer.json()
            assert str(data.get("error_code")) == "0", data
            return bool(data.get("result"))

        start = time.perf_counter()
        found = await asyncio.gather(*(one(k) for k in keys))
        return time.perf_counter() - start, sum(found)


async def adapter_reads(
    mock: Any, db: Path, state: Path, work: Path, portal: dict[str, Any], sample: int | None
) -> dict[str, Any]:
    from dvcsync.config import Settings
    from dvcsync.mapping import load_mappings
    from dvcsync.portal import PortalClient, make_http_client
    from dvcsync.province.source import make_engine
    from dvcsync.reconcile.period import Period, local_now
    from dvcsync.reconcile.portal_check import PortalCheck
    from dvcsync.reconcile.province_state import ProvinceStateCheck
    from dvcsync.reconcile.workbook import WorkBook
    from dvcsync.state import StateStore

    settings = Settings.load(
        None,
        use_env=False,
        province={"source_url": f"sqlite:///{db}", "mappings": str(REPO / "mappings")},
        portal={"adapter_url": mock.adapter_url, "timeout": 30.0, **portal},
        state={"url": f"sqlite:///{state}"},
        reconcile={"out_dir": str(work)},
    )
    mappings = load_mappings(REPO / "mappings")
    store = StateStore(settings.state.url)
    source = make_engine(settings.province.source_url)
    book = WorkBook(work / f"work-{sample}.sqlite", f"bench-{sample}")
    period, now = Period(date(2000, 1, 1), date(2099, 12, 31)), local_now()
    ProvinceStateCheck(settings, mappings, store, source, period, book, now=now, read_back=True).run()
    if sample == 0:  # the candidates only (the bare loop's keys)
        keys = [k for (k,) in book.db.execute("SELECT ma_ho_so FROM candidate ORDER BY ma_ho_so")]
        book.close(finished=True)
        store.close()
        source.dispose()
        return {"keys": keys}
    client = PortalClient(settings.portal, make_http_client(settings.portal))
    check = PortalCheck(settings, mappings, store, client, source, book, now=now, period=period)
    await client.sessions.get()  # the login is not a read
    book_s = [0.0]  # the working file's reads and writes between chunks (nothing in flight then)
    for name in ("unread", "record_reads"):
        setattr(book, name, _timed(getattr(book, name), book_s))
    before = client.stats["requests"]
    start = time.perf_counter()
    await check.read(sample, 1, None)
    elapsed = time.perf_counter() - start
    requests = client.stats["requests"] - before
    found = int(book.db.execute("SELECT COUNT(*) FROM readback WHERE found = 1").fetchone()[0])
    keys = [k for (k,) in book.db.execute("SELECT ma_ho_so FROM candidate ORDER BY ma_ho_so")]
    start = time.perf_counter()
    check.compare()
    compare_s = time.perf_counter() - start
    findings = {k: v for k, v in book.counts().items() if v}
    await client.aclose()
    book.close(finished=True)
    store.close()
    source.dispose()
    return {
        "elapsed_s": elapsed,
        "book_s": book_s[0],
        "requests": requests,
        "found": found,
        "keys": keys,
        "counts": dict(check.counts.__dict__),
        "compare_s": compare_s,
        "findings": findings,
        "rate_limit": settings.portal.rate_limit,
        "concurrency": settings.portal.concurrency,
    }


def _timed(method: Callable[..., Any], total: list[float]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - start

    return timed


async def client_reads(mock: Any, keys: list[str], portal: dict[str, Any]) -> tuple[float, int]:
    """The adapter's PortalClient alone: the same calls, budget and concurrency, all gathered at
    once (no working file, no chunks)."""
    from dvcsync.config import Settings
    from dvcsync.portal import PortalClient, make_http_client

    settings = Settings.load(None, use_env=False, portal={"adapter_url": mock.adapter_url, **portal})
    client = PortalClient(settings.portal, make_http_client(settings.portal))
    semaphore = asyncio.Semaphore(settings.portal.concurrency)
    await client.sessions.get()

    async def one(key: str) -> None:
        async with semaphore:
            reply = await client.call("TraCuuHoSo", {"mahoso": key}, typed=False)
        assert reply.ok and reply.result, key

    start = time.perf_counter()
    await asyncio.gather(*(one(k) for k in keys))
    elapsed = time.perf_counter() - start
    calls = client.stats["requests"]
    await client.aclose()
    return elapsed, calls


def read_back(args: argparse.Namespace) -> None:
    import httpx

    from dvcsync.demo import seed_portal_side
    from dvcsync.mapping import load_mappings
    from dvcsync.province.sample import generate
    from mock_portal.testing import run_mock_process

    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        work = Path(tmp)
        db, state = work / "onestop.db", work / "state.db"
        dossiers = math.ceil(args.read_back / 0.8)  # ~80 % of a sample are read-back candidates
        start = time.perf_counter()
        generate(db, dossiers, 7)
        with run_mock_process(state=str(work / "mock.db")) as mock:
            seed_portal_side(mock.url, f"sqlite:///{db}", load_mappings(REPO / "mappings"))
            pushed = push_sample(mock, db, state)
            print(
                f"read-back sample: {dossiers:,} generated dossiers pushed by `dvcsync sync push`"
                f" ({pushed.get('dossiers_pushed')} dossiers, {pushed.get('statuses_reported')} status"
                f" reports, {pushed.get('dead')} dead) in {time.perf_counter() - start:.1f}s"
            )
            faults = {"seed": 1, "rules": [{"service": "TraCuuHoSo", "latency_ms": args.latency_ms}]}
            httpx.put(f"{mock.url}/_admin/faults", json=faults, timeout=30).raise_for_status()
            portal = {"concurrency": args.concurrency, "rate_limit": args.rate_limit}
            candidates = asyncio.run(adapter_reads(mock, db, state, work, portal, 0))["keys"]
            bare_before = asyncio.run(bare_reads(mock, candidates, args.concurrency))
            runs = [asyncio.run(adapter_reads(mock, db, state, work, portal, None)) for _ in range(args.runs)]
            ours = sorted(runs, key=lambda r: float(r["elapsed_s"]))[len(runs) // 2]  # the median run
            print(f"  adapter read-back runs: {spread([r['elapsed_s'] for r in runs], 2)} s, median kept")
            bare_after = asyncio.run(bare_reads(mock, candidates, args.concurrency))
            client_s, client_calls = asyncio.run(client_reads(mock, candidates, portal))
            n, calls = len(ours["keys"]), ours["requests"]
            bare_s = min(bare_before[0], bare_after[0])
            ours_rate, bare_rate = calls / ours["elapsed_s"], n / bare_s
            print(
                f"read-back of {n:,} candidates (portal_check all), {args.latency_ms:g} ms TraCuuHoSo"
                f" latency, {ours['concurrency']} in flight:"
            )
            print(
                f"  adapter PortalCheck.read(), rate_limit {ours['rate_limit']:g}/s:"
                f" {ours['elapsed_s']:7.2f}s {ours_rate:8,.1f} calls/s ({calls:,} calls,"
                f" {ours['found']:,} found)"
                f"; {_budget(calls, ours['elapsed_s'], ours['rate_limit'], ours['concurrency'])}"
            )
            print(
                f"  bare httpx loop, no budget, no state:  {bare_s:7.2f}s {bare_rate:8,.1f} calls/s"
                f" ({bare_before[1]:,} found; runs before and after the adapter's:"
                f" {bare_before[0]:.2f}s, {bare_after[0]:.2f}s)"
            )
            from dvcsync.reconcile import portal_check

            print(
                f"  the adapter's PortalClient alone (same budget, all gathered, no working file):"
                f" {client_s:7.2f}s {client_calls / client_s:8,.1f} calls/s; PortalCheck.read() spent"
                f" {ours['book_s']:.2f}s in the working file between chunks of {portal_check.CHUNK}"
            )
            print(
                f"  adapter / bare = {ours_rate / bare_rate:.2f}x the calls/s (the better bare run);"
                f" the latency-bound ceiling is {args.concurrency / (args.latency_ms / 1000):,.0f} calls/s"
            )
            print(
                f"  then compare() of the {ours['counts']['read']:,} answers (mapping each record):"
                f" {ours['compare_s']:.2f}s; findings (merge and compare) {ours['findings'] or 'none'};"
                f" counts {ours['counts']}"
            )
            if args.budget_check:
                budget = asyncio.run(adapter_reads(mock, db, state, work, {}, args.budget_check))
                m, seconds = budget["requests"], budget["elapsed_s"]
                rate, burst = budget["rate_limit"], budget["concurrency"]
                print(
                    f"  default budget (rate_limit {rate:g}/s, {burst} in flight), sample of"
                    f" {budget['counts']['sampled']:,}: {seconds:.2f}s for {m:,} calls ="
                    f" {m / seconds:.2f} calls/s; {_budget(m, seconds, rate, burst)}"
                )


def _budget(calls: int, seconds: float, rate: float, burst: int) -> str:
    """The client's token bucket starts full (``burst`` = concurrency tokens), then ``rate`` a second."""
    floor = max(0.0, (calls - burst) / rate)
    honoured = calls / seconds <= rate * 1.05 or calls <= burst + rate * seconds
    return (
        f"the budget's floor {floor:.2f}s ({burst} at once, then {rate:g}/s);"
        f" budget honoured: {'yes' if honoured else 'NO'}"
    )


# -------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dossiers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rebuild", action="store_true", help="build the cached data files again")
    parser.add_argument(
        "--baselines", default="plain,ordered,full", help="SQL baselines: plain (unordered), ordered, full"
    )
    parser.add_argument("--no-breakdown", action="store_true", help="skip the adapter's pieces alone")
    parser.add_argument("--profile", action="store_true", help="one more merge run under cProfile")
    parser.add_argument("--read-back", type=int, default=10_000, help="candidates to read back; 0 skips")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8, help="[portal] concurrency of the read-back")
    parser.add_argument(
        "--rate-limit", type=float, default=400.0, help="[portal] rate_limit of the read-back"
    )
    parser.add_argument(
        "--budget-check", type=int, default=1000, help="read back this many at the default 20/s; 0 skips"
    )
    add_runs_option(parser)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--province", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.province, args.state, args.profile)
        return

    load = Load("bench/reconcile.py")
    measure(args)
    load.finish()


def measure(args: argparse.Namespace) -> None:
    print(f"each merge, baseline and breakdown: the median of {args.runs} run(s)")
    if args.dossiers:
        province, state, note = data_files(args.dossiers, args.seed, args.rebuild)
        size = (province.stat().st_size + state.stat().st_size) / 1e6
        print(f"data: {args.dossiers:,} dossiers, {province.name} + {state.name} ({size:,.0f} MB); {note}")
        files = ["--province", str(province), "--state", str(state)]
        results: dict[str, dict[str, Any]] = {}
        baselines = [f"baseline-{b}" for b in args.baselines.split(",") if b]
        for mode in ("adapter", "adapter-readback", *baselines):
            results[mode] = r = median_child([mode, *files], args.runs)
            extra = ""
            if "findings" in r:
                extra = f"; {r['counts']}; findings {r['findings']}; work file {r['work_file_mb']:,.0f} MB"
            print(
                f"  {mode:18} {r['elapsed_s']:7.2f}s {args.dossiers / r['elapsed_s']:10,.0f} dossiers/s, peak"
                f" {_mb(r['hwm_kb'])} VmHWM ({_mb(r['start_kb'])} before the measured part; ru_maxrss"
                f" {_mb(r['peak_kb'])}), CPU {r['cpu_s']:.1f}s, {r['rows']:,} rows{extra};"
                f" runs {spread(r['runs_s'], 2)} s"
            )
        ours, ours_cpu = results["adapter"]["elapsed_s"], results["adapter"]["cpu_s"]
        for name, r in results.items():
            if name.startswith("baseline"):
                print(
                    f"  adapter (merge) / {name} = {ours / r['elapsed_s']:.2f}x the time,"
                    f" {ours_cpu / r['cpu_s']:.2f}x the CPU"
                )
        print(
            f"  target: under 60 s and 400 MB: merge {ours:.1f}s, {_mb(results['adapter']['hwm_kb'])};"
            f" with candidates {results['adapter-readback']['elapsed_s']:.1f}s,"
            f" {_mb(results['adapter-readback']['hwm_kb'])}"
        )
        if not args.no_breakdown:
            b = run_child(["breakdown", *files])  # one run: its parts are read, not compared
            for name, part in b.items():
                if isinstance(part, dict):
                    print(
                        f"  breakdown: {name:18} {part['elapsed_s']:7.2f}s, CPU {part['cpu_s']:6.2f}s"
                        f" ({part['rows']:,} rows)"
                    )
        if args.profile:
            p = run_child(["adapter", *files, "--profile"])
            print(f"  under cProfile: {p['elapsed_s']:.1f}s\n{p['profile']}")
    if args.read_back:
        read_back(args)


if __name__ == "__main__":
    main()
