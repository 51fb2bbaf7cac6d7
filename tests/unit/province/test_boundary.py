"""The province boundary knows the schema only from configuration: the same writes on the sample
schema and on a deterministic renaming of every table and column (ids and audit columns too),
described only by a renamed province.yaml (tests/renamed_schema.py); an invalid province.yaml names
file, line and key. (No sample identifier in dvcsync/: tests/unit/test_no_sample_names.py.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from dvcsync.province.payments import PaymentLedger
from dvcsync.province.sample.schema import DDL
from dvcsync.province.schema import ProvinceSchema, ProvinceSchemaError, load_schema
from dvcsync.province.sink import SqlSink
from dvcsync.province.source import make_engine

from ...renamed_schema import ROOT, rename, renamed_ddl, renamed_schema_file


def _db(path: Path, ddl: str) -> str:
    with sqlite3.connect(path) as conn:
        conn.executescript(ddl)
    return f"sqlite:///{path}"


def _row(schema: ProvinceSchema, code: str) -> dict[str, Any]:
    d, f = schema.dossiers, schema.fees
    sample = {
        "so_ho_so": code, "ma_ho_so_qg": code, "ma_thu_tuc": "P1", "chu_ho_so": "Nguyễn Văn A",
        "loai_chu_ho_so": "cong_dan", "kenh_nop": "truc_tuyen", "trang_thai": "paying", "ma_don_vi": "H40",
        "nguon": "dvcqg",
    }  # fmt: skip
    row: dict[str, Any] = {rename_if(schema, k): v for k, v in sample.items()}
    row[schema.fees.table] = [
        {f.amount: 50_000, f.collection: f.ahead, f.paid: f.paid_no, rename_if(schema, "ten_phi"): "Lệ phí",
         rename_if(schema, "loai_phi"): "le_phi"},
    ]  # fmt: skip
    assert d.key in row and d.portal_code in row
    return row


def rename_if(schema: ProvinceSchema, name: str) -> str:
    return name if schema == ProvinceSchema() else rename(name)


def _outcome(url: str, schema: ProvinceSchema) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        sink = SqlSink(engine, schema, key_column=schema.dossiers.portal_code)
        first = sink.create(schema.dossiers.table, _row(schema, "G1"))
        again = sink.create(schema.dossiers.table, _row(schema, "G1"))
        sink.create(schema.dossiers.table, _row(schema, "G2"))
        ledger = PaymentLedger(engine, schema)
        due = ledger.due()
        attempt = ledger.create_attempt(due[0], "2026-01-02T03:04:05")
        paid = ledger.apply_paid(attempt.reference, "TXN", "BANK")
        paid_again = ledger.apply_paid(attempt.reference, "TXN", "BANK")
        withdrawn = sink.withdraw("G2", allowed=frozenset({"paying"}), status="cancelled")
        owed = ledger.owed("G1")
        reconcile = next(iter(ledger.attempts_settled_between("2000-01-01", "2100-01-01")))
    finally:
        engine.dispose()
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        counts = {
            kind: conn.execute(f"SELECT COUNT(*) FROM {getattr(schema, kind).table}").fetchone()[0]
            for kind in ("dossiers", "steps", "fees", "payments")
        }
    return {
        "created": (first[1], again[1], first[0] == again[0]),
        "due": [(d.dossier_key, d.amount, d.stage) for d in due],
        "paid": (paid, paid_again, ledger.attempt(attempt.reference).state),  # type: ignore[union-attr]
        "withdrawn": withdrawn[:2],
        "owed": owed,
        "reconcile": (reconcile["dossier"], reconcile["amount"], reconcile["state"]),
        "counts": counts,
    }


def test_renamed_schema_same_outcomes(tmp_path: Path) -> None:
    original = _outcome(_db(tmp_path / "a.db", DDL), load_schema(ROOT / "mappings"))
    (tmp_path / "m").mkdir()
    renamed_schema_file(tmp_path / "m")
    schema = load_schema(tmp_path / "m")
    assert schema.dossiers.table == rename("ho_so") and schema.payments.reference == rename("ma_tham_chieu")
    renamed = _outcome(_db(tmp_path / "b.db", renamed_ddl()), schema)
    assert renamed == original
    assert original["created"] == (True, False, True)
    assert original["paid"] == (True, False, "paid")
    assert original["withdrawn"] == (True, "paying")
    assert original["counts"] == {"dossiers": 2, "steps": 1, "fees": 2, "payments": 1}


def test_counter_ids(tmp_path: Path) -> None:
    """Ids made by the application's counter row (OpenCPS/Liferay): incremented per insert."""
    url = _db(tmp_path / "c.db", DDL + "CREATE TABLE counter (name TEXT PRIMARY KEY, currentid INTEGER);")
    base = ProvinceSchema()
    ids = {"strategy": "counter", "counter_name": "dossier"}
    schema = ProvinceSchema.model_validate({"dossiers": {**base.dossiers.model_dump(), "ids": ids}})
    engine = make_engine(url)
    try:
        sink = SqlSink(engine, schema, key_column=schema.dossiers.portal_code)
        made = [sink.create("ho_so", _row(base, code))[0] for code in ("A", "B")]
    finally:
        engine.dispose()
    assert made == [1, 2]
    with sqlite3.connect(tmp_path / "c.db") as conn:
        assert conn.execute("SELECT currentid FROM counter WHERE name = 'dossier'").fetchone() == (2,)


def test_invalid_schema_names_file_line_key(tmp_path: Path) -> None:
    (tmp_path / "province.yaml").write_text(
        "dossiers:\n  table: ho_so\n  id_column: id\nsteps:\n  ids: {strategy: sequence}\n", encoding="utf-8"
    )
    with pytest.raises(ProvinceSchemaError) as caught:
        load_schema(tmp_path)
    text = str(caught.value)
    assert f"{tmp_path / 'province.yaml'}:3: dossiers.id_column: unknown key 'id_column'" in text
    assert "province.yaml:5: steps.ids:" in text and "needs 'sequence'" in text
