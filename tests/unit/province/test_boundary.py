"""The province boundary knows the schema only from configuration: the same writes on the sample
schema and on a deterministic renaming of every table and column (ids and audit columns too),
described only by a renamed province.yaml; an invalid province.yaml names file, line and key; no
sample identifier in the boundary's code outside the shipped defaults."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapter.province.payments import PaymentLedger
from adapter.province.sample.schema import DDL
from adapter.province.schema import ProvinceSchema, ProvinceSchemaError, load_schema
from adapter.province.sink import SqlSink
from adapter.province.source import make_engine

ROOT = Path(__file__).resolve().parents[3]
IDENT = re.compile(r"\b[a-z][a-z0-9_]*\b")
SQL_WORDS = {
    "create", "table", "if", "not", "exists", "integer", "primary", "key", "text", "null", "unique",
    "references", "default", "index", "on", "collate",
}  # fmt: skip


def sample_identifiers() -> set[str]:
    """Every table and column name of the sample DDL (comments left out)."""
    code = "\n".join(line.split("--")[0] for line in DDL.splitlines())
    code = re.sub(r"'[^']*'", "", code)
    return {w for w in IDENT.findall(code) if w not in SQL_WORDS and not w.startswith("ix_")}


def rename(name: str) -> str:
    return f"q{name[::-1]}"


def renamed_ddl() -> str:
    names = sample_identifiers()
    out = []
    for line in DDL.splitlines():
        code, _, _ = line.partition("--")
        out.append(IDENT.sub(lambda m: rename(m.group(0)) if m.group(0) in names else m.group(0), code))
    return "\n".join(out)


def renamed_schema_file(folder: Path) -> Path:
    names = sample_identifiers()
    data: Any = yaml.safe_load((ROOT / "mappings" / "province.yaml").read_text(encoding="utf-8"))

    def walk(node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            # values of the withdrawal step are data; its keys are columns
            return {
                (rename(k) if key == "withdrawal" and k in names else k): walk(v, k) for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        if isinstance(node, str) and key not in ("withdrawal", "levels") and node in names:
            return rename(node)
        return node

    path = folder / "province.yaml"
    path.write_text(yaml.safe_dump(walk(data), allow_unicode=True), encoding="utf-8")
    return path


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


BOUNDARY_FILES = [
    "adapter/province/sink.py",
    "adapter/province/_sql.py",
    "adapter/province/payments.py",
    "adapter/province/reconcile.py",
    "adapter/province/catalogue.py",
    "adapter/province/ratings.py",
    "adapter/sync/take_in.py",
    "adapter/sync/pull.py",
    "adapter/sync/payment_ledger.py",
    "adapter/sync/payments.py",
    "adapter/sync/payment_inbound.py",
    "adapter/sync/satisfaction.py",
    "adapter/server/_app.py",
    "adapter/reconcile/province_state.py",
    "adapter/reconcile/repair.py",
    "adapter/catalogue/local.py",
]


# the state store's own columns (outbox, dossier_state), and the reconcile stream's row key for a
# dossier's last change, share a name with the sample's audit column
ALLOWED = {
    "adapter/reconcile/province_state.py": {"created_at", "updated_at"},
    "adapter/province/reconcile.py": {"updated_at"},
}


@pytest.mark.parametrize("name", BOUNDARY_FILES)
def test_no_sample_identifier_in_code(name: str) -> None:
    """The sample's table and column names live in province.yaml and schema.py's defaults only.
    (Files of adapter/ not listed here still carry some: see the issue's remaining items.)"""
    names = sample_identifiers() - {"id", "name", "cap"} - ALLOWED.get(name, set())
    code = (ROOT / name).read_text(encoding="utf-8")
    found = sorted({w for w in re.findall(r"\b[a-z][a-z0-9_]*\b", code) if w in names})
    assert not found, f"{name}: {found}"
