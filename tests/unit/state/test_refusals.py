"""Refused inbound bodies are bounded aggregates (issue 20 item 7): thousands of distinct
bad-signature callbacks from one caller are one row with a count, first/last seen and a few masked
samples; ``db prune`` deletes it once not seen for ``keep_days``, and the earlier
one-row-per-refusal inbox digests with it; the metrics show the counts by reason."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from dvcsync.config import PaymentSettings
from dvcsync.contract import PaymentCallback
from dvcsync.province.payments import PaymentLedger
from dvcsync.province.source import make_engine
from dvcsync.server._refusals import RefusalCollector
from dvcsync.state import Inbox, StateStore
from dvcsync.state import refusals as refusals_module
from dvcsync.state.refusals import SAMPLE_CAP, Refusals
from dvcsync.sync.payment_inbound import handle_callback

DAY = 86400.0
CALLBACKS = 1200
"""Distinct forged callbacks from one caller: more than CALLER_CAP (1,000) and far more than
SAMPLE_CAP, so a row or a sample per callback, or a caller key per reference, shows. Each one is a
committed transaction, ~2 ms: the issue's 5,000 took 10-17 s of `make unit` and found nothing more."""
PERSONAL = "Nguyễn Văn An 0912345678"


@pytest.fixture
def store(state_at_head: StateStore) -> StateStore:
    return state_at_head  # a copy of the session's migrated template (tests/unit/conftest.py)


@pytest.fixture
def ledger(tmp_path: Path) -> PaymentLedger:
    # a refused signature is decided before the ledger is read: an empty province will do
    sqlite3.connect(tmp_path / "province.db").close()
    return PaymentLedger(make_engine(f"sqlite:///{tmp_path / 'province.db'}"))


def _forged(ref: str) -> bytes:
    callback = PaymentCallback(
        MaLoi="00",
        MaDoiTac="H40-QNINH",
        MaThamChieu=ref,
        SoTien=100000,
        ThoiGianGD="20260101120000",
        ThongTinGiaoDich=PERSONAL,
    ).signed("not-the-province-secret")
    return json.dumps(callback.to_wire(), ensure_ascii=False).encode()


def _rows(store: StateStore, table: str) -> int:
    with sqlite3.connect(store.engine.url.database or "") as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_distinct_forged_callbacks_add_one_row_and_prune_takes_it(
    store: StateStore, ledger: PaymentLedger
) -> None:
    assert CALLBACKS > refusals_module.CALLER_CAP, "too few callbacks to show a caller key per reference"
    inbox, payment = Inbox(store), PaymentSettings()
    started = time.time()
    for i in range(CALLBACKS):
        reply = handle_callback(_forged(f"FORGED-{i:05d}"), payment, ledger, inbox, caller="203.0.113.7")
        assert reply["MaLoi"] == "99" and "MaXacThuc" in reply["MoTaLoi"]
    assert (_rows(store, "inbox"), _rows(store, "inbound_refusal")) == (0, 1)

    [kept] = Refusals(store).list()
    assert (kept.kind, kept.caller, kept.reason, kept.count) == (
        "payment_result",
        "203.0.113.7",
        "bad_signature",
        CALLBACKS,
    )
    assert started <= kept.first_seen <= kept.last_seen <= time.time()
    assert len(kept.samples) == SAMPLE_CAP
    assert [s["fields"]["MaThamChieu"] for s in kept.samples] == [
        f"FORGED-{i:05d}" for i in range(SAMPLE_CAP)
    ]
    assert all(len(s["sha256"]) == 64 and s["bytes"] > 0 for s in kept.samples)
    with sqlite3.connect(store.engine.url.database or "") as conn:
        dump = "\n".join(conn.iterdump())
    assert "0912345678" not in dump and "Nguyễn Văn An" not in dump, (
        "a refused body's free text kept in clear"
    )

    # within keep_days the aggregate stays; once not seen for keep_days it goes
    assert "inbound_refusals" not in store.prune(30, now=kept.last_seen + 29 * DAY)
    assert _rows(store, "inbound_refusal") == 1
    assert store.prune(30, now=kept.last_seen + 31 * DAY)["inbound_refusals"] == 1
    assert _rows(store, "inbound_refusal") == 0


def test_callers_and_reasons_are_counted_apart_and_bounded(
    store: StateStore, ledger: PaymentLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, payment = Inbox(store), PaymentSettings()
    monkeypatch.setattr(refusals_module, "CALLER_CAP", 3)
    handle_callback(b"{not json", payment, ledger, inbox, caller="203.0.113.7")
    handle_callback(b"[1, 2]", payment, ledger, inbox, caller="203.0.113.7")
    for host in range(5):  # one IPv6 /64 is one caller
        handle_callback(_forged(f"R-{host}"), payment, ledger, inbox, caller=f"2001:db8::{host + 1}")
    for host in range(4):  # past the cap, new callers are counted together
        handle_callback(_forged(f"S-{host}"), payment, ledger, inbox, caller=f"198.51.100.{host + 1}")
    counted = {(r.caller, r.reason): r.count for r in Refusals(store).list()}
    assert counted == {
        ("203.0.113.7", "malformed"): 2,
        ("2001:db8::/64", "bad_signature"): 5,
        ("198.51.100.1", "bad_signature"): 1,
        ("*", "bad_signature"): 3,
    }
    assert Refusals(store).totals() == {
        ("payment_result", "malformed"): 2,
        ("payment_result", "bad_signature"): 9,
    }

    registry = CollectorRegistry()
    registry.register(RefusalCollector({"a": store.engine}))
    text = generate_latest(registry).decode()
    assert (
        'dvcsync_inbound_refused_bodies{kind="payment_result",reason="bad_signature",tenant="a"} 9.0' in text
    )
    assert 'dvcsync_inbound_refused_bodies{kind="payment_result",reason="malformed",tenant="a"} 2.0' in text


def test_prune_deletes_the_inbox_digests_earlier_versions_kept(store: StateStore) -> None:
    inbox = Inbox(store)
    for n in range(3):
        item = inbox.receive("payment_result", f"REF-{n}#refused-{n:016x}", {"MaThamChieu": f"REF-{n}"})
        inbox.mark(item.id, "rejected", error="sai mã xác thực (MaXacThuc)")
    genuine = inbox.receive("payment_result", "REF-OK", {"MaThamChieu": "REF-OK"})
    inbox.mark(genuine.id, "rejected", error="SoTien khác")
    counts = store.prune(30, now=time.time() + 31 * DAY)
    assert counts["inbox_refused"] == 3
    assert [k for k, *_ in _inbox_keys(store)] == ["REF-OK"]  # the genuine event is stubbed, kept


def _inbox_keys(store: StateStore) -> list[tuple[str, str]]:
    with sqlite3.connect(store.engine.url.database or "") as conn:
        return conn.execute("SELECT natural_key, state FROM inbox ORDER BY id").fetchall()
