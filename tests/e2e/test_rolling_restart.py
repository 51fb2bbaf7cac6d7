"""Rolling restarts shown with real processes (issue 21 item 2): three replicas started as
deploy/compose.yaml starts them, ``sh -c 'dvcsync db upgrade && exec dvcsync run'``, at the same
moment on one fresh PostgreSQL state with a backlog on a slow portal. One of the three `db upgrade`
creates the state; the others find it at the current revision (or wait for the one migrating) and
return without the exclusive lock, so none exits 3 (the state busy) and all three run and claim
dossiers. Then one replica is stopped with SIGTERM and started again the same way while the other
two deliver: its `db upgrade` returns at once beside them. At the end the mock holds every dossier
and every history entry exactly once, every status reported once, and no dead letters.

Every wait is a deadline loop with a generous bound (a loaded 2-core machine); no assertion
depends on timing. The times are printed for the report only.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from dvcsync.province.sample import generate
from mock_portal.faults import FaultRule, FaultSpec
from mock_portal.testing import run_mock_process

from ..postgres import create_database, postgres_server
from ..replicas import (
    LeaseWatch,
    Replica,
    account,
    acknowledge_portal_side,
    dead_letters,
    doubled_history,
    expected_of,
    outbox_states,
    pending_claims,
    portal_progress,
    start_as_compose,
    wait_for,
    write_config,
)
from .conftest import seed_portal

DOSSIERS = 300  # a backlog that keeps three replicas busy for a while on the slow portal below
LEASE_S = 5.0
# small batches on a slow portal: every replica is mid-delivery for many seconds
PORTAL: dict[str, float] = {"batch_size": 10, "history_batch_size": 5, "concurrency": 2}
LATENCY = FaultSpec(rules=[FaultRule(service="*", latency_ms=150)])
STATE_BUSY = 3  # dvcsync's exit code when the state's lock could not be had within lock_wait_s


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as server:
        yield server


def _pending(state_url: str) -> int:
    return sum(n for key, n in outbox_states(state_url).items() if key.startswith("pending:"))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_three_replicas_start_at_once_and_one_restarts_while_two_deliver(
    tmp_path: Path, postgres: str
) -> None:
    onestop = tmp_path / "onestop.db"
    generate(onestop, DOSSIERS, 11)
    expected = expected_of(f"sqlite:///{onestop}")
    state_file = tmp_path / "portal.db"
    with run_mock_process(state=str(state_file), faults=LATENCY) as mock:
        assert seed_portal(mock, onestop) == len(expected.statuses)
        # taken in long ago: the first pull lists nothing, the replicas only push
        assert acknowledge_portal_side(mock, sorted(expected.statuses)) == len(expected.statuses)
        state_url = create_database(postgres, "dvcsync_rolling_restart")  # fresh: no tables yet
        configs = [
            write_config(
                tmp_path / f"dvcsync-{i}.toml",
                source=onestop,
                mock=mock,
                state_url=state_url,
                claim_lease_s=LEASE_S,
                page_size=20,
                portal=PORTAL,
            )
            for i in range(3)
        ]
        started = time.monotonic()
        replicas = [start_as_compose(f"replica-{i}", c, folder=tmp_path) for i, c in enumerate(configs)]
        everyone: list[Replica] = list(replicas)
        watch = LeaseWatch(state_url)

        def evidence() -> str:
            return "\n".join(
                [
                    f"portal holds (dossiers, history, status reports) {portal_progress(state_file)}",
                    f"outbox {outbox_states(state_url)}; dead letters: {dead_letters(state_url)}",
                    *(
                        f"{r.name} pid {r.pid}: {'alive' if r.alive() else f'exited {r.process.returncode}'}"
                        for r in everyone
                    ),
                    *(r.tail() for r in everyone),
                ]
            )

        def all_claimed() -> bool:
            """Every replica past `db upgrade` and holding claims (or one has died: fail fast)."""
            watch.poll(r.pid for r in replicas if r.alive())
            if not all(r.alive() for r in replicas):
                return True
            return {r.pid for r in replicas} <= watch.claimants

        try:
            # 1. started at once: none exits 3 and each of the three claims dossiers to deliver
            assert wait_for(all_claimed, 300, 0.1), evidence()
            assert all(r.alive() for r in replicas), evidence()
            upgrades = [" ".join(r.output().split()) for r in replicas]  # unwrapped lines
            assert sum("upgraded from empty" in out for out in upgrades) == 1, upgrades
            assert sum("already at" in out for out in upgrades) == 2, upgrades
            print(f"three replicas running and claiming after {time.monotonic() - started:.1f} s")

            # 2. a rolling restart of one replica while the other two deliver: once a tenth of the
            # history is on the portal, the replica holding the most undelivered work is stopped
            by_pid = {r.pid: r for r in replicas}
            holders: Counter[int] = Counter()

            def mid_delivery() -> bool:
                watch.poll(r.pid for r in replicas if r.alive())
                if not all(r.alive() for r in replicas):
                    return True
                if portal_progress(state_file)[1] < expected.steps // 10:
                    return False
                holders.clear()
                holders.update({p: k for p, k in pending_claims(state_url).items() if p in by_pid})
                return bool(holders)

            assert wait_for(mid_delivery, 300, 0.1) and holders, evidence()
            assert all(r.alive() for r in replicas), evidence()
            stopped = by_pid[holders.most_common(1)[0][0]]
            backlog_at_stop = _pending(state_url)
            assert backlog_at_stop > 0, evidence()  # still work to share: the restart is mid-delivery
            code = stopped.stop()
            assert code in (0, -15), f"{stopped.name} exited {code}\n{evidence()}"
            at_stop = portal_progress(state_file)
            at = replicas.index(stopped)
            restarted = start_as_compose(f"{stopped.name}-restarted", configs[at], folder=tmp_path)
            everyone.append(restarted)
            others = [r for r in replicas if r is not stopped]
            assert all(r.alive() for r in others), evidence()
            replicas = [restarted, *others]
            # its `db upgrade` at the current revision returns beside the two running replicas
            assert wait_for(
                lambda: "already at" in " ".join(restarted.output().split()) or not restarted.alive(), 120
            ), evidence()
            assert restarted.alive(), evidence()
            print(
                f"{stopped.name} stopped (exit {code}) holding {holders[stopped.pid]} pending entries,"
                f" {backlog_at_stop} pending in all, the portal holding {at_stop};"
                f" restarted as pid {restarted.pid}"
            )

            # 3. everything delivered, by the two that kept running and the restarted one
            def delivered() -> bool:
                watch.poll(r.pid for r in replicas if r.alive())
                return _pending(state_url) == 0 or not all(r.alive() for r in replicas)

            assert wait_for(delivered, 600, 0.5) and all(r.alive() for r in replicas), evidence()
            print(f"everything delivered after {time.monotonic() - started:.1f} s")
        finally:
            codes = {r.name: r.stop() for r in everyone}
            watch.close()

        assert STATE_BUSY not in codes.values(), codes
        assert set(codes.values()) <= {0, -15}, f"{codes}\n{evidence()}"
        assert doubled_history(state_file) == {}
        found = account(mock, state_file, expected)
        problems = found.problems()
        assert not problems, "\n".join(problems)
        assert (found.dossiers, found.history) == (len(expected.dossiers), expected.steps)
        assert found.status_reports == len(expected.statuses)
        assert found.exists_answers == 0  # no create sent twice, not even across the restart
        assert dead_letters(state_url) == []
        names = {r.pid: r.name for r in everyone}
        print("claims held by:", sorted(names.get(p, str(p)) for p in watch.claimants))
        lapsed = {names.get(p, p): f"{s:.1f} s past its lease" for p, s in watch.lapsed.items()}
        assert not lapsed, lapsed  # a running replica kept its claims through the restart beside it
