"""Golden outputs of every shipped mapping spec, for both profiles (sample and OpenCPS).

Each profile's sample database is generated with a fixed seed, every record is read once through
its spec's source, a fixed share of records (and child rows) get a bad value planted in one
column (broken UTF-8, an impossible date, an unknown code, an overlong text, a negative or
fractional number, an empty value), and every spec maps them: top-level specs with and without
validation, ``items_of`` specs per child row, ``applies_to`` specs over every row, inbound specs
over the outbound dossiers' wire dicts. Every result (record key, skip reason, each error's five
parts, the value's ``repr``) is one line; a digest per spec catches any change, and the first
lines of each are kept in full so a failure shows what moved.

Regenerate the fixture only when a spec, code table or the sample generators change on purpose:
``.venv/bin/python -m tests.unit.mapping.golden``.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from dvcsync.mapping import MappingSet, MapResult, load_mappings
from dvcsync.province.sample import generate
from dvcsync.province.sample.opencps.generator import generate as generate_opencps
from dvcsync.province.source import SqlSource, make_engine

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO / "tests" / "fixtures" / "mapping" / "golden_outputs.json"
PROFILES: dict[str, tuple[Path, Callable[..., Any]]] = {
    "sample": (REPO / "mappings", generate),
    "opencps": (REPO / "mappings" / "opencps", generate_opencps),
}
DOSSIERS, SEED, KEPT = 800, 5, 2
BAD_VALUES: list[Any] = [
    "Nguy\udcc3n broken",
    "2025-13-45 99:00",
    "KHONG-CO-MA",
    "x" * 3000,
    None,
    "",
    "   ",
    -5,
    3.5,
    "20251345990000",
]


def _perturb(row: dict[str, Any], rng: random.Random) -> None:
    columns = sorted(k for k, v in row.items() if not isinstance(v, list))
    if columns:
        row[rng.choice(columns)] = rng.choice(BAD_VALUES)


def read_records(mset: MappingSet, db: Path) -> dict[str, list[dict[str, Any]]]:
    """Every top-level spec's records, every 5th (and every 7th child row) with one bad value."""
    out: dict[str, list[dict[str, Any]]] = {}
    engine = make_engine(f"sqlite:///{db}")
    try:
        for name in sorted(mset.specs):
            spec = mset.specs[name]
            if spec.source is None or spec.applies_to is not None:
                continue
            rng = random.Random(f"{SEED}:{name}")
            records = [dict(r) for page in SqlSource(engine, spec.source).iter_pages(500) for r in page]
            for index, record in enumerate(records):
                for child in spec.source.children:
                    rows = [dict(row) for row in record.get(child) or []]
                    for position, row in enumerate(rows):
                        if (index + position) % 7 == 3:
                            _perturb(row, rng)
                    record[child] = rows
                if index % 5 == 2:
                    _perturb(record, rng)
            out[name] = records
    finally:
        engine.dispose()
    return out


def _line(spec: str, result: MapResult) -> str:
    value = result.value
    shown = value.model_dump_json(by_alias=True) if isinstance(value, BaseModel) else repr(value)
    return json.dumps(
        [spec, result.record, result.skipped, [e.as_dict() for e in result.errors], repr(value), shown],
        ensure_ascii=False,
    )


def map_everything(mset: MappingSet, records: dict[str, list[dict[str, Any]]]) -> Iterator[str]:
    """One line per (spec, record) result, in a fixed order."""
    for source_name, rows in records.items():
        top = mset.get(source_name)
        for row in rows:
            result = top.map(row, validate=True)
            yield _line(source_name, result)
            yield _line(source_name + "/novalidate", top.map(row, validate=False))
            for name in sorted(mset.specs):
                spec = mset.specs[name]
                if spec.applies_to is not None and source_name == "dossier":
                    yield _line(name, mset.get(name).map(row))
                if spec.items_of is not None and spec.items_of.mapping == source_name:
                    for child in row.get(spec.items_of.child) or []:
                        yield _line(name, mset.get(name).map(child, parent=row, record_key=result.record))
            if source_name == "dossier" and isinstance(result.value, BaseModel):
                wire = result.value.model_dump(by_alias=True)
                for name in ("inbound_dossier", "inbound_promotion"):
                    if name in mset:
                        yield _line(name, mset.get(name).map(wire))


def compute(profile: str) -> dict[str, dict[str, Any]]:
    """Per spec: how many results (and failed ones), their digest, the first few of each in full."""
    folder, make = PROFILES[profile]
    mset = load_mappings(folder)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "onestop.db"
        make(db, DOSSIERS, SEED)
        records = read_records(mset, db)
    digests: dict[str, Any] = {}
    out: dict[str, dict[str, Any]] = {}
    for line in map_everything(mset, records):
        spec = json.loads(line)[0]
        failed = bool(json.loads(line)[3])
        entry = out.setdefault(spec, {"count": 0, "failed": 0, "first": [], "first_failed": []})
        digests.setdefault(spec, hashlib.sha256())
        digests[spec].update(line.encode("utf-8", "surrogateescape") + b"\n")
        entry["count"] += 1
        entry["failed"] += failed
        kept = entry["first_failed"] if failed else entry["first"]
        if len(kept) < KEPT:
            kept.append(line)
    for spec, entry in out.items():
        entry["sha256"] = digests[spec].hexdigest()
    return dict(sorted(out.items()))


if __name__ == "__main__":
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    data = {profile: compute(profile) for profile in PROFILES}
    FIXTURE.write_text(json.dumps(data, ensure_ascii=True, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {FIXTURE}")
