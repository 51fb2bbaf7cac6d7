"""What an operator sees of a long `dvcsync sync push` (issue 21 item 7): off a terminal (cron,
systemd) one progress line every 10 s, the delivery with its total; Ctrl-C (SIGINT) says what was
delivered and that the next run resumes, exit 130; the next run delivers the rest, nothing twice."""

from __future__ import annotations

import re
import shutil
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from mock_portal.faults import FaultRule, FaultSpec
from mock_portal.testing import run_mock_process

from ..replicas import Replica, doubled_history, expected_of, portal_progress, wait_for, write_config
from .conftest import db_upgrade, seed_portal

SLOW = FaultSpec(rules=[FaultRule(service="*", latency_ms=100)])


@pytest.mark.timeout(600)
def test_a_slow_push_prints_progress_and_ctrl_c_says_the_next_run_resumes(
    sample_2000: Path, tmp_path: Path
) -> None:
    onestop = tmp_path / "onestop.db"
    shutil.copy(sample_2000, onestop)
    expected = expected_of(f"sqlite:///{onestop}")
    portal_file = tmp_path / "portal.db"
    with run_mock_process(state=str(portal_file), faults=SLOW) as mock:
        seed_portal(mock, onestop)
        config = write_config(
            tmp_path / "dvcsync.toml",
            source=onestop,
            mock=mock,
            state_url=f"sqlite:///{tmp_path / 'state.db'}",
            portal={"batch_size": 10, "history_batch_size": 10, "concurrency": 2},
        )
        db_upgrade(config)
        push = Replica.start("push", config, "sync", "push", folder=tmp_path)
        progress = re.compile(r"^push: delivered (\d+)/(\d+)", re.M)
        state = tmp_path / "state.db"

        def recorded() -> bool:  # a dossier call's answer recorded, not only status reports'
            with sqlite3.connect(state) as conn:
                done = conn.execute("SELECT count(*) FROM outbox WHERE kind = 'dossier' AND state = 'done'")
                return bool(done.fetchone()[0])

        assert wait_for(
            lambda: (bool(progress.search(push.log())) and recorded()) or not push.alive(), 120
        ), push.tail()
        assert push.alive(), push.tail()
        push.process.send_signal(signal.SIGINT)
        code = push.wait(60)
        log = push.log()
        print(log[-600:])
        assert code == 130, push.tail()
        done, total = map(int, progress.search(log).groups())  # type: ignore[union-attr]
        assert 0 < done < total
        said = re.search(
            r"interrupted: (\d+) dossiers and (\d+) history entries delivered; the next run"
            r" resumes where this one stopped",
            log,
        )
        assert said, push.tail()
        dossiers, history, _ = portal_progress(portal_file)
        # what the state records as delivered; a call in flight at the signal may have arrived too
        said_dossiers, said_history = int(said.group(1)), int(said.group(2))
        assert 0 < said_dossiers <= dossiers and said_history <= history, (said.group(0), dossiers, history)
        assert history < expected.steps

        # the resume at the portal's normal speed: what it proves (the rest, nothing twice) does not
        # need the latency that made the first run slow enough to interrupt (3 of CI's minutes)
        httpx.put(f"{mock.url}/_admin/faults", json={"seed": 0, "rules": []}).raise_for_status()
        again = Replica.start("again", config, "sync", "push", folder=tmp_path)
        assert again.wait(600) == 0, again.tail()
        assert portal_progress(portal_file)[:2] == (len(expected.dossiers), expected.steps)
        assert doubled_history(portal_file) == {}
