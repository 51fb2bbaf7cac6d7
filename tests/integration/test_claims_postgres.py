"""Claims on a real PostgreSQL state: replicas (here, threads and stores under different replica
ids) never hold one dossier together, a dead replica's dossiers are taken over after the lease,
an answer that comes back after a takeover is not recorded, and a dossier's history stays in
order. The multi-process runs are in tests/e2e/test_replicas.py."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from dvcsync.state import MappedRecord, Outcome, StateStore
from dvcsync.state import replica as replica_module

from ..postgres import create_database, postgres_server

_local = threading.local()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


Named = Callable[[str], AbstractContextManager[None]]


@pytest.fixture(name="name")
def as_replica(monkeypatch: pytest.MonkeyPatch) -> Named:
    """``with name("A"):`` — what this thread's claims are recorded under."""
    monkeypatch.setattr(replica_module, "replica_id", lambda: getattr(_local, "name", "main"))

    @contextmanager
    def named(name: str) -> Iterator[None]:
        _local.name = name
        try:
            yield
        finally:
            _local.name = "main"

    return named


def _records(n: int, steps: int = 0) -> list[MappedRecord]:
    return [
        MappedRecord(
            record_key=f"HS-{i:05d}",
            source_id=i,
            source_updated_at="2026-11-30T08:00:00",
            dossier={"MaHoSo": f"HS-{i:05d}", "TrangThaiHoSo": "2"},
            steps=[(str(s), {"MaHoSo": f"HS-{i:05d}", "NoiDungXuLy": f"bước {s}"}) for s in range(steps)],
        )
        for i in range(n)
    ]


def _store(server: str, name: str, lease: float = 60.0, records: int = 0, steps: int = 0) -> StateStore:
    store = StateStore(create_database(server, name), claim_lease_s=lease)
    store.prepare()
    if records:
        store.enqueue_page(_records(records, steps), cursor_name=None, watermark="", last_key=0)
    return store


def test_two_replicas_take_different_dossiers_and_leave_each_others(server: str, name: Named) -> None:
    store = _store(server, "claims_disjoint", records=30)
    with name("A"):
        a = store.due("dossier", 10, now=1000.0)
    with name("B"):
        b = store.due("dossier", 100, now=1000.0)
    assert len(a) == 10 and len(b) == 20
    assert not {e.record_key for e in a} & {e.record_key for e in b}
    with name("A"):
        again = store.due("dossier", 100, now=1001.0)  # its own, and nothing of B's
    assert {e.record_key for e in again} == {e.record_key for e in a}
    assert [(r["replica"], r["dossiers"]) for r in store.replicas(now=1001.0)] == [("A", 10), ("B", 20)]
    with name("B"):
        assert store.release_claims() == 20
    with name("A"):
        assert len(store.due("dossier", 100, now=1002.0)) == 30
    store.close()


def test_a_dead_replicas_dossiers_are_taken_over_after_the_lease(server: str, name: Named) -> None:
    store = _store(server, "claims_lease", lease=5.0, records=4)
    with name("dead"):
        taken = store.due("dossier", 10, now=1000.0)
    assert len(taken) == 4
    with name("B"):
        assert store.due("dossier", 10, now=1004.9) == []  # still leased
        assert store.next_attempt_at("dossier") == pytest.approx(1005.0)  # when the lease ends
        over = store.due("dossier", 10, now=1005.1)
    assert [e.id for e in over] == [e.id for e in taken]
    # the dead replica's answer arrives late: not recorded, B's is
    with name("dead"):
        store.record_outcomes([Outcome(e.id, e.record_key, "dossier", "dead", error="late") for e in taken])
    with name("B"):
        store.record_outcomes(
            [Outcome(e.id, e.record_key, "dossier", "done", payload_hash=e.payload_hash) for e in over]
        )
    assert Counter(row["state"] for row in store.entries_of("HS-00000")) == Counter({"done": 1})
    store.close()


def test_a_live_replica_renews_its_claims(server: str, name: Named) -> None:
    store = _store(server, "claims_renew", lease=5.0, records=3)
    with name("A"):
        assert len(store.due("dossier", 10, now=1000.0)) == 3
        assert store.renew_claims(now=1004.0) == 1  # its one lease row, until 1009
    with name("B"):
        assert store.due("dossier", 10, now=1006.0) == []
        assert len(store.due("dossier", 10, now=1009.5)) == 3
    store.close()


def test_history_is_claimed_with_its_dossier_and_stays_in_order(server: str, name: Named) -> None:
    """25 steps = three history entries of 10, 10, 5: only the first is ever due, and while A
    holds the dossier B gets none of its entries of any kind."""
    store = _store(server, "claims_history", records=2, steps=25)
    with name("A"):
        dossiers = store.due("dossier", 10, now=1000.0)
        store.record_outcomes(
            [Outcome(e.id, e.record_key, "dossier", "done", payload_hash=e.payload_hash) for e in dossiers]
        )
        first = store.due("steps", 10, now=1001.0)
    assert sorted(e.record_key for e in first) == ["HS-00000", "HS-00001"]
    assert all(len(e.history[0]) == 10 for e in first)
    with name("B"):
        assert store.due("steps", 10, now=1001.0) == []
    with name("A"):
        store.record_outcomes(
            [Outcome(e.id, e.record_key, "steps", "done", step_keys=e.history[0]) for e in first]
        )
        store.release_claims()
    seen: list[list[str]] = []
    for who in ("B", "A"):
        with name(who):
            entries = [e for e in store.due("steps", 10, now=1002.0) if e.record_key == "HS-00000"]
            seen.extend(e.history[0] for e in entries)
            store.record_outcomes(
                [Outcome(e.id, e.record_key, "steps", "done", step_keys=e.history[0]) for e in entries]
            )
            store.release_claims()
    assert seen == [[str(s) for s in range(10, 20)], [str(s) for s in range(20, 25)]]
    store.close()


def test_racing_replicas_never_hold_one_dossier_together(server: str, name: Named) -> None:
    """Eight threads, each a replica with its own connections, claim, settle and release 2,000
    dossiers at once: every dossier settled exactly once."""
    store = _store(server, "claims_race", records=2000)
    settled: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def replica(number: int) -> None:
        _local.name = f"R{number}"
        own = StateStore(store.url)
        try:
            while True:
                due = own.due("dossier", 37)
                if not due:
                    if own.next_attempt_at("dossier") is None:
                        return
                    continue
                with lock:
                    settled.update(e.record_key for e in due)
                own.record_outcomes(
                    [Outcome(e.id, e.record_key, "dossier", "done", payload_hash=e.payload_hash) for e in due]
                )
                own.release_claims()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=replica, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors and not any(t.is_alive() for t in threads)
    assert len(settled) == 2000 and set(settled.values()) == {1}
    store.close()


def test_an_inbound_event_received_twice_at_once_is_kept_once(server: str, name: Named) -> None:
    """Eight replicas receive the same payment result at the same instant (a platform retrying
    into a load balancer): one row; while one applies it, the others are told it is taken."""
    from dvcsync.state import Inbox

    store = _store(server, "claims_inbox")
    start = threading.Barrier(8)
    ids: list[int] = []
    errors: list[BaseException] = []

    def receive(number: int) -> None:
        _local.name = f"R{number}"
        own = StateStore(store.url)
        try:
            start.wait(timeout=60)
            ids.append(Inbox(own).receive("payment_result", "TT-0001", {"MaThamChieu": "TT-0001"}).id)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=receive, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(ids) == 8 and len(set(ids)) == 1
    inbox = Inbox(store)
    item = inbox.receive("payment_result", "TT-0001", {})
    with name("A"), inbox.applying(item) as mine:
        assert mine is not None and mine.state == "received"
        with name("B"), inbox.applying(item) as theirs:
            assert theirs is None
        _local.name = "A"
        inbox.mark(item.id, "applied", local_key="HS-1")
    with name("B"), inbox.applying(item) as later:
        assert later is not None and later.state == "applied"  # B sees it applied: nothing to do
    store.close()


def test_claims_are_kept_by_a_thread_while_the_event_loop_is_stalled(server: str, name: Named) -> None:
    """The deliverer's loop may be busy for longer than a lease (a first pull taking in thousands
    of dossiers on the same loop): the keeper's thread renews regardless, and gives everything
    back at the end."""
    import time

    from dvcsync.sync.claim_keeper import ClaimKeeper

    store = _store(server, "claims_keeper", lease=3.0, records=5)
    with name("A"):
        taken = store.due("dossier", 10)
        first_lease = max(r["lease_ends_in_s"] for r in store.replicas())
        with ClaimKeeper(store) as keeper:
            deadline = time.monotonic() + 120
            while keeper.renewals < 2 and time.monotonic() < deadline:
                time.sleep(0.05)  # this thread does nothing, as a stalled event loop
            assert keeper.renewals >= 2
            renewed = max(r["lease_ends_in_s"] for r in store.replicas())
            assert renewed > first_lease - 1.0  # moved on with the clock, not run down
            with name("B"):
                assert store.due("dossier", 10, now=time.time() + 1.0) == []  # still A's
    assert len(taken) == 5 and store.replicas() == []  # given back
    store.close()


def test_after_a_lapse_a_replica_sends_only_what_it_still_holds(server: str, name: Named) -> None:
    """The fence before a send (issue 21): A's lease lapses (a pause), B takes two of A's four
    dossiers; A re-proves its claims: only the two B did not take, extended so that B cannot take
    them before A's calls leave."""
    store = _store(server, "claims_fence", lease=5.0, records=4)
    with name("A"):
        taken = store.due("dossier", 10, now=1000.0)
    assert len(taken) == 4
    with name("B"):
        stolen = {e.record_key for e in store.due("dossier", 2, now=1006.0)}  # A's lease is over
    assert len(stolen) == 2
    with name("A"):
        mine = store.reprove_claims({e.record_key for e in taken}, now=1006.5)
    assert mine == {e.record_key for e in taken} - stolen
    with name("B"):  # A's re-proven claims hold again: B gets none of them (only its own)
        assert {e.record_key for e in store.due("dossier", 10, now=1007.0)} == stolen
    with name("A"):
        assert store.reprove_claims(stolen, now=1008.0) == set()  # B's now: never A's again
    store.close()
