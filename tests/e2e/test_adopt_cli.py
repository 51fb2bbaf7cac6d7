"""``dvcsync adopt`` as an operator runs it, in its own process, against the mock in its own
process with a state FILE (it survives a restart): interrupted by ``kill -9``, by an outage, by
Ctrl-C, and limited to a period. Whatever the interruption, running it again ends in the state an
uninterrupted adoption makes, reads each dossier about once and never writes to the portal; the
next ``sync push`` then sends the differences once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvcsync.province.sample import generate
from dvcsync.sync.adopt import ROUND_WAVES
from dvcsync.sync.cycles import run_push
from dvcsync.sync.readback import history_fingerprint
from mock_portal.config import MockConfig
from mock_portal.testing import RunningMock, config_argv, config_env, run_mock_process

from .conftest import REPO, seed_portal, settings_for
from .test_push import _expected

pytestmark = pytest.mark.slow

DOSSIERS = 300
CONCURRENCY = 2
IN_FLIGHT = CONCURRENCY * ROUND_WAVES  # one round of read-backs: read, not yet recorded
WRITES = ("DongBoHoSoMC", "CapNhatTienDoHoSoMC", "DongBoTrangThaiHoSo")
SLOW_READS = {"seed": 3, "rules": [{"service": "TraCuuHoSo", "latency_ms": 25, "jitter_ms": 10}]}


@pytest.fixture(scope="module")
def sample_300(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("adopt") / "onestop.db"
    generate(path, DOSSIERS, 18)
    return path


@pytest.fixture
def onestop(tmp_path: Path, sample_300: Path) -> Path:
    path = tmp_path / "onestop.db"
    shutil.copy(sample_300, path)
    return path


@pytest.fixture
def portal_file(tmp_path: Path) -> Path:
    return tmp_path / "portal.db"


@pytest.fixture
def mock(portal_file: Path) -> Iterator[RunningMock]:
    with run_mock_process(state=str(portal_file)) as running:
        yield running


@contextlib.contextmanager
def _mock_back_on(port: int, portal_file: Path) -> Iterator[RunningMock]:
    """The mock restarted where it was (a portal back from an outage keeps its address; the
    state names the portal it serves), on the same state file."""
    cfg = MockConfig(port=port, state=str(portal_file))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_PORTAL_")} | config_env(cfg)
    process = subprocess.Popen([sys.executable, "-m", "mock_portal", *config_argv(cfg)], env=env)
    running = RunningMock(url=f"http://127.0.0.1:{port}", config=cfg, process=process)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"the mock exited with {process.returncode} at start-up"
            try:
                if httpx.get(f"{running.url}/_admin/stats", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the mock did not come back"
            time.sleep(0.05)
        yield running
    finally:
        process.terminate()
        process.wait(10)


# ---------------------------------------------------------------------- helpers


def _config(tmp_path: Path, mock: RunningMock, onestop: Path, state: Path, portal: str = "") -> Path:
    path = tmp_path / f"{state.stem}.toml"
    path.write_text(
        f'[province]\nsource_url = "sqlite:///{onestop}"\nmappings = "{REPO / "mappings"}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\nsoap_url = "{mock.url}/soap"\n'
        f"rate_limit = 1000\nbatch_size = 100\nconcurrency = {CONCURRENCY}\ntimeout = 5\n{portal}"
        f'[state]\nurl = "sqlite:///{state}"\n',
        encoding="utf-8",
    )
    return path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}


def _dvcsync(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=config.parent,
        timeout=120,
    )


def _start(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), "adopt", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=config.parent,
    )


def _stats(mock: RunningMock) -> dict[str, int]:
    services = httpx.get(f"{mock.url}/_admin/stats", timeout=30).json()["services"]
    return {name: sum(outcomes.values()) for name, outcomes in services.items()}


def _reads(mock: RunningMock) -> int:
    return _stats(mock).get("TraCuuHoSo", 0)


def _writes(mock: RunningMock) -> dict[str, int]:
    stats = _stats(mock)
    return {service: stats.get(service, 0) for service in WRITES}


def _faults(mock: RunningMock, spec: dict[str, Any]) -> None:
    assert httpx.put(f"{mock.url}/_admin/faults", json=spec, timeout=30).status_code == 200


def _wait_for_reads(mock: RunningMock, proc: subprocess.Popen[str], at_least: int, before: int) -> int:
    """Poll the mock until this run made ``at_least`` reads; the run must still be going."""
    deadline = time.monotonic() + 60
    while True:
        reads = _reads(mock) - before
        if reads >= at_least:
            return reads
        assert proc.poll() is None, f"adopt ended before the interruption: {proc.communicate()}"
        assert time.monotonic() < deadline, f"only {reads} reads in 60 s"
        time.sleep(0.02)


def _settled_reads(mock: RunningMock) -> int:
    """The mock's read count once the reads a killed client had in flight are answered (each
    takes at most the injected latency): the same over a few polls in a row."""
    seen = [_reads(mock)]
    while len(seen) < 4 or len(set(seen[-4:])) > 1:
        time.sleep(0.1)
        seen.append(_reads(mock))
        assert len(seen) < 300, "the mock's read count does not settle"
    return seen[-1]


def _snapshot(state: Path) -> dict[str, Any]:
    """What an adoption leaves in the state: what it knows of each dossier and each history entry,
    what waits to be sent (payload and create/replace choice), the conflicts."""
    with sqlite3.connect(state) as conn:
        return {
            "dossiers": conn.execute(
                "SELECT record_key, payload_hash, acked_hash, on_portal, status FROM dossier_state"
                " ORDER BY record_key"
            ).fetchall(),
            "steps": conn.execute(
                "SELECT record_key, step_key, entry_hash, acked FROM step_state ORDER BY record_key, step_key"
            ).fetchall(),
            "pending": sorted(
                conn.execute(
                    "SELECT kind, record_key, payload, verify_first, attempts FROM outbox"
                    " WHERE state = 'pending'"
                ).fetchall()
            ),
            "settled": sorted(
                conn.execute("SELECT kind, record_key, state FROM outbox WHERE state != 'pending'").fetchall()
            ),
            "conflicts": sorted(
                conn.execute("SELECT record_key, field, portal_value FROM conflict").fetchall()
            ),
        }


def _first_contacts(state: Path) -> int:
    with sqlite3.connect(state) as conn:
        return int(
            conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND verify_first"
                " AND kind IN ('dossier', 'status')"
            ).fetchone()[0]
        )


Expected = dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]


def _portal_as_left(mock: RunningMock, onestop: Path, tmp_path: Path) -> tuple[Expected, dict[str, Any]]:
    """The portal as a previous integration leaves it: everything pushed once (by another state),
    then the last entry of 20 dossiers lost, 10 statuses one step behind and 3 dossiers with an
    entry the province does not have."""
    expected = _expected(onestop)
    seed_portal(mock, onestop)
    settings = settings_for(mock, onestop, tmp_path / "previous.db", rate_limit=1000, batch_size=100)
    from dvcsync.mapping import load_mappings

    assert asyncio.run(run_push(settings, load_mappings(settings.province.mappings))).dead == 0
    rng = random.Random(5)
    with_history = sorted(code for code, (_, steps) in expected.items() if len(steps) >= 3)
    dropped = rng.sample(with_history, 20)
    behind = {"10": "9", "9": "4", "4": "2", "5": "2", "6": "2", "8": "4"}
    candidates = sorted(c for c, (d, _) in expected.items() if d["TrangThaiHoSo"] in behind)
    set_back = rng.sample(candidates, 10)
    extra = rng.sample([c for c in with_history if c not in dropped], 3)
    with httpx.Client(base_url=mock.url, timeout=30) as client:
        for code in dropped:
            total = len(client.get(f"/_admin/dossiers/{code}").json()["QuaTrinhXuLy"])
            assert client.delete(f"/_admin/dossiers/{code}/history/{total}").status_code == 200
        for code in set_back:
            status = expected[code][0]["TrangThaiHoSo"]
            assert (
                client.patch(f"/_admin/dossiers/{code}", json={"TrangThaiHoSo": behind[status]}).status_code
                == 200
            )
        extras = {}
        for code in extra:
            assert client.post(f"/_admin/dossiers/{code}/history/1/duplicate").status_code == 200
            extras[code] = client.get(f"/_admin/dossiers/{code}").json()["QuaTrinhXuLy"][0]
    return expected, {"dropped": dropped, "set_back": set_back, "extra": extras}


def _adopt(config: Path, *args: str) -> dict[str, Any]:
    done = _dvcsync(config, "adopt", "--json", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    assert summary["unsettled"] == 0
    return summary


def _reference(tmp_path: Path, mock: RunningMock, onestop: Path) -> tuple[dict[str, Any], int]:
    """An uninterrupted adoption (on a state of its own): what every interrupted one must end as,
    and how many reads it takes."""
    state = tmp_path / "reference.db"
    before, writes = _reads(mock), _writes(mock)
    summary = _adopt(_config(tmp_path, mock, onestop, state))
    reads = _reads(mock) - before
    assert reads == summary["calls"] == summary["found"]["read"] > DOSSIERS // 2
    assert _writes(mock) == writes
    return _snapshot(state), reads


def _assert_pushed_once(mock: RunningMock, config: Path, expected: Expected, damage: dict[str, Any]) -> None:
    """``sync push`` after the adoption sends the differences, once; a second push nothing."""
    writes = _writes(mock)
    done = _dvcsync(config, "sync", "push", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["dead"] == 0
    assert summary["steps_pushed"] == len(damage["dropped"])  # the lost entries, once
    assert summary["dossiers_pushed"] == len(damage["set_back"])  # only those held differently
    assert summary["first_contact"]["read"] == 0  # adoption read everything already
    after = _writes(mock)
    assert 1 <= after["DongBoHoSoMC"] - writes["DongBoHoSoMC"] <= 2
    with httpx.Client(base_url=mock.url, timeout=30) as client:
        for code, (dossier, steps) in expected.items():
            stored = client.get(f"/_admin/dossiers/{code}").json()
            held = Counter(history_fingerprint(e) for e in stored["QuaTrinhXuLy"])
            wanted = Counter(history_fingerprint(e) for e in steps)
            if code in damage["extra"]:
                wanted[history_fingerprint(damage["extra"][code])] += 1  # kept, never deleted
            assert held == wanted, code
            assert stored["TrangThaiHoSo"] == dossier["TrangThaiHoSo"], code
    again = _dvcsync(config, "sync", "push", "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(again.stdout)
    assert (second["calls"], second["dossiers_pushed"], second["steps_pushed"]) == (0, 0, 0)
    assert _writes(mock) == after


# ---------------------------------------------------------------------- (a) kill -9


def test_kill_9_midway_then_again_ends_as_one_uninterrupted_adoption(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    expected, damage = _portal_as_left(mock, onestop, tmp_path)
    reference, total = _reference(tmp_path, mock, onestop)
    writes = _writes(mock)

    state = tmp_path / "adopted.db"
    config = _config(tmp_path, mock, onestop, state)
    _faults(mock, SLOW_READS)  # a few seconds of read-backs: the kill lands in the middle
    before = _reads(mock)
    proc = _start(config)
    _wait_for_reads(mock, proc, total // 3, before)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_reads = _settled_reads(mock) - before
    assert killed_reads < total, "the adoption was over before the kill: the test no longer tests"
    left = _first_contacts(state)
    assert 0 < left < total  # part recorded, part not

    _faults(mock, {"rules": []})
    resumed_before = _reads(mock)
    summary = _adopt(config)
    resumed_reads = _reads(mock) - resumed_before
    # what was recorded is not read again (what the scan had not reached yet is read now)
    assert left <= resumed_reads == summary["calls"]
    assert total <= killed_reads + resumed_reads <= total + IN_FLIGHT
    assert _snapshot(state) == reference
    assert _writes(mock) == writes  # adoption only reads

    _assert_pushed_once(mock, config, expected, damage)


# ---------------------------------------------------------------------- (b) outage


def test_an_outage_midway_exits_4_and_adopt_again_completes(
    onestop: Path, tmp_path: Path, portal_file: Path
) -> None:
    state = tmp_path / "adopted.db"
    with run_mock_process(state=str(portal_file)) as mock:
        _portal_as_left(mock, onestop, tmp_path)
        reference, total = _reference(tmp_path, mock, onestop)
        config = _config(tmp_path, mock, onestop, state)
        _faults(mock, SLOW_READS)
        before = _reads(mock)
        proc = _start(config)
        _wait_for_reads(mock, proc, total // 3, before)
        assert mock.process is not None
        port = mock.config.port
        read_before_outage = _reads(mock) - before
        mock.process.terminate()  # the portal goes away mid-adoption
        mock.process.wait(30)
        started = time.monotonic()
        out, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - started
    assert proc.returncode == 4, err[-3000:]
    assert elapsed < 30, f"{elapsed:.1f} s to notice the portal is gone"
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "portal unreachable" in line]
    assert len(lines) == 1, err[-3000:]
    assert f"127.0.0.1', {port}" in lines[0], lines  # the address it could not reach
    assert out.strip() == ""  # no summary pretending it finished
    left = _first_contacts(state)
    assert 0 < left < total

    # the portal is back, with what it stored
    with _mock_back_on(port, portal_file) as back:
        config = _config(tmp_path, back, onestop, state)
        summary = _adopt(config)
        assert left <= _reads(back) == summary["calls"]
        # (the mock's counters start again at its restart: reads answered before the outage,
        # at most a round in flight then, and those of this run)
        assert _reads(back) + read_before_outage <= total + 2 * IN_FLIGHT
        assert _writes(back) == dict.fromkeys(WRITES, 0)
        assert _snapshot(state) == reference
        status = json.loads(_dvcsync(config, "status", "--json").stdout)
        runs = [r["status"] for r in status["runs"] if r["job"] == "adopt"]
        assert runs[:2] == ["ok", "failed"], status["runs"]


# ---------------------------------------------------------------------- (c) Ctrl-C


def test_ctrl_c_exits_130_and_says_to_run_adopt_again(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    _portal_as_left(mock, onestop, tmp_path)
    reference, total = _reference(tmp_path, mock, onestop)
    state = tmp_path / "adopted.db"
    config = _config(tmp_path, mock, onestop, state)
    _faults(mock, SLOW_READS)
    before = _reads(mock)
    proc = _start(config)
    _wait_for_reads(mock, proc, total // 3, before)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert "run `dvcsync adopt` again" in " ".join(err.split())  # (wrapped at the terminal's width)
    assert out.strip() == ""
    assert 0 < _first_contacts(state) < total

    _faults(mock, {"rules": []})
    resumed = _reads(mock)
    summary = _adopt(config)
    assert _reads(mock) - resumed == summary["calls"]
    assert _snapshot(state) == reference


# ---------------------------------------------------------------------- (d) a period


def _day(wire: str) -> date:
    return date(int(wire[0:4]), int(wire[4:6]), int(wire[6:8]))


def _sendable(summary: dict[str, Any]) -> int:
    """Records of the period that are sent at all (neither unmappable nor skipped by decision)."""
    enqueue = summary["enqueue"]
    return int(summary["in_period"] - enqueue["quarantined"] - enqueue["skipped"])


def test_since_and_until_limit_what_is_read_back(mock: RunningMock, onestop: Path, tmp_path: Path) -> None:
    expected, _ = _portal_as_left(mock, onestop, tmp_path)
    days = sorted(_day(d.get("NgayTiepNhan") or d["NgayNopHoSo"]) for d, _ in expected.values())
    since, until = days[len(days) // 3], days[2 * len(days) // 3]
    assert since < until
    wanted = sum(1 for d in days if since <= d <= until)
    state = tmp_path / "adopted.db"
    config = _config(tmp_path, mock, onestop, state)
    before, writes = _reads(mock), _writes(mock)

    summary = _adopt(config, "--since", since.isoformat(), "--until", until.strftime("%d/%m/%Y"))
    found = summary["found"]
    reads = _reads(mock) - before
    assert reads == summary["calls"] == found["read"] == _sendable(summary) < summary["scanned"]
    statuses = found["status_same"] + found["status_differs"]
    assert found["read"] - statuses == wanted  # the province's own dossiers of the period, once each
    assert summary["scanned"] == DOSSIERS

    # the rest, later: only what the first period left is read
    rest = _adopt(config)
    assert _reads(mock) - before - reads == rest["calls"] > 0
    assert reads + rest["calls"] == _sendable(rest)  # every dossier read once over the two runs
    assert _first_contacts(state) == 0
    assert _writes(mock) == writes

    # an empty period reads nothing
    empty_before = _reads(mock)
    far = (days[-1] + timedelta(days=400)).isoformat()
    assert _adopt(config, "--since", far)["calls"] == 0
    assert _reads(mock) == empty_before


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--since", "2026-13-01"), "--since"),
        (("--until", "31/02/2026"), "--until"),
        (("--since", "yesterday"), "--since"),
        (("--since", "2026-11-20", "--until", "2026-11-19"), "before"),
    ],
)
def test_a_bad_date_exits_2_and_reads_nothing(
    mock: RunningMock, onestop: Path, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    state = tmp_path / "adopted.db"
    config = _config(tmp_path, mock, onestop, state)
    before = _stats(mock)
    done = _dvcsync(config, "adopt", *args)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    assert _stats(mock) == before and not state.exists()


def _outbox_rows(state: Path) -> int:
    try:
        with sqlite3.connect(state) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_ctrl_c_during_the_scan_stops_within_a_page(mock: RunningMock, tmp_path: Path) -> None:
    """The scan maps every province dossier (minutes for a large province): Ctrl-C stops it at
    the page it is on, not at its end (asyncio.run waits for a thread it cannot cancel: a scan
    that does not look for a stop runs to its end, 21 s here, minutes for 100,000 dossiers)."""
    onestop = tmp_path / "large.db"
    generate(onestop, 12_000, 4)
    state = tmp_path / "adopted.db"
    config = _config(tmp_path, mock, onestop, state)
    proc = _start(config)
    deadline = time.monotonic() + 60
    while _outbox_rows(state) == 0:  # the first page is in: the scan is under way
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no page enqueued in 60 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = proc.communicate(timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 130, err[-3000:]
    assert "run `dvcsync adopt` again" in " ".join(err.split())
    assert elapsed < 5, f"{elapsed:.1f} s after Ctrl-C"


def test_a_push_days_after_the_adoption_retries_a_refusal(
    mock: RunningMock, onestop: Path, tmp_path: Path
) -> None:
    """Adopted on Friday, first push on Tuesday: a refusal of that push is the entry's first
    failure, to be retried, not the end of three days of failures."""
    _, damage = _portal_as_left(mock, onestop, tmp_path)
    state = tmp_path / "adopted.db"
    config = _config(tmp_path, mock, onestop, state)
    _adopt(config)
    with sqlite3.connect(state) as conn:  # four days pass before the first push
        conn.execute(
            "UPDATE outbox SET created_at = created_at - 4 * 86400, updated_at = updated_at - 4 * 86400"
        )
    _faults(mock, {"seed": 1, "rules": [{"service": "DongBoHoSoMC", "status_rates": {"503": 1.0}}]})
    # (two attempts a call and a record: the client gives up on the 503 quickly, and one refusal
    # leaves the record one more)
    config = _config(tmp_path, mock, onestop, state, portal="max_attempts = 2\n")
    done = _dvcsync(config, "sync", "push", "--json")
    assert done.returncode in (0, 1), done.stderr[-3000:]
    with sqlite3.connect(state) as conn:
        refused = conn.execute(
            "SELECT state, attempts FROM outbox WHERE kind = 'dossier' AND state != 'done'"
        ).fetchall()
    assert len(refused) == len(damage["set_back"])  # those to replace, refused
    # each got its two attempts (the cycle tries again when the first retry is due), none died of
    # its first refusal
    assert all(attempts == 2 for _, attempts in refused), refused
