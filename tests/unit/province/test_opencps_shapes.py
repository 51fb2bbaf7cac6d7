"""The OpenCPS shapes of province.yaml (issue #19 item 5) on a generated OpenCPS database: an
attempt written on the fee rows it bills (``payments.on_fees``), when a fee is collected derived
from ``advanceAmount``, national codes in their own table, ratings through the question they
answer; and the schema refusing what cannot work."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from dvcsync.province.catalogue import local_procedures
from dvcsync.province.payments import CREATED, FAILED, PAID, PaymentLedger
from dvcsync.province.ratings import ratings_between
from dvcsync.province.sample.opencps import generate
from dvcsync.province.schema import ProvinceSchema, ProvinceSchemaError, load_schema, parse_schema

OPENCPS = Path(__file__).resolve().parents[3] / "mappings" / "opencps"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("opencps") / "opencps.db"
    generate(path, 400, 7)
    return path


@pytest.fixture
def engine(database: Path, tmp_path: Path) -> Iterator[Engine]:
    copy = tmp_path / "onestop.db"
    copy.write_bytes(database.read_bytes())
    made = create_engine(f"sqlite:///{copy}")
    yield made
    made.dispose()


def _rows(engine: Engine, sql: str, *params: object) -> list[tuple[object, ...]]:
    path = engine.url.database
    assert path
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def test_an_attempt_on_fee_rows_is_billed_paid_once_and_billed_again_after_failing(engine: Engine) -> None:
    ledger = PaymentLedger(engine, load_schema(OPENCPS))
    key = ledger.request_payment("processing")
    assert key is not None
    ((dossier_id, ahead),) = _rows(
        engine,
        "SELECT d.dossierId, SUM(f.paymentAmount) FROM opencps_dossier d JOIN opencps_paymentfile f"
        " ON f.dossierId = d.dossierId AND f.advanceAmount <> 0 WHERE d.dossierNo = ? GROUP BY d.dossierId",
        key,
    )
    (due,) = [d for d in ledger.due() if d.dossier_key == key]
    assert (due.amount, due.stage) == (ahead, ledger.ahead)

    first = ledger.create_attempt(due, "2026-12-01T09:00:00")
    read = ledger.attempt(first.reference)
    assert read is not None and (read.amount, read.state, read.dossier_key) == (ahead, CREATED, key)
    assert key not in {d.dossier_key for d in ledger.due()}, "billed twice while an attempt is open"
    assert ledger.owed(key) == (ledger.ahead, ahead)  # the bill stays the same while it is paid

    assert ledger.mark_failed(first.reference, "2026-12-01T09:05:00")
    failed = ledger.attempt(first.reference)
    assert failed is not None and failed.state == FAILED
    assert key not in {d.dossier_key for d in ledger.due(retry_after_s=10**9)}  # not asked again at once
    (again,) = [d for d in ledger.due() if d.dossier_key == key]
    second = ledger.create_attempt(again, "2026-12-01T10:00:00")
    assert ledger.attempt(first.reference) is None  # its rows carry the new attempt now

    assert ledger.apply_paid(second.reference, "GD-1", "NCB", "2026-12-01T10:01:00")
    assert not ledger.apply_paid(second.reference, "GD-1", "NCB", "2026-12-01T10:02:00")
    paid = ledger.attempt(second.reference)
    assert paid is not None and (paid.state, paid.amount) == (PAID, ahead)
    assert ledger.owed(key) == (ledger.ahead, 0)
    statuses = _rows(
        engine,
        "SELECT DISTINCT paymentStatus, confirmNote, bankInfo FROM opencps_paymentfile"
        " WHERE dossierId = ? AND advanceAmount <> 0",
        dossier_id,
    )
    assert statuses == [(2, "GD-1", "NCB")]
    assert [a.reference for a in ledger.without_receipt()] == [second.reference]
    ledger.record_receipt(second.reference, "/receipts/x.pdf")
    assert ledger.without_receipt() == []
    (compared,) = ledger.attempts_by_ref([second.reference]).values()
    assert (compared["dossier"], compared["amount"], compared["state"]) == (key, ahead, PAID)


def test_generated_payment_files_are_not_attempts(engine: Engine) -> None:
    ledger = PaymentLedger(engine, load_schema(OPENCPS))
    assert ledger.attempts(CREATED) == [] and ledger.attempts(PAID) == [] and ledger.without_receipt() == []


def test_the_catalogue_takes_national_codes_from_their_table_and_days_from_text(engine: Engine) -> None:
    rows = {r.code: r for r in local_procedures(engine, load_schema(OPENCPS))}
    mapped = dict(_rows(engine, "SELECT serviceCode, serviceCodeDVCQG FROM opencps_serviceinfomapping"))
    assert len(rows) == len(_rows(engine, "SELECT 1 FROM opencps_serviceinfo"))
    assert {code: r.national_code for code, r in rows.items() if r.national_code} == mapped
    assert all(r.days is not None and r.days > 0 and not r.unverified for r in rows.values())


def test_ratings_are_read_through_the_question_they_answer(engine: Engine) -> None:
    found = ratings_between(engine, date(2020, 1, 1), date(2030, 1, 1), load_schema(OPENCPS))
    (count,) = _rows(
        engine,
        "SELECT COUNT(*) FROM opencps_votingresult r JOIN opencps_voting v ON v.votingId = r.votingId"
        " WHERE v.className = 'dossier'",
    )[0]
    assert found and len(found) == count
    assert {level for _p, _a, level, _m in found} == {"1", "2", "3"}


def test_the_schema_refuses_what_cannot_work(tmp_path: Path) -> None:
    schema = ProvinceSchema.model_validate({"payments": {"on_fees": True, "table": "elsewhere"}})
    with pytest.raises(ValueError, match=r"payments\.table .elsewhere. must be fees\.table"):
        PaymentLedger(create_engine("sqlite://"), schema)
    bad = tmp_path / "province.yaml"
    bad.write_text("payments:\n  state_created: 0\n  state_failed: 0\n", encoding="utf-8")
    with pytest.raises(ProvinceSchemaError, match="must differ"):
        parse_schema(bad)
    bad.write_text("fees:\n  collection: {column: advanceAmount, values: []}\n", encoding="utf-8")
    with pytest.raises(ProvinceSchemaError, match=r"fees\.collection"):
        parse_schema(bad)
