"""A round of dossiers met for the first time is read back and sent a chunk at a time (issue 23
item 3): whatever the chunking, every dossier is read once before it is sent, sent once, and an
unreachable portal part-way through still leaves what was sent recorded; a round of one chunk is
sent as before (the round's other entries in the same batches). A real SQLite state, a scripted
portal (respx)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import respx

from dvcsync.config import PortalSettings
from dvcsync.portal import Backoff, PortalClient, UnreachableError
from dvcsync.state import DueEntry, MappedRecord, Outcome, StateStore
from dvcsync.sync.first_contact import FirstContact
from dvcsync.sync.push import PushJob, PushSummary

BASE = "http://portal.test/dvcqg"
T0 = 1_800_000_000.0  # a fixed clock


class Portal:
    """Not one dossier on it; every call in order as (service, codes). Reads of ``unreachable``
    codes fail to connect."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.unreachable: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        service = body["service"]
        if service == "TraCuuHoSo":
            code = body["mahoso"]
            if code in self.unreachable:
                raise httpx.ConnectError("refused")
            self.calls.append((service, [code]))
            return httpx.Response(200, json={"error_code": 0, "message": "ok", "result": []})
        codes = [item["MaHoSo"] for item in body["data"]]
        self.calls.append((service, codes))
        result = [{"MaHoSo": c, "error_code": 0, "message": "ok"} for c in codes]
        return httpx.Response(200, json={"error_code": 0, "message": "ok", "result": result})


@pytest.fixture
def portal() -> Iterator[Portal]:
    scripted = Portal()
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{BASE}/auth").mock(
            return_value=httpx.Response(200, json={"error_code": 0, "session": "S1", "message": "ok"})
        )
        router.post(f"{BASE}/integration").mock(side_effect=scripted)
        yield scripted


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    state.prepare()
    yield state
    state.close()


def _code(n: int) -> str:
    return f"000.00.01.H40-261120-{n:06d}"


def _record(n: int) -> MappedRecord:
    dossier = {"MaHoSo": _code(n), "MaTTHC": "1.001193", "TrangThaiHoSo": "4", "ChuHoSo": "Nguyễn Thị Hồng"}
    return MappedRecord(
        record_key=_code(n),
        source_id=n,
        source_updated_at="2026-11-20T10:00:00",
        dossier=dossier,
        mapping="dossier",
    )


async def _no_wait(delay: float) -> None:
    """The client's retry pauses, skipped: nothing here depends on time."""


def _job(store: StateStore, *, batch_size: int, concurrency: int) -> Any:
    """A push job with only what ``_send`` uses: settings' portal, state, client, first contact."""
    settings = PortalSettings(
        adapter_url=BASE,
        dstcode="H40",
        madonvi="000.00.01.H40",
        rate_limit=10_000,
        max_attempts=2,
        batch_size=batch_size,
        concurrency=concurrency,
    )
    client = PortalClient(
        settings, httpx.AsyncClient(), backoff=Backoff(rng=random.Random(1)), sleep=_no_wait
    )
    job: Any = PushJob.__new__(PushJob)
    job.settings = SimpleNamespace(portal=settings)
    job.store, job.client, job.clock = store, client, lambda: T0
    job.backoff = Backoff(base=1.0, cap=300.0, rng=random.Random(2))
    job._semaphore = asyncio.Semaphore(concurrency)
    job.first_contact = FirstContact(store, client, job._semaphore, job.clock, job.backoff)
    job._keeper, job._claimed_at = None, {}
    return job


def _send(job: Any, due: list[DueEntry]) -> tuple[list[Outcome], BaseException | None, PushSummary]:
    summary = PushSummary()
    outcomes, failure = asyncio.run(job._send("dossier", due, summary))
    return outcomes, failure, summary


def _due(store: StateStore) -> list[DueEntry]:
    return store.due("dossier", 1000, now=T0)


@pytest.mark.parametrize("n", [3, 4, 11])  # one chunk (short, exact) and three chunks of 4
def test_each_dossier_is_read_once_before_it_is_sent_once(portal: Portal, store: StateStore, n: int) -> None:
    store.enqueue_page([_record(i) for i in range(n)], cursor_name=None, watermark="", last_key=0, now=T0)
    due = _due(store)
    assert all(e.verify_first for e in due), "nothing met for the first time: the test no longer tests"
    outcomes, failure, summary = _send(_job(store, batch_size=2, concurrency=2), due)  # chunks of 4
    assert failure is None
    read: set[str] = set()
    sent: list[str] = []
    for service, codes in portal.calls:
        if service == "TraCuuHoSo":
            assert codes[0] not in read, f"{codes[0]} read twice"
            read |= set(codes)
        else:
            assert service == "DongBoHoSoMC"
            assert set(codes) <= read, f"sent before its read-back: {set(codes) - read}"
            assert len(codes) <= 2
            sent += codes
    assert sorted(sent) == [_code(i) for i in range(n)]
    assert sorted(o.record_key for o in outcomes if o.result == "done") == sorted(sent)
    assert summary.dossiers_pushed == n
    assert summary.first_contact.missing_on_portal == n
    assert summary.calls == n + -(-n // 2)  # a read each, then batches of 2 (no partial batch but the last)


def test_a_round_of_one_chunk_sends_its_known_dossiers_in_the_same_batches(
    portal: Portal, store: StateStore
) -> None:
    store.enqueue_page([_record(i) for i in range(3)], cursor_name=None, watermark="", last_key=0, now=T0)
    known, new = _due(store)[:1], _due(store)[1:]
    known = [DueEntry(e.id, e.kind, e.record_key, e.raw, e.payload_hash, e.attempts, False) for e in known]
    _send(_job(store, batch_size=4, concurrency=2), known + new)  # 2 met for the first time: one chunk
    pushes = [codes for service, codes in portal.calls if service == "DongBoHoSoMC"]
    assert pushes == [[_code(0), _code(1), _code(2)]]


def test_unreachable_part_way_keeps_what_was_sent_and_stops(portal: Portal, store: StateStore) -> None:
    store.enqueue_page([_record(i) for i in range(8)], cursor_name=None, watermark="", last_key=0, now=T0)
    portal.unreachable = {_code(6)}  # in the second chunk of 4
    outcomes, failure, _ = _send(_job(store, batch_size=2, concurrency=2), _due(store))
    assert isinstance(failure, UnreachableError)
    sent = sorted(c for service, codes in portal.calls if service == "DongBoHoSoMC" for c in codes)
    assert sent == [_code(i) for i in range(4)]  # the first chunk, recorded: nothing of the second
    assert sorted(o.record_key for o in outcomes if o.result == "done") == sent
