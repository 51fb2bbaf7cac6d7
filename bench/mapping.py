"""What the declarative mapping layer costs: specs vs the same mapping written by hand.

Generates a sample one-stop database, reads every dossier with its children once, then maps them
(dossier + steps) in the same process:
  (a) the spec engine with contract validation (what the sync does),
  (b) the spec engine without validation,
  (c) a hand-written function producing the same wire dict (the baseline),
  (d) the closure pipeline the specs ran on before they were compiled (``map_closures``), both ways,
  (e) the contract validation alone, over (b)'s outputs, with the models' ``model_validate`` and with
      the core-only validators the mapping uses (``FastValidator``): the floor (a) cannot go under,
  (f) the specs' shape with zero checks (``_unchecked``): one straight-line function per spec that
      only reads each column, looks plain code tables up and calls the child rows' functions, with
      a ``MapResult`` per record; no formats, UTF-8, lengths, required fields, dates or ``where``:
      the floor of (b) for what the specs map.
Each is timed ``--runs`` times (default 3) and its median kept; prints dossiers/s for each, the
ratios to the baseline and the load average at start and end. ``--profile`` prints, instead, the
functions taking the most time of (a) under cProfile.
Run: `.venv/bin/python -P bench/mapping.py [N] [--runs 3] [--profile]`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dvcsync.mapping import load_mappings
from dvcsync.mapping.engine import fast_validator
from dvcsync.mapping.pipeline import MapResult
from dvcsync.province.sample import generate
from dvcsync.province.source import SqlSource, make_engine

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))  # `-P` leaves the repository off the path
from bench._runs import Load, add_runs_option, median, median_runs, spread  # noqa: E402


def hand_written(record: dict[str, Any], procedures: dict[str, Any], agencies: Any) -> dict[str, Any]:
    def wire(v: Any) -> str:
        if not v:
            return ""
        return v[0:4] + v[5:7] + v[8:10] + v[11:13] + v[14:16] + v[17:19]

    statuses = {
        "new": "1",
        "receiving": "2",
        "denied": "3",
        "processing": "4",
        "waiting": "5",
        "paying": "6",
        "cancelled": "7",
        "unresolved": "8",
        "releasing": "9",
        "done": "10",
    }
    proc = procedures[record["ma_thu_tuc"]]
    out = {
        "MaHoSo": record["so_ho_so"],
        "MaTTHC": proc["ma_tthc"],
        "TenTTHC": proc["ten_tthc"],
        "MaLinhVuc": proc["ma_linh_vuc"],
        "TenLinhVuc": proc["ten_linh_vuc"],
        "ChuHoSo": record["chu_ho_so"],
        "LoaiDoiTuong": {"cong_dan": "1", "doanh_nghiep": "2", "co_quan": "3", "to_chuc": "4"}[
            record["loai_chu_ho_so"]
        ],
        "SoGiayToChuHoSo": record["so_giay_to"] or "",
        "SoDienThoai": record["dien_thoai"] or "",
        "Email": record["email"] or "",
        "TrichYeuHoSo": record["trich_yeu"] or "",
        "NgayNopHoSo": wire(record["ngay_nop"]),
        "NgayTiepNhan": wire(record["ngay_tiep_nhan"]),
        "NgayHenTra": wire(record["ngay_hen_tra"]),
        "NgayTra": wire(record["ngay_tra"]),
        "TrangThaiHoSo": statuses[record["trang_thai"]],
        "DonViXuLy": agencies.lookup(record["ma_don_vi"], None)["ten"],
        "DanhSachLePhi": [{"TenPhiLePhi": f["ten_phi"], "Gia": str(f["so_tien"])} for f in record["fees"]],
        "TaiLieuNop": [
            {"TepDinhKemId": str(d["id"]), "TenTepDinhKem": d["ten_tep"]}
            for d in record["documents"]
            if d["loai"] == "nop"
        ],
    }
    steps = [
        {
            "MaHoSo": record["so_ho_so"],
            "NguoiXuLy": s["can_bo"],
            "ThoiDiemXuLy": wire(s["thoi_diem"]),
            "NoiDungXuLy": s["noi_dung"],
            "TrangThai": statuses[s["trang_thai"]],
        }
        for s in record["steps"]
    ]
    out["_steps"] = steps
    return out


def _unchecked(mset: Any) -> dict[str, Any]:
    """(f): per spec, a generated function mapping its fields with no check at all (see above)."""
    functions: dict[str, Any] = {}
    for name, spec in mset.specs.items():
        cm = mset.get(name)
        names: dict[str, Any] = {"MapResult": MapResult, "functions": functions}
        lines = ["def unchecked(record, parent, key):", "    get = record.get", "    out = {}"]
        for index, (field, fs) in enumerate(spec.fields.items()):
            if fs.path is not None and fs.code is not None and not cm._codes[fs.code].dated:
                table = cm._codes[fs.code]._plain
                names[f"t{index}"] = {k: v[fs.attr] if fs.attr else v for k, v in table.items()}
                lines.append(f"    out[{field!r}] = t{index}.get(get({fs.path.split('.')[-1]!r}))")
            elif fs.path is not None and fs.path.startswith("parent."):
                lines.append(f"    out[{field!r}] = parent.get({fs.path[7:]!r})")
            elif fs.path is not None:
                lines.append(f"    out[{field!r}] = get({fs.path!r})")
            elif fs.each is not None:
                call = f"functions[{fs.mapping!r}](item, record, key).value"
                lines.append(f"    out[{field!r}] = [{call} for item in get({fs.each!r}) or ()]")
            else:  # const, exists (as "0"), the rest
                names[f"c{index}"] = fs.const if fs.exists is None else "0"
                lines.append(f"    out[{field!r}] = c{index}")
        lines.append("    return MapResult(record=key, value=out)")
        exec("\n".join(lines), names)
        functions[name] = names["unchecked"]
    return functions


def _read_sample(mset: Any, n: int) -> tuple[list[dict[str, Any]], float]:
    """``n`` generated dossiers read through the dossier spec's source, and the seconds it took."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "onestop.db"
        generate(db, n, 7)
        spec = mset.specs["dossier"]
        assert spec.source is not None
        engine = make_engine(f"sqlite:///{db}")
        t = time.perf_counter()
        records = [r for page in SqlSource(engine, spec.source).iter_pages(1000) for r in page]
        read_s = time.perf_counter() - t
        engine.dispose()
    return records, read_s


class _Timed:
    """Each way of mapping the same dossiers, timed once per call (``median_runs`` repeats them)."""

    def __init__(
        self,
        mappable: list[dict[str, Any]],
        dossier: Any,
        step: Any,
        known: Any,
        agencies: Any,
        unchecked: Any,
    ):
        self.mappable, self.dossier, self.step, self.unchecked = mappable, dossier, step, unchecked
        self.known, self.agencies = known, agencies
        self.outputs: list[tuple[Any, Any]] = []
        for r in mappable:
            result = dossier.map(r, validate=False)
            self.outputs.append((dossier.model, result.value))
            self.outputs.extend(
                (step.model, step.map(s, parent=r, record_key=result.record, validate=False).value)
                for s in r["steps"]
            )

    def specs(self, *, validate: bool) -> float:
        start = time.perf_counter()
        for r in self.mappable:
            result = self.dossier.map(r, validate=validate)
            for s in r["steps"]:
                self.step.map(s, parent=r, record_key=result.record, validate=validate)
        return time.perf_counter() - start

    def closures(self, *, validate: bool) -> float:
        start = time.perf_counter()
        for r in self.mappable:
            result = self.dossier.map_closures(r, validate=validate)
            for s in r["steps"]:
                self.step.map_closures(s, parent=r, record_key=result.record, validate=validate)
        return time.perf_counter() - start

    def validation_alone(self) -> float:
        start = time.perf_counter()
        for model, value in self.outputs:
            model.model_validate(value)
        return time.perf_counter() - start

    def fast_validation_alone(self) -> float:
        checks = [(fast_validator(model).validate_python, value) for model, value in self.outputs]
        start = time.perf_counter()
        for check, value in checks:
            check(value)
        return time.perf_counter() - start

    def zero_checks(self) -> float:
        dossier, step = self.unchecked["dossier"], self.unchecked["step"]
        start = time.perf_counter()
        for r in self.mappable:
            result = dossier(r, None, r["so_ho_so"])
            for s in r["steps"]:
                step(s, r, result.record)
        return time.perf_counter() - start

    def baseline(self) -> float:
        start = time.perf_counter()
        for r in self.mappable:
            hand_written(r, self.known, self.agencies)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", nargs="?", type=int, default=20_000, help="dossiers generated")
    parser.add_argument("--profile", action="store_true", help="cProfile the specs + validation pass")
    add_runs_option(parser)
    args = parser.parse_args()
    n = args.n
    load = Load("bench/mapping.py")
    mset = load_mappings(REPO / "mappings")
    records, read_s = _read_sample(mset, n)
    procedures = mset.codes["procedures"]
    known = {k: procedures.lookup(k) for k in procedures}
    mappable = [r for r in records if r["ma_thu_tuc"] in known]
    steps = sum(len(r["steps"]) for r in mappable)
    dossier, step = mset.get("dossier"), mset.get("step")

    timed = _Timed(mappable, dossier, step, known, mset.codes["agencies"], _unchecked(mset))
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(timed.specs, validate=True)
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)
        load.finish()
        return

    def measure(run: int) -> dict[str, float]:
        return {
            "hand-written (baseline)": timed.baseline(),
            "specs, no validation": timed.specs(validate=False),
            "specs + contract validation": timed.specs(validate=True),
            "closures, no validation": timed.closures(validate=False),
            "closures + contract validation": timed.closures(validate=True),
            "contract validation alone": timed.validation_alone(),
            "fast validation alone": timed.fast_validation_alone(),
            "specs' shape, zero checks": timed.zero_checks(),
        }

    runs = median_runs(args.runs, measure)
    base = median(runs["hand-written (baseline)"])
    print(f"{len(mappable):,} dossiers, {steps:,} steps (read from SQLite in {read_s:.2f}s)")
    print(f"medians of {args.runs} run(s); each run's dossiers/s in brackets:")
    for name, times in runs.items():
        seconds = median(times)
        rates = [len(mappable) / t for t in times]
        print(
            f"  {name:30s} {len(mappable) / seconds:10,.0f} dossiers/s  {seconds / base:5.2f}x baseline time"
            f"  [{spread(rates)}]"
        )
    load.finish()


if __name__ == "__main__":
    main()
