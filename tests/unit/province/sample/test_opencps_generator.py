"""The OpenCPS v2 sample: deterministic, in the real schema (tables.sql of VietOpenCPS/opencps-v2,
backend-dossiermgt-service: names copied here as the facts they are), and shaped like what
OpenCPS writes (drafts, dossiers received from the portal, actions as history, payment files)."""

from __future__ import annotations

import hashlib
import itertools
import re
import sqlite3
import uuid
from pathlib import Path

import pytest

from dvcsync.province.sample.opencps import OpenCPSStats, generate
from dvcsync.province.sample.opencps.export_codes import main as export_main
from dvcsync.province.sample.opencps.schema import STEPS

REPO = Path(__file__).resolve().parents[4]
N = 1500
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
SNAPSHOT = "2026-11-15 23:59:59"

# The first columns of opencps_dossier and every column of opencps_dossieraction, in tables.sql order.
DOSSIER_HEAD = [
    "uuid_",
    "dossierId",
    "groupId",
    "companyId",
    "userId",
    "userName",
    "createDate",
    "modifiedDate",
    "referenceUid",
    "counter",
    "registerBookCode",
    "registerBookName",
    "dossierRegister",
    "processNo",
    "serviceCode",
    "serviceName",
    "govAgencyCode",
    "govAgencyName",
    "applicantName",
    "applicantIdType",
    "applicantIdNo",
    "applicantIdDate",
    "address",
]
ACTION = [
    "uuid_",
    "dossierActionId",
    "companyId",
    "groupId",
    "userId",
    "userName",
    "createDate",
    "modifiedDate",
    "dossierId",
    "serviceProcessId",
    "previousActionId",
    "fromStepCode",
    "fromStepName",
    "fromSequenceNo",
    "actionCode",
    "actionUser",
    "actionName",
    "actionNote",
    "actionOverdue",
    "syncActionCode",
    "pending",
    "rollbackable",
    "stepCode",
    "stepName",
    "sequenceNo",
    "dueDate",
    "nextActionId",
    "payload",
    "stepInstruction",
    "state_",
    "eventStatus",
]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> OpenCPSStats:
    return generate(tmp_path_factory.mktemp("opencps") / "opencps.db", N, 42)


@pytest.fixture
def db(made: OpenCPSStats) -> sqlite3.Connection:
    conn = sqlite3.connect(made.path)
    conn.row_factory = sqlite3.Row
    return conn


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _digest(path: Path) -> str:
    conn = sqlite3.connect(path)
    text = "\n".join(conn.iterdump())
    conn.close()
    return hashlib.sha256(text.encode()).hexdigest()


def test_same_seed_same_database_other_seed_other_data(made: OpenCPSStats, tmp_path: Path) -> None:
    again = generate(tmp_path / "again.db", N, 42)
    other = generate(tmp_path / "other.db", N, 7)
    assert again.rows == made.rows
    assert _digest(again.path) == _digest(made.path)
    assert _digest(other.path) != _digest(made.path)


def test_the_real_tables_and_columns(db: sqlite3.Connection) -> None:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "opencps_dossier",
        "opencps_dossieraction",
        "opencps_dossierfile",
        "opencps_paymentfile",
        "opencps_dossierstatusmapping",
        "opencps_serviceinfo",
        "opencps_serviceinfomapping",
        "opencps_processstep",
        "counter",
    } <= tables
    dossier = _columns(db, "opencps_dossier")
    assert len(dossier) == 102 and dossier[: len(DOSSIER_HEAD)] == DOSSIER_HEAD
    assert {
        "dossierNo",
        "dossierStatus",
        "dossierSubStatus",
        "online_",
        "password_",
        "systemId",
        "viaPostal",
        "fromViaPostal",
        "submitDate",
        "receiveDate",
        "dueDate",
        "releaseDate",
        "finishDate",
        "dossierActionId",
        "multipleCheck",
    } <= set(dossier)
    assert dossier[-1] == "multipleCheck"
    assert _columns(db, "opencps_dossieraction") == ACTION
    assert len(_columns(db, "opencps_paymentfile")) == 36 and len(_columns(db, "opencps_dossierfile")) == 27
    assert _columns(db, "opencps_dossierstatusmapping")[-3:] == [
        "statusCode",
        "statusCodeDVCQG",
        "subStatusCode",
    ]
    assert _columns(db, "opencps_serviceinfomapping")[7:9] == ["serviceCode", "serviceCodeDVCQG"]


def test_dates_are_mysql_datetimes_from_the_seed_never_after_the_snapshot(db: sqlite3.Connection) -> None:
    for table, columns in (
        (
            "opencps_dossier",
            (
                "createDate",
                "modifiedDate",
                "submitDate",
                "receiveDate",
                "dueDate",
                "releaseDate",
                "finishDate",
            ),
        ),
        ("opencps_dossieraction", ("createDate", "modifiedDate")),
        ("opencps_paymentfile", ("createDate", "confirmDatetime")),
    ):
        for column in columns:
            values = [r[0] for r in db.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")]
            assert values, (table, column)
            assert all(DATETIME.match(v) for v in values), (table, column, values[:3])
            if column != "dueDate":  # a deadline may lie after the snapshot
                assert max(values) <= SNAPSHOT, (table, column)


def test_drafts_have_no_status_number_or_history(db: sqlite3.Connection) -> None:
    drafts = db.execute("SELECT * FROM opencps_dossier WHERE dossierStatus = ''").fetchall()
    assert 0.02 * N < len(drafts) < 0.1 * N
    for row in drafts:
        assert row["dossierNo"] == "" and row["submitting"] == 0 and row["online_"] == 1
        assert row["submitDate"] is None and row["dossierActionId"] is None
    ids = [row["dossierId"] for row in drafts]
    holes = db.execute(
        f"SELECT COUNT(*) FROM opencps_dossieraction WHERE dossierId IN ({','.join('?' * len(ids))})", ids
    ).fetchone()[0]
    assert holes == 0


def test_portal_dossiers_carry_system_5_and_the_portal_code(db: sqlite3.Connection) -> None:
    portal = db.execute("SELECT * FROM opencps_dossier WHERE systemId = 5").fetchall()
    assert len(portal) > 0.05 * N
    for row in portal:
        assert row["referenceUid"] == row["dossierNo"] == row["originDossierNo"]
        assert re.fullmatch(r"G22\.99-\d{6}-\d{6}", row["dossierNo"])
        assert row["online_"] == 1 and row["originality"] == 1
    own = db.execute(
        "SELECT referenceUid, dossierNo, originDossierNo FROM opencps_dossier WHERE systemId = 0"
    ).fetchall()
    assert {r[0] for r in own}.isdisjoint({r["referenceUid"] for r in portal})
    for reference, number, origin in own:  # every dossier of its own has a UUID, filled: not a portal test
        assert uuid.UUID(reference).version == 4 and origin is None  # province.yaml's portal_code
        assert number == "" or re.fullmatch(r"\d{3}\.\d{2}\.\d{2}\.H40-\d{6}-\d{4}", number)


def test_statuses_sub_statuses_and_history_agree(db: sqlite3.Connection) -> None:
    statuses = {r[0] for r in db.execute("SELECT DISTINCT dossierStatus FROM opencps_dossier")}
    assert {"", "receiving", "processing", "done", "releasing", "denied", "cancelled"} <= statuses
    steps = {s.code: s for s in STEPS.values()}
    rows = db.execute(
        "SELECT dossierId, dossierStatus, dossierSubStatus, dossierActionId, modifiedDate, online_"
        " FROM opencps_dossier WHERE dossierStatus <> ''"
    ).fetchall()
    actions: dict[int, list[sqlite3.Row]] = {}
    for action in db.execute("SELECT * FROM opencps_dossieraction ORDER BY dossierActionId"):
        actions.setdefault(action["dossierId"], []).append(action)
    for row in rows:
        history = actions[row["dossierId"]]
        last = history[-1]
        assert row["dossierActionId"] == last["dossierActionId"]
        assert row["dossierSubStatus"].startswith(row["dossierStatus"] + "_")
        assert steps[last["stepCode"]].sub_status == row["dossierSubStatus"]
        assert row["modifiedDate"] >= max(a["createDate"] for a in history)
        assert history[0]["stepCode"] == ("100" if row["online_"] else "200")  # online: new, else received
        assert [a["createDate"] for a in history] == sorted(a["createDate"] for a in history)
        for before, after in itertools.pairwise(history):
            assert after["previousActionId"] == before["dossierActionId"]
            assert before["nextActionId"] == after["dossierActionId"]
            assert after["fromStepCode"] == before["stepCode"]
        assert all(a["actionUser"] and len(a["actionUser"]) <= 50 and a["actionNote"] for a in history)


def test_payment_files_are_requested_or_confirmed(db: sqlite3.Connection) -> None:
    rows = db.execute("SELECT * FROM opencps_paymentfile").fetchall()
    assert rows
    assert {r["paymentStatus"] for r in rows} <= {0, 2}
    for r in rows:
        assert r["paymentAmount"] > 0 and r["paymentAmount"] == r["feeAmount"] + r["serviceAmount"]
        assert (r["confirmDatetime"] is not None) == (r["paymentStatus"] == 2)
    methods = {r["paymentMethod"] for r in rows}
    assert {"KeyPayDVCQG", "Tiền mặt"} <= methods


def test_mapping_tables_and_counters(db: sqlite3.Connection) -> None:
    mapped = {
        r[0]: r[1] for r in db.execute("SELECT serviceCode, serviceCodeDVCQG FROM opencps_serviceinfomapping")
    }
    assert mapped["HT-KS-01"] == "1.001193"
    national = {
        (r[0], r[1]): r[2]
        for r in db.execute(
            "SELECT statusCode, subStatusCode, statusCodeDVCQG FROM opencps_dossierstatusmapping"
        )
    }
    assert national[("done", "")] == "10" and national[("processing", "processing_1")] == "4"
    assert ("processing", "processing_4") not in national  # left unmapped: falls back to its status
    for table, key, name in (
        ("opencps_dossier", "dossierId", "Dossier"),
        ("opencps_dossieraction", "dossierActionId", "DossierAction"),
    ):
        (top,) = db.execute(f"SELECT MAX({key}) FROM {table}").fetchone()
        (current,) = db.execute(
            "SELECT currentId FROM counter WHERE name = ?", (f"org.opencps.dossiermgt.model.{name}",)
        ).fetchone()
        assert current == top


def test_shipped_code_tables_are_the_export() -> None:
    assert export_main(["--check", str(REPO / "mappings" / "opencps" / "codes")]) == 0


def test_refuses_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "x.db"
    target.write_bytes(b"")
    with pytest.raises(FileExistsError):
        generate(target, 1, 1)
    with pytest.raises(ValueError, match="dossiers must be >= 0"):
        generate(tmp_path / "y.db", -1, 1)


@pytest.mark.parametrize(
    ("status", "sub", "national"),
    [
        ("processing", "processing_2", "4"),  # mapped with its status
        ("processing", "processing_4", "4"),  # left out of the mapping table: its status decides
        ("releasing", "releasing_0", "9"),
        ("cancelled", "receiving_1", "7"),  # a stale sub-status never wins over its status
        ("done", "", "10"),
    ],
)
def test_the_shipped_profile_reads_sub_statuses_as_opencps_does(status: str, sub: str, national: str) -> None:
    from dvcsync.mapping import load_mappings

    report = load_mappings(REPO / "mappings" / "opencps").get("status_report")
    record = {
        "systemId": 5,
        "referenceUid": "G22.99-261120-000001",
        "dossierNo": "G22.99-261120-000001",
        "dossierStatus": status,
        "dossierSubStatus": sub,
        "modifiedDate": "2026-11-20 10:00:00",
    }
    mapped = report.map(record)
    assert mapped.ok, mapped.errors
    assert mapped.value.to_wire()["TrangThai"] == national
