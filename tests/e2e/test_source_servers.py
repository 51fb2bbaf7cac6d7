"""The province's database on a real server, PostgreSQL and MariaDB (OpenCPS's own), for both
profiles (the sample, OpenCPS v2): a generated sample copied there with real column types
(``timestamp``/``DATETIME`` date-times, integer keys; OpenCPS's camelCase names as they are),
then the CLI as an operator runs it against the mock portal over real HTTP:

- ``sync push`` sends what the mappings make of the server's rows (the same as of the SQLite
  original: date-time values map as their text did), then exactly the rows that change, a late
  commit inside the look-back included, then nothing;
- ``sync pull`` writes portal-submitted dossiers into the server (ids by the database or by
  OpenCPS's counter table);
- ``sync payments`` bills a dossier awaiting payment and records it paid (sample profile).

The servers are private ones the tests start (tests/postgres.py, tests/mariadb.py); without
their binaries the tests skip, unless CI requires them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from dvcsync.demo import seed_portal_side
from dvcsync.mapping import load_mappings
from dvcsync.province.sample import generate as generate_sample
from dvcsync.province.sample.opencps.generator import generate as generate_opencps
from mock_portal.testing import RunningMock

from .. import mariadb, postgres
from ..every_job import Own, assert_portal_holds, expected, opencps_submitted
from ..source_servers import copy_sqlite
from .conftest import REPO
from .test_pull import portal_dossier

pytestmark = pytest.mark.slow

DOSSIERS = 300
PROFILES = {"sample": REPO / "mappings", "opencps": REPO / "mappings" / "opencps"}
SERVERS: dict[str, Callable[[], Any]] = {
    "postgresql": postgres.postgres_server,
    "mariadb": mariadb.mariadb_server,
}
CREATE = {"postgresql": postgres.create_database, "mariadb": mariadb.create_database}
# How a dossier moves on (the portal refuses a jump it does not allow), and OpenCPS's action for it.
NEXT = {"receiving": "processing", "waiting": "processing", "processing": "releasing"}
NATIONAL = {"processing": "4", "releasing": "9"}
ACTION_COLUMNS = [
    "dossierActionId",
    "dossierId",
    "previousActionId",
    "actionCode",
    "actionUser",
    "actionName",
    "actionNote",
    "stepCode",
    "stepName",
    "createDate",
    "modifiedDate",
]
OPENCPS_STEPS = {
    "processing": {
        "code": "2100",
        "action": "Chuyển thụ lý",
        "step": "300",
        "step_name": "Thụ lý",
        "sub": "processing_1",
    },
    "releasing": {
        "code": "5100",
        "action": "Chuyển trả kết quả",
        "step": "900",
        "step_name": "Chờ trả kết quả",
        "sub": "releasing_0",
    },
}


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """``(kind, server URL)``: one private server per kind for the module."""
    with SERVERS[request.param]() as url:
        yield request.param, url


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("source-servers")
    generate_sample(folder / "sample.db", DOSSIERS, 42)
    generate_opencps(folder / "opencps.db", DOSSIERS, 42)
    return {"sample": folder / "sample.db", "opencps": folder / "opencps.db"}


class Province:
    """The profile's dossier table on the server, in the profile's own names."""

    def __init__(self, profile: str, url: str) -> None:
        self.profile, self.url = profile, url
        self.engine: Engine = create_engine(url)
        q = self.engine.dialect.identifier_preparer.quote
        self.q = q
        if profile == "sample":
            self.table, self.id, self.key, self.updated = "ho_so", "id", "so_ho_so", "updated_at"
            self.status, self.summary = "trang_thai", "trich_yeu"
        else:
            self.table, self.id, self.key, self.updated = (
                "opencps_dossier",
                "dossierId",
                "dossierNo",
                "modifiedDate",
            )
            self.status, self.summary = "dossierStatus", "dossierNote"

    def one(self, sql: str, **bind: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), bind).scalar_one()

    def latest(self) -> datetime:
        value = self.one(f"SELECT MAX({self.q(self.updated)}) FROM {self.q(self.table)}")
        assert isinstance(value, datetime), (
            f"{self.table}.{self.updated} is {type(value).__name__}, not DATETIME"
        )
        return value

    def own_rows(self, own: Own, statuses: tuple[str, ...] = ()) -> list[tuple[int, str, str]]:
        """The province's own dossiers the profile sends (in ``statuses``, if named), by id."""
        q = self.q
        own_rule = f"{q('ma_ho_so_qg')} IS NULL" if self.profile == "sample" else f"{q('systemId')} = 0"
        if statuses:
            own_rule += f" AND {q(self.status)} IN ({', '.join(repr(s) for s in statuses)})"
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT {q(self.id)}, {q(self.key)}, {q(self.status)} FROM {q(self.table)}"
                    f" WHERE {own_rule} ORDER BY {q(self.id)}"
                )
            ).all()
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows if str(r[1]) in own]

    def move_on(self, dossier_id: int, status: str, stamp: datetime) -> None:
        """The dossier moves on to ``status`` (processing or releasing) at ``stamp``: a new step
        (OpenCPS: action) and the dossier's status."""
        step = OPENCPS_STEPS[status]
        q = self.q
        with self.engine.begin() as conn:
            if self.profile == "sample":
                order = conn.execute(
                    text(f"SELECT MAX(thu_tu) + 1 FROM {q('qua_trinh_xu_ly')} WHERE ho_so_id = :d"),
                    {"d": dossier_id},
                ).scalar_one()
                conn.execute(  # the id is the database's (auto-increment / serial)
                    text(
                        "INSERT INTO qua_trinh_xu_ly (ho_so_id, thu_tu, can_bo, chuc_danh, phong_ban,"
                        " noi_dung, trang_thai, thoi_diem, bat_dau) VALUES (:d, :o, 'Đỗ Thị Mai',"
                        " 'Chuyên viên', 'Phòng Hộ tịch', 'Đã xử lý xong', :s, :t, :t)"
                    ),
                    {"d": dossier_id, "o": order, "s": status, "t": stamp},
                )
                conn.execute(
                    text("UPDATE ho_so SET trang_thai = :s, updated_at = :t WHERE id = :d"),
                    {"d": dossier_id, "s": status, "t": stamp},
                )
                return
            action, last = conn.execute(
                text(
                    f"SELECT (SELECT MAX({q('dossierActionId')}) + 1 FROM opencps_dossieraction),"
                    f" {q('dossierActionId')} FROM opencps_dossier WHERE {q('dossierId')} = :d"
                ),
                {"d": dossier_id},
            ).one()
            columns = ", ".join(q(c) for c in ACTION_COLUMNS)
            conn.execute(
                text(
                    f"INSERT INTO opencps_dossieraction ({columns}) VALUES (:a, :d, :p, :code, 'Đỗ Thị Mai',"
                    " :action, 'Đã xử lý', :step, :step_name, :t, :t)"
                ),
                {"a": action, "d": dossier_id, "p": last, "t": stamp, **step},
            )
            conn.execute(
                text(
                    f"UPDATE opencps_dossier SET {q('dossierStatus')} = :s, {q('dossierSubStatus')} = :sub,"
                    f" {q('dossierActionId')} = :a, {q('modifiedDate')} = :t WHERE {q('dossierId')} = :d"
                ),
                {"a": action, "d": dossier_id, "t": stamp, "s": status, "sub": step["sub"]},
            )

    def amend(self, dossier_id: int, note: str, stamp: datetime) -> None:
        """A summary corrected in a transaction stamped ``stamp`` (committed later than that)."""
        q = self.q
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    f"UPDATE {q(self.table)} SET {q(self.summary)} = :n, {q(self.updated)} = :t"
                    f" WHERE {q(self.id)} = :d"
                ),
                {"n": note, "t": stamp, "d": dossier_id},
            )

    def dispose(self) -> None:
        self.engine.dispose()


def _portal_holds(mock: RunningMock, own: Own) -> dict[str, dict[str, Any]]:
    with httpx.Client(base_url=mock.url, timeout=30) as client:
        return assert_portal_holds(client, own)


def _config(tmp_path: Path, mock: RunningMock, source: str, profile: str) -> Path:
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        f'[province]\nsource_url = "{source}"\nmappings = "{PROFILES[profile]}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\nsoap_url = "{mock.url}/soap"\ntimeout = 5.0\n'
        "rate_limit = 1000\nbatch_size = 100\nconcurrency = 4\n"
        f'[payment]\ninit_url = "{mock.url}/payment/init"\nquery_url = "{mock.url}/payment/query"\n'
        f'bill_url = "{mock.url}/payment/bill"\npoll_min_age_s = 0\n'
        f'receipts_dir = "{tmp_path / "receipts"}"\n'
        f'[push]\npage_size = 70\nlookback_s = 300\n[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n',
        encoding="utf-8",
    )
    return config


def _dvcsync(config: Path, *args: str) -> dict[str, Any]:
    """A CLI command with ``--json``; its summary (the command must succeed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    done = subprocess.run(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, (
        f"dvcsync {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return dict(json.loads(done.stdout)) if "--json" in args else {}


def _province(server: tuple[str, str], samples: dict[str, Path], profile: str, name: str) -> Province:
    kind, url = server
    source = CREATE[kind](url, f"{name}_{profile}")
    made = copy_sqlite(samples[profile], source)
    updated = "updated_at" if profile == "sample" else "modifiedDate"
    table = "ho_so" if profile == "sample" else "opencps_dossier"
    assert updated in made[table]  # the change column is a real date-time column there
    return Province(profile, source)


@pytest.mark.parametrize("profile", list(PROFILES))
def test_push_from_a_server_database_sends_everything_then_exactly_the_changes(
    server: tuple[str, str], samples: dict[str, Path], profile: str, mock: RunningMock, tmp_path: Path
) -> None:
    province = _province(server, samples, profile, "push")
    mset = load_mappings(PROFILES[profile])
    own, reported = expected(province.url, mset, profile)
    original, original_reported = expected(f"sqlite:///{samples[profile]}", mset, profile)
    # date-times read from DATETIME/timestamp columns map as the SQLite text did (the few rows
    # with broken UTF-8 in SQLite arrive with U+FFFD, so they may map there and not here)
    assert {c: v for c, v in own.items() if c in original} == original and len(own) - len(original) <= 3
    assert reported == original_reported and len(own) > DOSSIERS // 2 and reported
    assert seed_portal_side(mock.url, province.url, mset) == len(reported)
    config = _config(tmp_path, mock, province.url, profile)
    _dvcsync(config, "db", "upgrade")

    first = _dvcsync(config, "sync", "push", "--json")
    assert (first["dossiers_pushed"], first["statuses_reported"], first["dead"]) == (
        len(own),
        len(reported),
        0,
    )
    assert first["steps_pushed"] == sum(len(h) for _, h in own.values())
    before = _portal_holds(mock, own)
    quiet = _dvcsync(config, "sync", "push", "--json")
    assert (quiet["dossiers_pushed"], quiet["calls"]) == (0, 0)

    # three dossiers move on after the cursor; a fourth is committed late, stamped a minute
    # before the cursor (inside the 300 s look-back): those four go, once
    top = province.latest()
    moved = province.own_rows(own, tuple(NEXT))[:3]
    late_id, late_code, _ = next(row for row in province.own_rows(own) if row not in moved)
    for dossier_id, _code, status in moved:
        province.move_on(dossier_id, NEXT[status], top + timedelta(seconds=60))
    province.amend(late_id, "Hồ sơ đã bổ sung giấy tờ (nộp muộn)", top - timedelta(seconds=60))
    changed = {code for _, code, _ in moved} | {late_code}
    assert len(changed) == 4

    second = _dvcsync(config, "sync", "push", "--json")
    assert (second["dossiers_pushed"], second["steps_pushed"], second["dead"]) == (4, 3, 0)
    now_own, _ = expected(province.url, mset, profile)
    after = _portal_holds(mock, now_own)
    for _, code, _ in moved:  # the dossier and its new history entry
        assert after[code]["writes"] == before[code]["writes"] + 2, code
    assert after[late_code]["writes"] == before[late_code]["writes"] + 1
    assert all(after[c]["writes"] == before[c]["writes"] for c in after if c not in changed)
    assert [after[code]["TrangThaiHoSo"] for _, code, status in moved] == [
        NATIONAL[NEXT[status]] for _, _, status in moved
    ]
    assert after[late_code]["TrichYeuHoSo"] == "Hồ sơ đã bổ sung giấy tờ (nộp muộn)"

    third = _dvcsync(config, "sync", "push", "--json")  # the look-back re-read: nothing new
    assert (third["dossiers_pushed"], third["calls"]) == (0, 0)
    province.dispose()


def _submitted(profile: str) -> list[dict[str, Any]]:
    if profile == "sample":
        return [portal_dossier(n) for n in range(7100, 7105)]
    return opencps_submitted(("An", "Bình", "Chi", "Dũng", "Giang"))


@pytest.mark.parametrize("profile", list(PROFILES))
def test_pull_takes_portal_dossiers_into_a_server_database(
    server: tuple[str, str], samples: dict[str, Path], profile: str, mock: RunningMock, tmp_path: Path
) -> None:
    province = _province(server, samples, profile, "pull")
    mset = load_mappings(PROFILES[profile])
    seeded = seed_portal_side(mock.url, province.url, mset)  # submitted earlier, taken in already
    submitted = _submitted(profile)
    httpx.post(
        f"{mock.url}/_admin/portal-dossiers",
        params={"push": "false"},
        json={"dossiers": submitted},
        timeout=30,
    ).raise_for_status()
    q = province.q
    highest = province.one(f"SELECT MAX({q(province.id)}) FROM {q(province.table)}")
    config = _config(tmp_path, mock, province.url, profile)
    _dvcsync(config, "db", "upgrade")

    pulled = _dvcsync(config, "sync", "pull", "--json")
    assert (pulled["created"], pulled["already_in_province"], pulled["failed"]) == (5, seeded, 0)
    codes = [d["MaHoSo"] for d in submitted]
    with province.engine.connect() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    f"SELECT * FROM {q(province.table)} WHERE {q(province.id)} > :h ORDER BY {q(province.id)}"
                ),
                {"h": highest},
            )
        ]
        if profile == "opencps":
            counter = conn.execute(
                text(f"SELECT {q('currentId')} FROM counter WHERE name = :n"),
                {"n": "org.opencps.dossiermgt.model.Dossier"},
            ).scalar_one()
    assert [r[province.key] for r in rows] == codes
    assert [r[province.id] for r in rows] == list(range(highest + 1, highest + 6))  # the next ids, in order
    for row in rows:
        assert isinstance(row[province.updated], datetime)  # written into the DATETIME/timestamp column
    if profile == "opencps":
        assert counter == highest + 5  # Liferay's counter moved with them
        assert {(r["systemId"], r["dossierStatus"], r["referenceUid"] == r["dossierNo"]) for r in rows} == {
            (5, "new", True)
        }
    else:
        assert [r["ma_ho_so_qg"] for r in rows] == codes
        with province.engine.connect() as conn:
            fees = conn.execute(
                text("SELECT COUNT(*) FROM le_phi WHERE ho_so_id > :h"), {"h": highest}
            ).scalar_one()
        assert fees == 5

    again = _dvcsync(config, "sync", "pull", "--json")  # acknowledged: nothing comes twice
    assert again["created"] == 0
    pushed = _dvcsync(config, "sync", "push", "--json")  # new on both sides: nothing to say of them
    assert (pushed["statuses_reported"], pushed["dead"]) == (seeded, 0)
    province.dispose()


def test_payments_bill_and_settle_on_a_server_database(
    server: tuple[str, str], samples: dict[str, Path], mock: RunningMock, tmp_path: Path
) -> None:
    """Sample profile (the OpenCPS profile runs no payments): a dossier awaiting payment is billed
    (INIT: an attempt row with the database's id), paid on the platform, and recorded paid."""
    province = _province(server, samples, "sample", "payments")
    with province.engine.begin() as conn:
        dossier_id, code = conn.execute(
            text(
                "SELECT h.id, h.so_ho_so FROM ho_so h JOIN le_phi l ON l.ho_so_id = h.id"
                " WHERE h.trang_thai = 'processing' AND l.hinh_thuc_thu = 'thu_truoc' AND l.so_tien > 0"
                " ORDER BY h.id LIMIT 1"
            )
        ).one()
        conn.execute(
            text("UPDATE le_phi SET da_thanh_toan = 0 WHERE ho_so_id = :d AND hinh_thuc_thu = 'thu_truoc'"),
            {"d": dossier_id},
        )
        conn.execute(
            text("UPDATE ho_so SET trang_thai = 'paying', updated_at = :t WHERE id = :d"),
            {"t": province.latest() + timedelta(seconds=1), "d": dossier_id},
        )
        owed = conn.execute(
            text("SELECT SUM(so_tien) FROM le_phi WHERE ho_so_id = :d AND hinh_thuc_thu = 'thu_truoc'"),
            {"d": dossier_id},
        ).scalar_one()
        highest = conn.execute(text("SELECT MAX(id) FROM thanh_toan")).scalar_one()
    config = _config(tmp_path, mock, province.url, "sample")
    _dvcsync(config, "db", "upgrade")

    billed = _dvcsync(config, "sync", "payments", "--json")
    assert (billed["initiated"], billed["errors"]) == (1, 0)
    with province.engine.connect() as conn:
        attempt = conn.execute(
            text(
                "SELECT id, ma_tham_chieu, so_tien, trang_thai, thoi_gian_tao FROM thanh_toan WHERE id > :h"
            ),
            {"h": highest},
        ).one()
    assert (attempt.id, attempt.so_tien, attempt.trang_thai) == (highest + 1, owed, "created")
    assert isinstance(attempt.thoi_gian_tao, datetime) and code in attempt.ma_tham_chieu
    paid = httpx.post(f"{mock.url}/_admin/payments/{attempt.ma_tham_chieu}/pay", json={}, timeout=30)
    assert paid.status_code < 300, paid.text

    settled = _dvcsync(config, "sync", "payments", "--json")
    assert (settled["paid"], settled["errors"]) == (1, 0)
    with province.engine.connect() as conn:
        state, unpaid = conn.execute(
            text(
                "SELECT t.trang_thai, (SELECT COUNT(*) FROM le_phi l WHERE l.ho_so_id = t.ho_so_id"
                " AND l.hinh_thuc_thu = 'thu_truoc' AND l.da_thanh_toan = 0)"
                " FROM thanh_toan t WHERE t.id = :i"
            ),
            {"i": attempt.id},
        ).one()
    assert (state, unpaid) == ("paid", 0)
    province.dispose()
