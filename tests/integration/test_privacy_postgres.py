"""The same privacy guarantees on a real PostgreSQL server: a refused write's error keeps neither
the parameters nor the server's ``DETAIL`` line (which repeats the row's values), and pruning
strips settled payloads there too."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from dvcsync.province.sink import SinkError, SqlSink
from dvcsync.province.source import make_engine
from dvcsync.state import Inbox, MappedRecord, Outcome, StateStore

from ..postgres import create_database, postgres_server

ID_NUMBER, PHONE, EMAIL = "079204001234", "0912345678", "an.nguyen@example.vn"
DAY = 86400.0
T0 = 1_750_000_000.0


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.mark.parametrize("hidden", [True, False], ids=["make_engine", "plain-engine"])
def test_a_refused_write_on_postgresql_names_no_values(server: str, hidden: bool) -> None:
    url = create_database(server, f"privacy_sink_{int(hidden)}")
    engine = make_engine(url) if hidden else create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE ho_so (id SERIAL PRIMARY KEY, so_ho_so TEXT UNIQUE NOT NULL,"
                " so_giay_to TEXT UNIQUE, dien_thoai TEXT, email TEXT CHECK (email NOT LIKE '%example.vn'),"
                " created_at TEXT, updated_at TEXT)"
            )
        )
        conn.execute(text("INSERT INTO ho_so (so_ho_so, so_giay_to) VALUES ('OLD', :s)"), {"s": ID_NUMBER})
    sink = SqlSink(engine)
    row = {"so_ho_so": "NEW-1", "so_giay_to": ID_NUMBER, "dien_thoai": PHONE, "email": "x@y.vn"}
    with pytest.raises(SinkError) as unique:  # DETAIL: Key (so_giay_to)=(079204001234) already exists.
        sink.create("ho_so", row)
    with pytest.raises(SinkError) as check:  # DETAIL: Failing row contains (…, 0912345678, …).
        sink.create("ho_so", {**row, "so_giay_to": "other", "email": EMAIL})
    engine.dispose()
    assert "UniqueViolation: duplicate key value violates unique constraint" in str(unique.value)
    assert "CheckViolation: new row for relation" in str(check.value)
    for message in (str(unique.value), str(check.value)):
        assert "DETAIL" not in message and "parameters" not in message
        assert not [v for v in (ID_NUMBER, PHONE, EMAIL) if v in message]


def test_prune_on_postgresql(server: str) -> None:
    store = StateStore(create_database(server, "privacy_prune"))
    store.upgrade()
    dossier = {"MaHoSo": "A-1", "TrangThaiHoSo": "4", "SoDienThoai": PHONE, "Email": EMAIL}
    store.enqueue_page(
        [MappedRecord("A-1", 1, "2025-08-01T10:00:00", dossier), MappedRecord("A-2", 2, None, dossier)],
        cursor_name="c",
        watermark="w",
        last_key=2,
        now=T0,
    )
    first, second = store.due("dossier", 10, now=T0)
    store.record_outcomes(
        [Outcome(first.id, "A-1", "dossier", "done", payload_hash=first.payload_hash)], now=T0
    )
    item = Inbox(store).receive("portal_dossier", "G-1", {"MaHoSo": "G-1", "SoGiayToChuHoSo": ID_NUMBER})
    Inbox(store).mark(item.id, "acknowledged")
    with store.begin() as conn:
        conn.execute(text("UPDATE inbox SET updated_at = :t"), {"t": T0})

    assert store.prune(30, now=T0 + 31 * DAY, batch=1) == {
        "outbox_done": 1,
        "outbox_superseded": 0,
        "inbox": 1,
    }
    assert store.prune(30, now=T0 + 31 * DAY) == {"outbox_done": 0, "outbox_superseded": 0, "inbox": 0}
    with store.engine.connect() as conn:
        outbox = dict(conn.execute(text("SELECT record_key, payload FROM outbox")).all())
        inbox = conn.execute(text("SELECT payload FROM inbox")).scalar_one()
    store.close()
    stub = json.loads(outbox["A-1"])
    assert stub == {"pruned": True, "MaHoSo": "A-1", "hash": first.payload_hash, "TrangThaiHoSo": "4"}
    assert PHONE in outbox["A-2"]  # pending: untouched
    assert ID_NUMBER not in inbox and json.loads(inbox)["natural_key"] == "G-1"
    assert second.record_key == "A-2"
