"""``FirstContact.settle`` against a scripted portal (respx: the answer sequence is the point) and a
real SQLite state: what each read-back decides, and what the state records of it."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select

from dvcsync.config import PortalSettings
from dvcsync.portal import Backoff, PortalClient, UnreachableError
from dvcsync.state import DueEntry, MappedRecord, StateStore
from dvcsync.state.store import CONFLICT_T, DOSSIER_T, OUTBOX_T, STEP_T
from dvcsync.sync import first_contact
from dvcsync.sync.first_contact import PORTAL_ONLY_NOTE, FirstContact, _by_key_chunks
from dvcsync.sync.readback import history_fingerprint

BASE = "http://portal.test/dvcqg"
AUTH, INTEGRATION = f"{BASE}/auth", f"{BASE}/integration"
T0 = 1_800_000_000.0  # a fixed clock: nothing here depends on today


class Script:
    """The portal's side: per dossier code, the answers of its successive TraCuuHoSo calls (the
    last one repeats). An answer is a copy (dict), None (not on the portal), an HTTP status
    (int), ``("refused", code)`` or an exception to raise (a connection refused)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[Any]] = {}
        self.reads: list[str] = []
        self.writes: list[str] = []

    def on(self, code: str, *answers: Any) -> None:
        self.answers[code] = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        service = body["service"]
        if service != "TraCuuHoSo":
            self.writes.append(service)
            return httpx.Response(200, json={"error_code": 0, "message": "ok", "result": []})
        code = body["mahoso"]
        self.reads.append(code)
        queue = self.answers.get(code, [None])
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, int):
            return httpx.Response(answer, text="upstream error")
        if isinstance(answer, _Raw):
            return httpx.Response(
                200, json={"error_code": 0, "message": "Thành công", "result": answer.result}
            )
        if isinstance(answer, tuple):
            return httpx.Response(200, json={"error_code": answer[1], "message": "Từ chối", "result": []})
        result = [] if answer is None else [answer]
        return httpx.Response(200, json={"error_code": 0, "message": "Thành công", "result": result})


class _Raw:
    """A reply's ``result`` given as is (what a garbled portal may send)."""

    def __init__(self, result: Any) -> None:
        self.result = result


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def script() -> Iterator[Script]:
    portal = Script()
    with respx.mock(assert_all_called=False) as router:
        router.post(AUTH).mock(
            return_value=httpx.Response(200, json={"error_code": 0, "session": "S1", "message": "ok"})
        )
        router.post(INTEGRATION).mock(side_effect=portal)
        yield portal


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    state.prepare()
    yield state
    state.close()


def _code(n: int) -> str:
    return f"000.00.01.H40-261120-{n:06d}"


def _dossier(n: int, status: str = "4", **fields: Any) -> dict[str, Any]:
    return {
        "MaHoSo": _code(n),
        "MaTTHC": "1.001193",
        "ChuHoSo": "Nguyễn Thị Hồng Nhung",
        "TrangThaiHoSo": status,
        "NgayTiepNhan": "20261120090000",
        "GhiChu": "",
        "TaiLieuNop": [{"TepDinhKemId": f"{n}-0", "TenTepDinhKem": "To khai.pdf"}],
        **fields,
    }


def _step(n: int, k: int, what: str | None = None) -> dict[str, Any]:
    return {
        "MaHoSo": _code(n),
        "NguoiXuLy": "Cán bộ một cửa",
        "ThoiDiemXuLy": f"202611200{k}0000" if k < 10 else f"20261120{k:02d}0000",
        "NoiDungXuLy": what or f"Bước {k}",
        "TrangThai": "2",
    }


def _record(n: int, steps: int = 0, *, kind: str = "dossier", **fields: Any) -> MappedRecord:
    payload = (
        {"MaHoSo": _code(n), "NgayXuLy": "20261120100000", "TrangThai": fields.pop("status", "4"), **fields}
        if kind == "status"
        else _dossier(n, **fields)
    )
    return MappedRecord(
        record_key=_code(n),
        source_id=n,
        source_updated_at="2026-11-20T10:00:00",
        dossier=payload,
        steps=[(f"s{n}-{k}", _step(n, k)) for k in range(1, steps + 1)],
        kind=kind,
        mapping="dossier" if kind == "dossier" else "status",
    )


def _copy(
    record: MappedRecord, history: list[dict[str, Any]] | None = None, **changes: Any
) -> dict[str, Any]:
    """What the portal holds of ``record``: its payload (plus fields of its own), its history."""
    assert record.dossier is not None
    held = {**record.dossier, "NgayCapNhat": "20261121000000", **changes}
    held["QuaTrinhXuLy"] = [e for _, e in record.steps] if history is None else history
    return held


def _enqueue(store: StateStore, *records: MappedRecord) -> None:
    store.enqueue_page(list(records), cursor_name=None, watermark="", last_key=0, now=T0)


def _first_contact(store: StateStore, **portal: Any) -> FirstContact:
    settings = PortalSettings(
        adapter_url=BASE, dstcode="H40", madonvi="000.00.01.H40", rate_limit=10_000, max_attempts=2, **portal
    )
    client = PortalClient(
        settings, httpx.AsyncClient(), backoff=Backoff(rng=random.Random(1)), sleep=Sleeps()
    )
    return FirstContact(
        store,
        client,
        asyncio.Semaphore(4),
        clock=lambda: T0,
        backoff=Backoff(base=1.0, cap=300.0, rng=random.Random(2)),
    )


def _due(store: StateStore, kind: str = "dossier") -> list[DueEntry]:
    return store.due(kind, 1000, now=T0, first_contact=True)


def _settle(store: StateStore, *, send: bool, kind: str = "dossier") -> tuple[FirstContact, list[DueEntry]]:
    contact = _first_contact(store)
    entries = _due(store, kind)
    assert entries, "nothing waits for a read-back: the test no longer tests"
    return contact, asyncio.run(contact.settle(entries, send=send))


def _outbox(store: StateStore, code: str, kind: str | None = None) -> list[dict[str, Any]]:
    query = select(OUTBOX_T).where(OUTBOX_T.c.record_key == code).order_by(OUTBOX_T.c.id)
    if kind is not None:
        query = query.where(OUTBOX_T.c.kind == kind)
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def _dossier_state(store: StateStore, code: str) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return dict(conn.execute(select(DOSSIER_T).where(DOSSIER_T.c.record_key == code)).one()._mapping)


def _acked_steps(store: StateStore, code: str) -> dict[str, bool]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(STEP_T.c.step_key, STEP_T.c.acked).where(STEP_T.c.record_key == code))
        return {row.step_key: bool(row.acked) for row in rows}


def _conflicts(store: StateStore) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(CONFLICT_T).order_by(CONFLICT_T.c.id))]


# ---------------------------------------------------------------------- enqueue marks first contact


def test_enqueue_marks_a_never_met_dossier_and_its_history_for_read_back(store: StateStore) -> None:
    _enqueue(store, _record(1, steps=3))
    [dossier] = _outbox(store, _code(1), "dossier")
    [steps] = _outbox(store, _code(1), "steps")
    assert dossier["verify_first"] and steps["verify_first"]
    assert store.count_first_contacts() == 1
    assert [e.record_key for e in _due(store)] == [_code(1)]
    assert store.due("steps", 10, now=T0) == []  # no history before the portal's copy is known


# ---------------------------------------------------------------------- not on the portal


def test_not_on_the_portal_is_sent_whole_and_read_no_more(script: Script, store: StateStore) -> None:
    record = _record(1, steps=3)
    _enqueue(store, record)
    script.on(_code(1), None)
    contact, to_send = _settle(store, send=True)
    assert [(e.record_key, e.on_portal, e.verify_first) for e in to_send] == [(_code(1), False, False)]
    assert script.reads == [_code(1)] and script.writes == []  # settle itself never writes
    [dossier] = _outbox(store, _code(1), "dossier")
    [steps] = _outbox(store, _code(1), "steps")
    assert (dossier["state"], dossier["verify_first"], dossier["attempts"]) == ("pending", False, 0)
    assert (steps["state"], steps["verify_first"]) == ("pending", False)
    assert json.loads(steps["payload"])["keys"] == ["s1-1", "s1-2", "s1-3"]  # the whole history
    assert _dossier_state(store, _code(1))["on_portal"] is False
    counts = contact.counts
    assert (counts.read, counts.missing_on_portal, counts.history_missing, counts.identical) == (1, 1, 3, 0)
    assert store.count_first_contacts() == 0
    assert _due(store) == []


def test_without_send_it_stays_pending_with_what_was_read(script: Script, store: StateStore) -> None:
    _enqueue(store, _record(1, steps=2), _record(2, steps=1))
    script.on(_code(1), None)
    script.on(_code(2), _copy(_record(2, steps=1), TrangThaiHoSo="2"))
    contact, to_send = _settle(store, send=False)
    assert to_send == []
    for n, on_portal in ((1, False), (2, True)):
        [dossier] = _outbox(store, _code(n), "dossier")
        assert (dossier["state"], dossier["verify_first"], dossier["attempts"]) == ("pending", False, 0)
        assert dossier["next_attempt_at"] <= T0  # due at the next push
        assert _dossier_state(store, _code(n))["on_portal"] is on_portal
    # the next push finds them due, with the create/replace choice made
    due = {e.record_key: e for e in store.due("dossier", 10, now=T0)}
    assert {k: (e.on_portal, e.verify_first) for k, e in due.items()} == {
        _code(1): (False, False),
        _code(2): (True, False),
    }
    assert (contact.counts.missing_on_portal, contact.counts.differing) == (1, 1)


# ---------------------------------------------------------------------- identical


def test_identical_is_acknowledged_without_a_write(script: Script, store: StateStore) -> None:
    record = _record(1, steps=3)
    _enqueue(store, record)
    script.on(_code(1), _copy(record))
    contact, to_send = _settle(store, send=True)
    assert to_send == [] and script.writes == []
    [dossier] = _outbox(store, _code(1), "dossier")
    [steps] = _outbox(store, _code(1), "steps")
    assert (dossier["state"], dossier["attempts"]) == ("done", 0)
    assert (steps["state"], steps["attempts"]) == ("done", 0)
    state = _dossier_state(store, _code(1))
    assert state["on_portal"] is True and state["acked_hash"] == dossier["payload_hash"]
    assert _acked_steps(store, _code(1)) == {"s1-1": True, "s1-2": True, "s1-3": True}
    counts = contact.counts
    assert (counts.identical, counts.history_present, counts.history_missing, counts.portal_only) == (
        1,
        3,
        0,
        0,
    )
    assert store.backlog().get("pending:dossier", 0) == 0 and store.backlog().get("pending:steps", 0) == 0
    # and the dossier is no longer a first contact: enqueued again it is unchanged
    counts_again = store.enqueue_page([record], cursor_name=None, watermark="", last_key=0, now=T0)
    assert counts_again.unchanged == 1 and store.count_first_contacts() == 0


def test_the_portal_s_own_fields_and_absent_empties_are_not_differences(
    script: Script, store: StateStore
) -> None:
    record = _record(1, steps=1)
    _enqueue(store, record)
    held = _copy(record, MaCoQuan="H40", ThongTinKhac=None)
    del held["GhiChu"]  # "" in the province, absent on the portal
    held["TaiLieuNop"] = [{**record.dossier["TaiLieuNop"][0], "IdNoiBo": 99}]  # type: ignore[index]
    script.on(_code(1), held)
    contact, _ = _settle(store, send=True)
    assert contact.counts.identical == 1 and contact.counts.differing == 0


# ---------------------------------------------------------------------- held differently


def test_held_differently_is_replaced(script: Script, store: StateStore) -> None:
    record = _record(1, steps=2, status="5")
    _enqueue(store, record)
    script.on(_code(1), _copy(record, TrangThaiHoSo="4", ChuHoSo="Nguyễn Thị Nhung"))
    contact, to_send = _settle(store, send=True)
    assert [(e.record_key, e.on_portal, e.verify_first) for e in to_send] == [(_code(1), True, False)]
    assert contact.counts.differing == 1 and contact.counts.identical == 0
    assert dict(contact.counts.differing_fields) == {"ChuHoSo": 1, "TrangThaiHoSo": 1}
    # its history was on the portal already: settled, not re-sent
    [steps] = _outbox(store, _code(1), "steps")
    assert steps["state"] == "done"
    assert _dossier_state(store, _code(1))["on_portal"] is True
    [dossier] = _outbox(store, _code(1), "dossier")
    assert (dossier["state"], dossier["verify_first"]) == ("pending", False)


# ---------------------------------------------------------------------- partial history


def test_a_partial_history_leaves_only_the_missing_entries_to_send(script: Script, store: StateStore) -> None:
    record = _record(1, steps=14)  # two outbox entries: 10 and 4
    _enqueue(store, record)
    entries = [e for _, e in record.steps]
    held = [entries[i] for i in (0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 12)]  # 3, 11 and 13 are missing (0-based)
    script.on(_code(1), _copy(record, held))
    contact, to_send = _settle(store, send=True)
    assert to_send == []  # identical dossier: nothing but its history to send
    first, second = _outbox(store, _code(1), "steps")
    assert (first["state"], first["verify_first"], first["attempts"]) == ("pending", False, 0)
    assert (second["state"], second["verify_first"]) == ("pending", False)
    assert json.loads(first["payload"]) == {"keys": ["s1-4"], "entries": [entries[3]]}
    assert json.loads(second["payload"]) == {
        "keys": ["s1-12", "s1-14"],
        "entries": [entries[11], entries[13]],
    }
    counts = contact.counts
    assert (counts.history_present, counts.history_missing, counts.dossiers_history_missing) == (11, 3, 1)
    assert counts.portal_only == 0
    # the next push sends exactly those, in order (the dossier is acknowledged, so on_portal)
    [due] = store.due("steps", 10, now=T0)
    assert due.history[0] == ["s1-4"] and not due.verify_first


def test_a_step_recorded_twice_in_the_province_and_once_on_the_portal_is_sent_once(
    script: Script, store: StateStore
) -> None:
    record = _record(1)
    twice = _step(1, 1, what="Bổ sung")
    record.steps = [("s1-1", twice), ("s1-2", _step(1, 2)), ("s1-3", dict(twice))]
    _enqueue(store, record)
    script.on(_code(1), _copy(record, [twice, _step(1, 2)]))
    contact, _ = _settle(store, send=True)
    [steps] = _outbox(store, _code(1), "steps")
    assert json.loads(steps["payload"])["keys"] == ["s1-3"]
    assert (contact.counts.history_present, contact.counts.history_missing) == (2, 1)


def test_a_dossier_on_the_portal_without_history_gets_it_whole(script: Script, store: StateStore) -> None:
    record = _record(1, steps=3)
    _enqueue(store, record)
    script.on(_code(1), _copy(record, []))
    contact, _ = _settle(store, send=True)
    [steps] = _outbox(store, _code(1), "steps")
    assert steps["state"] == "pending" and not steps["verify_first"]
    assert json.loads(steps["payload"])["keys"] == ["s1-1", "s1-2", "s1-3"]
    assert (contact.counts.identical, contact.counts.history_missing) == (1, 3)


# ---------------------------------------------------------------------- portal-only


def test_entries_only_the_portal_has_are_conflicts_never_sent(script: Script, store: StateStore) -> None:
    record = _record(1, steps=2)
    _enqueue(store, record)
    foreign = _step(1, 7, what="Bước của hệ thống cũ")
    script.on(_code(1), _copy(record, [foreign, *(e for _, e in record.steps)]))
    contact, to_send = _settle(store, send=True)
    assert to_send == [] and contact.counts.portal_only == 1
    [conflict] = _conflicts(store)
    assert conflict["record_key"] == _code(1) and conflict["field"] == "QuaTrinhXuLy"
    assert conflict["note"] == PORTAL_ONLY_NOTE
    described = json.loads(conflict["portal_value"])
    assert described["NoiDungXuLy"] == "Bước của hệ thống cũ" and "MaHoSo" not in described
    assert [r["state"] for r in _outbox(store, _code(1), "steps")] == ["done"]


def test_portal_only_and_missing_together(script: Script, store: StateStore) -> None:
    record = _record(1, steps=3)
    _enqueue(store, record)
    entries = [e for _, e in record.steps]
    other = _step(1, 8, what="Khác")
    script.on(_code(1), _copy(record, [entries[0], other, entries[2]]))
    contact, _ = _settle(store, send=True)
    [steps] = _outbox(store, _code(1), "steps")
    assert json.loads(steps["payload"])["keys"] == ["s1-2"]
    assert (contact.counts.history_present, contact.counts.history_missing, contact.counts.portal_only) == (
        2,
        1,
        1,
    )
    assert len(_conflicts(store)) == 1


# ---------------------------------------------------------------------- read failures


@pytest.mark.parametrize("failure", [500, ("refused", 99)], ids=["http-500", "refused"])
def test_a_failed_read_back_is_tried_later_and_keeps_its_mark(
    script: Script, store: StateStore, failure: Any
) -> None:
    ok, failing = _record(1, steps=1), _record(2, steps=2)
    _enqueue(store, ok, failing)
    script.on(_code(1), _copy(ok))
    script.on(_code(2), failure)
    contact, to_send = _settle(store, send=True)
    assert to_send == [] and script.writes == []
    assert contact.counts.read == 1 and contact.counts.read_failed == 1
    [dossier] = _outbox(store, _code(2), "dossier")
    [steps] = _outbox(store, _code(2), "steps")
    assert dossier["state"] == "pending" and dossier["verify_first"] is True
    assert dossier["next_attempt_at"] > T0 and dossier["last_error"] == "read-back failed"
    assert steps["state"] == "pending" and steps["verify_first"] is True
    assert json.loads(steps["payload"])["keys"] == ["s2-1", "s2-2"]
    assert _dossier_state(store, _code(2))["on_portal"] is False
    assert store.count_first_contacts() == 1
    assert [r["state"] for r in _outbox(store, _code(1))] == ["done", "done"]  # the other one settled
    # later, the portal answers: it is settled like any other
    script.on(_code(2), _copy(failing))
    later = store.due("dossier", 10, now=dossier["next_attempt_at"], first_contact=True)
    assert [e.record_key for e in later] == [_code(2)]
    contact = _first_contact(store)
    asyncio.run(contact.settle(later, send=True))
    assert contact.counts.identical == 1
    assert [r["state"] for r in _outbox(store, _code(2))] == ["done", "done"]


@pytest.mark.parametrize("chunk", [256, 1], ids=["one-chunk", "unreachable-in-a-later-chunk"])
def test_an_unreachable_portal_decides_nothing(
    script: Script, store: StateStore, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """With chunks of one, the first dossier is decided before the second read fails: still nothing
    of it may be recorded (the round's decisions are committed together at its end)."""
    monkeypatch.setattr(first_contact, "READ_CHUNK", chunk)
    _enqueue(store, _record(1, steps=1), _record(2, steps=1))
    script.on(_code(1), None)
    script.on(_code(2), httpx.ConnectError("connection refused"))
    contact = _first_contact(store)
    with pytest.raises(UnreachableError):
        asyncio.run(contact.settle(_due(store), send=True))
    for n in (1, 2):
        rows = _outbox(store, _code(n))
        assert [(r["state"], r["verify_first"], r["attempts"]) for r in rows] == [
            ("pending", True, 0),
            ("pending", True, 0),
        ]
    assert store.count_first_contacts() == 2


# ---------------------------------------------------------------------- status reports


def test_a_status_report_the_portal_shows_already_is_done(script: Script, store: StateStore) -> None:
    _enqueue(store, _record(1, kind="status", status="4"), _record(2, kind="status", status="10"))
    script.on(_code(1), {"MaHoSo": _code(1), "TrangThaiHoSo": "4", "QuaTrinhXuLy": []})
    script.on(_code(2), {"MaHoSo": _code(2), "TrangThaiHoSo": "4", "QuaTrinhXuLy": []})
    contact, to_send = _settle(store, send=True, kind="status")
    assert [e.record_key for e in to_send] == [_code(2)]
    assert not to_send[0].verify_first
    assert (contact.counts.status_same, contact.counts.status_differs) == (1, 1)
    [same] = _outbox(store, _code(1))
    assert (same["state"], same["attempts"]) == ("done", 0)
    assert _dossier_state(store, _code(1))["acked_hash"] == same["payload_hash"]
    [other] = _outbox(store, _code(2))
    assert (other["state"], other["verify_first"]) == ("pending", False)


def test_a_status_report_of_a_dossier_the_portal_does_not_show_is_sent(
    script: Script, store: StateStore
) -> None:
    _enqueue(store, _record(1, kind="status", status="4"))
    script.on(_code(1), None)
    contact, to_send = _settle(store, send=False, kind="status")
    assert to_send == [] and contact.counts.status_differs == 1
    [entry] = _outbox(store, _code(1))
    assert (entry["state"], entry["verify_first"]) == ("pending", False)


# ---------------------------------------------------------------------- many at once


def test_one_read_a_dossier_and_each_decided_alone(script: Script, store: StateStore) -> None:
    records = [_record(n, steps=n % 4) for n in range(1, 41)]
    _enqueue(store, *records)
    for record in records:
        n = int(record.record_key[-3:])
        if n % 3 == 0:
            script.on(record.record_key, None)
        elif n % 3 == 1:
            script.on(record.record_key, _copy(record))
        else:
            script.on(record.record_key, _copy(record, TrangThaiHoSo="2"))
    contact, to_send = _settle(store, send=True)
    assert sorted(script.reads) == sorted(r.record_key for r in records)  # once each
    sent = {e.record_key: e.on_portal for e in to_send}
    assert sent == {
        r.record_key: int(r.record_key[-3:]) % 3 == 2 for r in records if int(r.record_key[-3:]) % 3 != 1
    }
    assert (contact.counts.missing_on_portal, contact.counts.identical, contact.counts.differing) == (
        13,
        14,
        13,
    )
    assert store.count_first_contacts() == 0
    # every history entry of a dossier the portal had is settled; the others wait whole
    pending_steps = {e.record_key for e in store.pending_history([r.record_key for r in records])}
    assert pending_steps == {r.record_key for r in records if int(r.record_key[-3:]) % 3 == 0 and r.steps}
    fingerprints = [history_fingerprint(e) for r in records for _, e in r.steps]
    assert contact.counts.history_present + contact.counts.history_missing == len(fingerprints)


# ---------------------------------------------------------------------- what must not pass for "absent"


@pytest.mark.parametrize(
    "item", [None, "000.00.01.H40-261120-000001", 7, []], ids=["null", "text", "number", "list"]
)
def test_an_unreadable_copy_is_a_failed_read_not_an_absent_dossier(
    script: Script, store: StateStore, item: Any
) -> None:
    """A reply whose dossier cannot be read says nothing about what the portal holds: taken for
    "not on the portal", the whole history would be sent again onto a dossier that may hold it."""
    _enqueue(store, _record(1, steps=3))
    script.on(_code(1), _Raw([item]))
    contact, to_send = _settle(store, send=True)
    assert to_send == [] and contact.counts.missing_on_portal == 0
    assert contact.counts.read_failed == 1
    dossier, steps = _outbox(store, _code(1))
    assert dossier["verify_first"] is True and steps["verify_first"] is True
    assert store.count_first_contacts() == 1


def test_a_crash_between_the_decisions_and_the_conflicts_loses_no_conflict(
    script: Script, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a read-back decided is recorded so that a process killed half-way either kept it all
    or reads the dossier back again: never settled entries with their conflicts forgotten."""
    record = _record(1, steps=2)
    _enqueue(store, record)
    foreign = _step(1, 7, what="Bước của hệ thống cũ")
    script.on(_code(1), _copy(record, [*(e for _, e in record.steps), foreign]))
    real = store.record_conflict

    def killed(*args: Any, **kwargs: Any) -> bool:
        raise SystemExit("killed")  # the process dies here

    monkeypatch.setattr(store, "record_conflict", killed)
    with pytest.raises(SystemExit):
        _settle(store, send=False)
    monkeypatch.setattr(store, "record_conflict", real)
    # the next run settles what is still waiting
    waiting = _due(store)
    if waiting:
        asyncio.run(_first_contact(store).settle(waiting, send=False))
    assert [(c["record_key"], json.loads(c["portal_value"])["NoiDungXuLy"]) for c in _conflicts(store)] == [
        (_code(1), "Bước của hệ thống cũ")
    ]
    assert [r["state"] for r in _outbox(store, _code(1))] == ["done", "done"]


def test_the_copy_read_is_the_dossier_asked_for_when_the_portal_answers_several(
    script: Script, store: StateStore
) -> None:
    """A look-up answering more than one dossier (a search by code prefix) is read for the one
    asked: another dossier's history taken for ours would make every entry of ours "missing"."""
    record = _record(1, steps=2)
    _enqueue(store, record)
    neighbour = _copy(_record(10, steps=3))  # another dossier, answered first
    script.on(_code(1), _Raw([neighbour, _copy(record)]))
    contact, to_send = _settle(store, send=True)
    assert to_send == [] and contact.counts.identical == 1
    assert (contact.counts.history_present, contact.counts.history_missing, contact.counts.portal_only) == (
        2,
        0,
        0,
    )


# ---------------------------------------------------------------------- reads a chunk at a time
# ``settle`` reads a round's copies ``READ_CHUNK`` dossiers at a time and drops them before
# reading the next: the delivery's memory no longer grows with the round. What it decides and
# records must not change with the chunk size.


def _entry(n: int, key: str, kind: str = "dossier") -> DueEntry:
    return DueEntry(id=n, kind=kind, record_key=key, raw="{}", payload_hash="h", attempts=0, on_portal=False)


def test_chunks_hold_at_most_size_dossiers_each_dossier_whole_and_the_order_kept() -> None:
    keys = ["a", "b", "c", "a", "d", "e", "b", "f", "g"]
    entries = [_entry(i, k, "status" if i % 3 == 0 else "dossier") for i, k in enumerate(keys)]
    chunks = _by_key_chunks(entries, 2)
    assert [[e.record_key for e in c] for c in chunks] == [
        ["a", "b", "a", "b"],
        ["c", "d"],
        ["e", "f"],
        ["g"],
    ]
    assert sorted(e.id for c in chunks for e in c) == list(range(len(keys)))  # none lost, none twice
    for chunk in chunks:  # within a chunk, the entries' order is theirs
        assert [e.id for e in chunk] == sorted(e.id for e in chunk)
    assert _by_key_chunks([], 3) == []
    assert len(_by_key_chunks(entries, 100)) == 1


def _state(store: StateStore) -> dict[str, Any]:
    """Everything settle records, without ids and times."""
    with store.engine.connect() as conn:
        outbox = conn.execute(
            select(
                OUTBOX_T.c.record_key,
                OUTBOX_T.c.kind,
                OUTBOX_T.c.state,
                OUTBOX_T.c.verify_first,
                OUTBOX_T.c.attempts,
                OUTBOX_T.c.payload,
            )
        )
        return {
            "outbox": sorted(tuple(r) for r in outbox),
            "dossiers": sorted(
                tuple(r) for r in conn.execute(select(DOSSIER_T.c.record_key, DOSSIER_T.c.on_portal))
            ),
            "steps": sorted(
                tuple(r) for r in conn.execute(select(STEP_T.c.record_key, STEP_T.c.step_key, STEP_T.c.acked))
            ),
            "conflicts": sorted(
                tuple(r) for r in conn.execute(select(CONFLICT_T.c.record_key, CONFLICT_T.c.portal_value))
            ),
        }


def _plant(script: Script, store: StateStore) -> None:
    """Ten dossiers the portal holds in every way first contact tells apart."""
    for n in range(1, 11):
        record = _record(n, steps=3)
        _enqueue(store, record)
        if n % 4 == 0:
            script.on(_code(n), None)  # not on the portal
        elif n % 4 == 1:
            script.on(_code(n), _copy(record))  # identical
        elif n % 4 == 2:
            script.on(_code(n), _copy(record, TrangThaiHoSo="2"))  # differs
        else:
            held = [record.steps[0][1], {**record.steps[0][1], "NoiDungXuLy": "portal only"}]
            script.on(_code(n), _copy(record, held))  # history partial, one entry of its own


@pytest.mark.parametrize("send", [True, False])
def test_the_chunk_size_changes_nothing_that_is_decided_or_recorded(
    script: Script, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, send: bool
) -> None:
    results = {}
    for chunk in (1000, 3, 1):
        monkeypatch.setattr(first_contact, "READ_CHUNK", chunk)
        state = StateStore(f"sqlite:///{tmp_path / f'state-{chunk}.db'}")
        state.prepare()
        try:
            _plant(script, state)
            contact = _first_contact(state)
            to_send = asyncio.run(contact.settle(_due(state), send=send))
            results[chunk] = (
                [(e.record_key, e.on_portal) for e in to_send],
                contact.counts.as_dict(),
                _state(state),
            )
        finally:
            state.close()
    assert results[3] == results[1000]
    assert results[1] == results[1000]
    sent, counts, _ = results[1000]
    assert counts["read"] == 10 and counts["portal_only"] == 2  # the planted cases are all there
    assert (len(sent) > 0) is send


def test_a_chunk_is_decided_before_the_next_is_read(
    script: Script, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(first_contact, "READ_CHUNK", 3)
    _plant(script, store)
    events: list[tuple[str, str]] = []
    reads = script.reads

    class Reads(list[str]):
        def append(self, code: str) -> None:
            events.append(("read", code))
            super().append(code)

    script.reads = Reads(reads)
    decide = FirstContact._dossier

    def deciding(self: FirstContact, entry: DueEntry, *args: Any, **kwargs: Any) -> None:
        events.append(("decide", entry.record_key))
        decide(self, entry, *args, **kwargs)

    monkeypatch.setattr(FirstContact, "_dossier", deciding)
    asyncio.run(_first_contact(store).settle(_due(store), send=True))
    assert sorted(code for what, code in events if what == "read") == [_code(n) for n in range(1, 11)]
    held = 0  # copies read and not yet decided
    most = 0
    for what, _ in events:
        held += 1 if what == "read" else -1
        most = max(most, held)
    assert most == 3  # never more than a chunk's copies at once (10 before chunks)
