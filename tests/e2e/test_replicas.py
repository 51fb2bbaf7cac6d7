"""Replicas on one PostgreSQL state (issue 13): several real `dvcsync` processes share the outbox
by claiming dossiers, and the mock portal's own records prove that every dossier was created
once, every history entry stored once in the source's order, every status reported once, and
nothing was left pending; a replica killed with SIGKILL mid-run leaves its leased work to the
others after the lease, and still nothing is lost or doubled.

Two serialised commands on SQLite are tests/e2e/test_concurrency.py's subject, not repeated here.
Every wait is a deadline loop with a generous bound; the times printed are for the report only.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path

import pytest

from dvcsync.province.sample import generate
from mock_portal.testing import RunningMock, run_mock_process

from ..postgres import create_database, postgres_server
from ..replicas import (
    Expected,
    LeaseWatch,
    Replica,
    account,
    acknowledge_portal_side,
    claimed_by_pid,
    dead_letters,
    expected_of,
    outbox_states,
    pending_claims,
    portal_progress,
    push_runs_by_owner,
    sample_agrees_with_admin_api,
    wait_for,
    write_config,
)
from .conftest import db_upgrade, seed_portal

# 20,000 dossiers (16,000-odd pushed with ~95,000 history entries, ~3,400 status reports, a first
# pull): enough for three replicas to share the work and a kill to leave leased work behind. It was
# 50,000 until every dossier met for the first time was read back before its first push (issue 18):
# that doubled the calls, and the two tests alone took ~25 min of CI's 90.
BIG = 20_000
SHARES = ("dossiers_pushed", "steps_pushed", "statuses_reported")


def _whole(expected: Expected) -> Counter[str]:
    return Counter(
        dossiers_pushed=len(expected.dossiers),
        steps_pushed=expected.steps,
        statuses_reported=len(expected.statuses),
    )


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def sample_big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Expected]:
    """BIG generated dossiers and what the portal must end up holding of them (once a session:
    ~40 s on a loaded 2-core machine, most of it mapping the expectation)."""
    path = tmp_path_factory.mktemp("sample-big") / "onestop.db"
    generate(path, BIG, 42)
    return path, expected_of(f"sqlite:///{path}")


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[tuple[RunningMock, Path]]:
    """The mock in its own process, its state in a file the account reads (latency 0, the
    contract's batch limit of 100)."""
    state = tmp_path / "portal.db"
    with run_mock_process(state=str(state)) as running:
        yield running, state


def _copy(sample: Path, tmp_path: Path) -> Path:
    """A private copy: the replicas' pull and payments jobs may write to the province's side."""
    path = tmp_path / "onestop.db"
    shutil.copy(sample, path)
    return path


def _pending(state_url: str) -> int:
    return sum(n for key, n in outbox_states(state_url).items() if key.startswith("pending:"))


def _evidence(state_url: str, state_file: Path, replicas: list[Replica]) -> str:
    return "\n".join(
        [
            f"portal holds (dossiers, history, status reports) = {portal_progress(state_file)}",
            f"outbox = {outbox_states(state_url)}",
            f"dead letters: {dead_letters(state_url)}",
            *(
                f"{r.name} pid {r.pid}: {'alive' if r.alive() else f'exited {r.process.returncode}'}"
                for r in replicas
            ),
            *(r.tail() for r in replicas),
        ]
    )


def _all_arrived(state_file: Path, expected: Expected) -> bool:
    dossiers, history, statuses = portal_progress(state_file)
    return (
        dossiers >= len(expected.dossiers)
        and history >= expected.steps
        and statuses >= len(expected.statuses)
    )


def _assert_exact(
    mock: RunningMock,
    state_file: Path,
    state_url: str,
    expected: Expected,
    tolerate: AbstractSet[str] = frozenset(),
) -> None:
    found = account(mock, state_file, expected)
    problems = found.problems(tolerate)
    assert not problems, "\n".join(problems)
    assert (found.dossiers, found.history) == (len(expected.dossiers), expected.steps)
    # a create answered "already exists" was sent twice; only a dead sender's may be
    assert found.exists_answers <= len(tolerate), found.exists_answers
    assert dead_letters(state_url) == []
    assert _pending(state_url) == 0, outbox_states(state_url)
    codes = sorted(expected.dossiers)
    sample = random.Random(13).sample(codes, min(200, len(codes)))
    assert sample_agrees_with_admin_api(mock, state_file, sample) == []


def _run_replicas(
    tmp_path: Path,
    onestop: Path,
    mock: RunningMock,
    state_url: str,
    n: int,
    claim_lease_s: float | None = None,
) -> list[Replica]:
    configs = [
        write_config(
            tmp_path / f"dvcsync-{i}.toml",
            source=onestop,
            mock=mock,
            state_url=state_url,
            claim_lease_s=claim_lease_s,
        )
        for i in range(n)
    ]
    # the state started once, before any replica (`db upgrade` waits for every replica to stop)
    db_upgrade(configs[0])
    return [Replica.start(f"replica-{i}", config, "run", folder=tmp_path) for i, config in enumerate(configs)]


def _stop(replicas: list[Replica]) -> dict[str, int]:
    return {r.name: r.stop() for r in replicas}


# ---------------------------------------------------------------- the regression guard


def test_three_one_off_pushes_on_postgresql_deliver_everything_once(
    portal: tuple[RunningMock, Path], sample_2000: Path, tmp_path: Path, postgres: str
) -> None:
    """The regression guard: three `dvcsync sync push` on one state. The first reads the source
    (small pages, so its producer goes on while they deliver); the other two start once there
    is something to deliver, as an operator's one-offs beside it would, and deliver the dossiers
    they claim. Whoever sent what, the portal holds everything exactly once."""
    mock, state_file = portal
    onestop = _copy(sample_2000, tmp_path)
    expected = expected_of(f"sqlite:///{onestop}")
    assert seed_portal(mock, onestop) == len(expected.portal) > 200
    state_url = create_database(postgres, "dvcsync_three_pushes")
    config = write_config(
        tmp_path / "dvcsync.toml", source=onestop, mock=mock, state_url=state_url, page_size=100
    )
    db_upgrade(config)  # as an operator starts the state: the pushes do not
    started = time.monotonic()
    pushes = [Replica.start("push-0", config, "sync", "push", "--json", folder=tmp_path)]
    assert wait_for(lambda: _pending(state_url) > 0 or not pushes[0].alive(), 120, 0.1)
    pushes += [Replica.start(f"push-{i}", config, "sync", "push", "--json", folder=tmp_path) for i in (1, 2)]
    codes = {p.name: p.wait(300) for p in pushes}
    print(f"three one-off pushes of 2,000 dossiers: {time.monotonic() - started:.1f} s")
    assert set(codes.values()) == {0}, f"{codes}\n" + _evidence(state_url, state_file, pushes)
    summaries = [json.loads(p.output()) for p in pushes]
    shares = [Counter({k: s[k] for k in SHARES}) for s in summaries]
    print("per process:", [dict(share) for share in shares])
    assert sum(shares, Counter()) == _whole(expected)
    assert [s["dead"] for s in summaries] == [0, 0, 0]
    _assert_exact(mock, state_file, state_url, expected)


# ---------------------------------------------------------------- a big backlog, three services


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_three_replicas_share_a_big_backlog_and_deliver_each_exactly_once(
    portal: tuple[RunningMock, Path], sample_big: tuple[Path, Expected], tmp_path: Path, postgres: str
) -> None:
    """Three `dvcsync run` as a fresh deployment starts them: one reads the source, all three
    deliver what they claim, and the first pull (on one of them) takes in the dossiers submitted
    on the portal meanwhile. A live replica never loses its claims, so nothing at all
    is sent twice, status reports included."""
    mock, state_file = portal
    sample, expected = sample_big
    onestop = _copy(sample, tmp_path)
    assert seed_portal(mock, onestop) == len(expected.portal)
    state_url = create_database(postgres, "dvcsync_three_replicas")
    started = time.monotonic()
    replicas = _run_replicas(tmp_path, onestop, mock, state_url, 3)
    watch = LeaseWatch(state_url)

    def done() -> bool:
        watch.poll(r.pid for r in replicas if r.alive())
        return _all_arrived(state_file, expected) or not all(r.alive() for r in replicas)

    try:
        arrived = wait_for(done, 1200, 1.0)
        assert arrived and all(r.alive() for r in replicas), _evidence(state_url, state_file, replicas)
        delivered = time.monotonic() - started
        assert wait_for(lambda: _pending(state_url) == 0, 120), _evidence(state_url, state_file, replicas)
    finally:
        codes = _stop(replicas)
        watch.close()
    print(f"three replicas, {BIG:,} dossiers: everything on the portal after {delivered:.1f} s")
    names = {r.pid: r.name for r in replicas}
    # from the push cycles' log lines: a cycle still running when the replica stopped is missing
    print("per replica, cycles finished:", {r.name: dict(r.pushed()) for r in replicas})
    print("claims held by:", sorted(names.get(p, str(p)) for p in watch.claimants))
    print("per run owner (state's run rows):", {k: dict(v) for k, v in push_runs_by_owner(state_url).items()})
    assert set(codes.values()) <= {0, -15}, codes  # SIGTERM: uvicorn re-raises it after its shutdown
    _assert_exact(mock, state_file, state_url, expected)
    # the work was shared: each replica claimed dossiers to deliver
    assert watch.claimants >= set(names), watch.claimants
    # a live replica kept its claims: none was left to lapse for another to take over
    lapsed = {names.get(p, p): f"{s:.1f} s past its lease" for p, s in watch.lapsed.items()}
    assert not lapsed, lapsed


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_replica_killed_mid_run_leaves_its_leased_work_to_the_others(
    portal: tuple[RunningMock, Path], sample_big: tuple[Path, Expected], tmp_path: Path, postgres: str
) -> None:
    """SIGKILL of the replica holding the most dossiers, once a tenth of the history is on the
    portal. Its claims (a 5 s lease) pass to the two others, which finish everything: a history
    entry it may have sent is read back, not sent again; only a create or a status report it
    sent unanswered may reach the portal a second time, with the same content."""
    mock, state_file = portal
    sample, expected = sample_big
    onestop = _copy(sample, tmp_path)
    assert seed_portal(mock, onestop) == len(expected.portal)
    # taken in and acknowledged long ago, as in a deployment that has been running: the first
    # pull lists nothing (the three-replica test above covers a first pull over them all)
    assert acknowledge_portal_side(mock, sorted(expected.portal)) == len(expected.portal)
    state_url = create_database(postgres, "dvcsync_killed_replica")
    started = time.monotonic()
    replicas = _run_replicas(tmp_path, onestop, mock, state_url, 3, claim_lease_s=5)
    watch = LeaseWatch(state_url)
    live = list(replicas)
    holders: Counter[int] = Counter()
    by_pid = {r.pid: r for r in replicas}

    def holding() -> bool:
        """A tenth of the history on the portal, and a replica holding undelivered work."""
        watch.poll(r.pid for r in live)
        if not all(r.alive() for r in live):
            return True
        if portal_progress(state_file)[1] < expected.steps // 10:
            return False
        holders.clear()
        holders.update({pid: n for pid, n in pending_claims(state_url).items() if pid in by_pid})
        return bool(holders)

    try:
        assert wait_for(holding, 600, 0.1) and all(r.alive() for r in live) and holders, _evidence(
            state_url, state_file, replicas
        )
        victim = by_pid[holders.most_common(1)[0][0]]
        victim.kill9()
        live.remove(victim)
        at_kill = portal_progress(state_file)
        held, pending_held = claimed_by_pid(state_url, victim.pid)
        print(
            f"killed {victim.name} (pid {victim.pid}) after {time.monotonic() - started:.1f} s, portal"
            f" holding {at_kill}; it held claims on {len(held)} dossiers, pending: {dict(pending_held)}"
        )

        def done() -> bool:
            watch.poll(r.pid for r in live)
            return _all_arrived(state_file, expected) or not all(r.alive() for r in live)

        arrived = wait_for(done, 1200, 1.0)
        assert arrived and all(r.alive() for r in live), _evidence(state_url, state_file, replicas)
        delivered = time.monotonic() - started
        assert wait_for(lambda: _pending(state_url) == 0, 120), _evidence(state_url, state_file, replicas)
    finally:
        codes = _stop(replicas)
        watch.close()
    print(f"two surviving replicas finished {BIG:,} dossiers after {delivered:.1f} s")
    assert {codes[r.name] for r in live} <= {0, -15}, codes
    found = account(mock, state_file, expected)
    print(
        f"re-written after the kill (tolerated: sent by the dead replica, answer lost):"
        f" {len(found.rewritten)} dossiers, {sum(1 for n in found.statuses_wrong.values() if n == 2)}"
        f" status reports; 'already exists' answers: {found.exists_answers}"
    )
    _assert_exact(mock, state_file, state_url, expected, tolerate=held)
    names = {r.pid: r.name for r in replicas}
    lapsed = {names.get(p, p): f"{s:.1f} s past its lease" for p, s in watch.lapsed.items()}
    assert not lapsed, lapsed  # the survivors kept their own claims throughout
