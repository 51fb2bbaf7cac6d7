"""What generating the sample one-stop database costs, against the bare cost of writing its rows.

In the same process and on the same disk:
  (a) ``generate`` with secondary indexes built after the load (the default),
  (b) ``generate`` with the indexes of ``schema.DDL`` present during the load,
  (c) the baseline: ``executemany`` of the same number of rows per table, constant data (only the
      keys vary), same schema, pragmas and single transaction: the floor no generator can beat.
Prints dossiers/s, rows/s per table, elapsed seconds and the ratios to the baseline (each figure
the median of ``--runs`` runs, default 3, (a) and (b) alternating), and the load average at the
start and end.
Run: ``.venv/bin/python -P bench/sample_db.py [N] [SEED] [--runs 3]`` (N defaults to 100,000).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dvcsync.province.sample import GenerateStats, generate
from dvcsync.province.sample.schema import DDL

sys.path.append(str(Path(__file__).resolve().parents[1]))  # `-P` leaves the repository off the path
from bench._runs import Load, add_runs_option

T = "2025-03-04T09:15:00"


def _constant_rows(table: str, n: int, dossiers: int) -> Iterator[tuple[Any, ...]]:
    """``n`` rows of ``table`` that satisfy its keys and constraints, otherwise constant."""
    owner = max(dossiers, 1)
    if table == "don_vi":
        return (
            (i, f"DV-{i}", "Ủy ban nhân dân xã Tân Phú", "xa", "2008-01-01", None, None)
            for i in range(1, n + 1)
        )
    if table == "thu_tuc":
        return (
            (i, f"TT-{i}", "Đăng ký khai sinh", "1.001193", "TP-HT", "Hộ tịch", 3, 0, T)
            for i in range(1, n + 1)
        )
    if table == "ho_so":
        return (
            (
                i,
                f"000.00.41.H40-250304-{i:06d}",
                "HT-KS-01",
                "Nguyễn Văn An",
                "cong_dan",
                "040085000123",
                "0912345678",
                "annguyen85@gmail.com",
                "Số 12, đường Lê Lợi, phường Hà Sơn, tỉnh Sơn Hà",
                "truc_tiep",
                "Đăng ký khai sinh cho cháu Nguyễn Minh Khôi",
                T,
                T,
                T,
                T,
                T,
                None,
                "done",
                "H40-XA-NEW-01",
                "tai_quay",
                "mot_cua",
                None,
                None,
                T,
                T,
            )
            for i in range(1, n + 1)
        )
    if table == "qua_trinh_xu_ly":
        per = -(-n // owner)
        return (
            (
                i,
                1 + (i - 1) // per,
                1 + (i - 1) % per,
                "Trần Thị Hoa",
                "Chuyên viên",
                "Bộ phận Một cửa",
                "Thụ lý, thẩm định hồ sơ",
                "processing",
                T,
                T,
                T,
            )
            for i in range(1, n + 1)
        )
    if table == "le_phi":
        return (
            (i, 1 + i % owner, "LP-HT-KS", "Lệ phí đăng ký khai sinh", "le_phi", "thu_truoc", 8000, 1)
            for i in range(1, n + 1)
        )
    if table == "thanh_toan":
        return (
            (
                i,
                1 + i % owner,
                f"H40TT250304{i:07d}",
                8000,
                "paid",
                "FT25030412345678",
                "VCB",
                T,
                T,
                "bienlai/x.pdf",
            )
            for i in range(1, n + 1)
        )
    if table == "tai_lieu":
        return (
            (
                i,
                1 + i % owner,
                "nop",
                "Tờ khai đăng ký khai sinh theo mẫu.pdf",
                "HT-KS-01-TP01",
                f"https://motcua.h40.example.vn/files/{i}/to-khai.pdf",
                1,
                0,
            )
            for i in range(1, n + 1)
        )
    if table == "danh_gia":  # one rating a dossier at most (ho_so_id is UNIQUE)
        return ((i, i, "hai_long", T, None, T) for i in range(1, n + 1))
    raise ValueError(f"unknown table {table!r}")


def baseline(path: Path, rows: dict[str, int], dossiers: int) -> tuple[float, dict[str, float]]:
    """Seconds to write ``rows`` constant rows per table the way ``generate`` writes (indexes last),
    in total and per table (the ``executemany`` alone)."""
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-131072")
    conn.execute("PRAGMA temp_store=MEMORY")
    tables = "\n".join(line for line in DDL.splitlines() if not line.startswith("CREATE INDEX"))
    conn.executescript(tables)
    conn.execute("BEGIN")
    per_table = {}
    for table, n in rows.items():
        width = len(conn.execute(f"SELECT * FROM {table} LIMIT 0").description)
        table_started = time.perf_counter()
        conn.executemany(
            f"INSERT INTO {table} VALUES ({', '.join('?' * width)})", _constant_rows(table, n, dossiers)
        )
        per_table[table] = time.perf_counter() - table_started
    conn.execute("COMMIT")
    for line in DDL.splitlines():
        if line.startswith("CREATE INDEX"):
            conn.execute(line)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return time.perf_counter() - started, per_table


def _report(label: str, stats: GenerateStats, base: float, base_tables: dict[str, float]) -> None:
    """Rows/s per table are the table's rows over the whole run (tables are written interleaved),
    next to the baseline's rows/s for that table's ``executemany`` alone."""
    secs = stats.elapsed_seconds
    size = os.path.getsize(stats.path) / 1e6
    print(
        f"\n{label}: {secs:.2f} s, {stats.dossiers / secs:,.0f} dossiers/s, "
        f"{stats.total_rows / secs:,.0f} rows/s, {size:.0f} MB, {secs / base:.2f}x baseline"
    )
    print(f"  {'table':<16} {'rows':>9}  {'rows/s':>11}  {'baseline rows/s':>15}")
    for table, n in stats.rows.items():
        print(f"  {table:<16} {n:>9,}  {n / secs:>11,.0f}  {n / max(base_tables[table], 1e-9):>15,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", nargs="?", type=int, default=100_000, help="dossiers generated")
    parser.add_argument("seed", nargs="?", type=int, default=42)
    add_runs_option(parser)
    args = parser.parse_args()
    n, seed, repeat = args.n, args.seed, max(1, args.runs)
    load = Load("bench/sample_db.py")
    print(f"sample_db bench: {n:,} dossiers, seed {seed}, median of {repeat} run(s)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # Alternate the two variants and keep each one's median run: a single run on a shared 2-core
        # machine varies by ±10 %, as much as the difference being measured.
        runs: dict[bool, list[GenerateStats]] = {True: [], False: []}
        for _ in range(repeat):
            for defer in (True, False):
                runs[defer].append(
                    generate(folder / f"defer-{defer}.db", n, seed, defer_indexes=defer, overwrite=True)
                )
        deferred = _median_run(runs[True])
        upfront = _median_run(runs[False])
        bases = sorted(
            (baseline(folder / f"baseline-{k}.db", deferred.rows, n) for k in range(repeat)),
            key=lambda run: run[0],
        )
        base, base_tables = bases[len(bases) // 2]
        print(
            f"\nbaseline (constant rows, executemany, same schema): {base:.2f} s, "
            f"{deferred.total_rows / base:,.0f} rows/s"
        )
        _report("generate, indexes after the load", deferred, base, base_tables)
        _report("generate, indexes during the load", upfront, base, base_tables)
        ratio = deferred.elapsed_seconds / upfront.elapsed_seconds
        print(f"\nindexes after vs during the load: {ratio:.2f}x the time")
        print(
            f"generation cost above the bare writes: {deferred.elapsed_seconds - base:.2f} s "
            f"({(deferred.elapsed_seconds - base) / n * 1e6:.0f} µs per dossier)"
        )
    load.finish()


def _median_run(runs: list[GenerateStats]) -> GenerateStats:
    return sorted(runs, key=lambda s: s.elapsed_seconds)[len(runs) // 2]


if __name__ == "__main__":
    main()
