"""Harness of the multi-replica tests: real `dvcsync` processes on one state store, one mock
portal in its own process, and an exact account of what the portal stored.

The account is checked against what the mappings make of the province's data, computed here
independently of the push: every dossier created once (the mock's per-dossier ``sync_writes``),
every history entry stored once and in the source's order (the mock's history rows, in arrival
order), every portal-submitted dossier's status reported once. 50,000 dossiers make ~240,000
history entries: the mock's admin API would take one request per dossier to show them, so the
account reads the mock's own SQLite state file (``--state``), which the mock writes in WAL mode
and which a reader may open beside it; a sample of dossiers is checked through the admin API
too, so the two views are known to agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, inspect, text

from mock_portal.testing import RunningMock, free_port

REPO = Path(__file__).resolve().parents[1]
# what the admin view adds to a stored dossier body (tests/e2e/test_push.py compares the same way)
ADMIN_KEYS = frozenset(
    {"QuaTrinhXuLy", "writes", "writes_by_service", "warnings", "created_at", "updated_at", "admin_edits"}
)
SHOWN = 20  # problems listed per kind in a failure message: enough to see the pattern


def _digest(value: Any) -> bytes:
    raw = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(raw.encode(), digest_size=12).digest()


# ---------------------------------------------------------------- what the province holds


@dataclass
class Expected:
    """What the portal must end up holding, per dossier: its body's digest and its history as
    (field names, digest) in the source's order (the names say which stored fields to compare:
    the mock may store a field the mapping leaves out). Compact: 50,000 dossiers' bodies do not
    stay in memory."""

    dossiers: dict[str, tuple[bytes, list[tuple[int, bytes]]]] = field(default_factory=dict)
    statuses: set[str] = field(default_factory=set)  # portal-submitted: one DongBoTrangThaiHoSo each
    portal: set[str] = field(default_factory=set)  # every portal-submitted dossier (some need no report)
    field_sets: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return sum(len(history) for _, history in self.dossiers.values())


def expected_of(source_url: str) -> Expected:
    """What the mappings make of every dossier in the source (the rule of tests/e2e/test_push.py's
    ``_expected``: a dossier whose body or one of whose steps does not map is quarantined)."""
    from dvcsync.mapping import load_mappings
    from dvcsync.province.source import SqlSource, make_engine

    mset = load_mappings(REPO / "mappings")
    spec = mset.specs["dossier"]
    assert spec.source is not None
    dossier_map, step_map = mset.get("dossier"), mset.get("step")
    # records with this column filled are portal-submitted: a status report each (PushJob's rule)
    status_map, column = next(
        (mset.get(n), s.applies_to.column) for n, s in mset.specs.items() if s.applies_to
    )
    out = Expected()
    sets: dict[tuple[str, ...], int] = {}
    engine = make_engine(source_url)
    try:
        for page in SqlSource(engine, spec.source).iter_pages(1000):
            for record in page:
                if record.get(column) not in (None, ""):
                    report = status_map.map(record)
                    if report.ok:
                        out.portal.add(report.record)
                    # a portal dossier still new (1) in the province: the first-contact read-back
                    # finds the portal showing that status already, so no report is sent
                    if report.ok and str(report.value.to_wire().get("TrangThai")) != "1":
                        out.statuses.add(report.record)
                    continue
                dossier = dossier_map.map(record)
                if not dossier.ok:
                    continue
                steps = [step_map.map(s, parent=record, record_key=dossier.record) for s in record["steps"]]
                if not all(s.ok for s in steps):
                    continue
                history = []
                for step in steps:
                    wire = step.value.to_wire()
                    names = tuple(wire)
                    history.append((sets.setdefault(names, len(sets)), _digest(wire)))
                out.dossiers[dossier.record] = (_digest(dossier.value.to_wire()), history)
    finally:
        engine.dispose()
    out.field_sets = list(sets)
    return out


# ---------------------------------------------------------------- what the portal stored


@dataclass
class Account:
    """Differences between what the portal stored and ``Expected``; empty lists when exact."""

    dossiers: int = 0
    history: int = 0
    status_reports: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    body_differs: list[str] = field(default_factory=list)
    rewritten: dict[str, int] = field(default_factory=dict)  # code -> sync_writes when not 1
    history_wrong: dict[str, str] = field(default_factory=dict)  # code -> what is wrong
    statuses_wrong: dict[str, int] = field(default_factory=dict)  # code -> reports when not 1
    exists_answers: int = 0  # DongBoHoSoMC creates the mock refused as "already exists"

    def problems(self, tolerate: Iterable[str] = ()) -> list[str]:
        """Human-readable failures. ``tolerate``: codes whose dossier may have been written a
        second time or whose status reported twice (a create or report re-sent after its sender
        died holding it: the second write carries the same content; history never counts here)."""
        allowed = set(tolerate)
        out = []

        def some(items: Iterable[Any]) -> str:
            listed = list(items)
            return ", ".join(map(str, listed[:SHOWN])) + (
                f" … ({len(listed)} in all)" if len(listed) > SHOWN else ""
            )

        if self.missing:
            out.append(f"{len(self.missing)} dossiers never stored: {some(self.missing)}")
        if self.unexpected:
            out.append(f"{len(self.unexpected)} dossiers stored the source lacks: {some(self.unexpected)}")
        if self.body_differs:
            out.append(
                f"{len(self.body_differs)} stored bodies differ from the mapping's: {some(self.body_differs)}"
            )
        rewritten = {c: n for c, n in self.rewritten.items() if not (c in allowed and n == 2)}
        if rewritten:
            out.append(
                f"{len(rewritten)} dossiers written by DongBoHoSoMC other than once: "
                + some(f"{c}={n}" for c, n in rewritten.items())
            )
        if self.history_wrong:
            out.append(
                f"{len(self.history_wrong)} dossiers' history not exactly the source's, once, in order: "
                + some(f"{c} ({why})" for c, why in self.history_wrong.items())
            )
        statuses = {c: n for c, n in self.statuses_wrong.items() if not (c in allowed and n == 2)}
        if statuses:
            out.append(
                f"{len(statuses)} portal-submitted dossiers' status reported other than once: "
                + some(f"{c}={n}" for c, n in statuses.items())
            )
        return out


def _connect(state_file: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(state_file, timeout=30)
    conn.execute("PRAGMA query_only=ON")  # a reader beside the mock: it never writes its state
    return conn


def doubled_history(state_file: Path) -> dict[str, int]:
    """History entries the mock stored more than once: ``{dossier code: extra copies}`` (an
    entry is its dossier and its wire body; the sample never repeats a step of one dossier)."""
    with _connect(state_file) as conn:
        rows = conn.execute(
            "SELECT ma_ho_so, count(*) - count(DISTINCT body) FROM history GROUP BY ma_ho_so"
            " HAVING count(*) > count(DISTINCT body)"
        ).fetchall()
    return {str(code): int(extra) for code, extra in rows}


def portal_progress(state_file: Path) -> tuple[int, int, int]:
    """(dossiers, history entries, status reports) the mock has stored so far."""
    with _connect(state_file) as conn:
        return (
            int(conn.execute("SELECT count(*) FROM dossiers").fetchone()[0]),
            int(conn.execute("SELECT count(*) FROM history").fetchone()[0]),
            int(conn.execute("SELECT count(*) FROM portal_status").fetchone()[0]),
        )


def account(mock: RunningMock, state_file: Path, expected: Expected) -> Account:
    """Compare everything the mock stored with ``expected``."""
    out = Account()
    with _connect(state_file) as conn:
        stored: dict[str, tuple[int, int, str]] = {
            code: (int(sync_writes), int(history_writes), body)
            for code, sync_writes, history_writes, body in conn.execute(
                "SELECT ma_ho_so, sync_writes, history_writes, body FROM dossiers"
            )
        }
        out.dossiers = len(stored)
        out.missing = sorted(set(expected.dossiers) - set(stored))
        out.unexpected = sorted(set(stored) - set(expected.dossiers))
        for code, (sync_writes, _, body) in stored.items():
            if sync_writes != 1:
                out.rewritten[code] = sync_writes
            if code in expected.dossiers:
                fields = {k: v for k, v in json.loads(body).items() if k not in ADMIN_KEYS}
                if _digest(fields) != expected.dossiers[code][0]:
                    out.body_differs.append(code)
        rows = conn.execute("SELECT ma_ho_so, body FROM history ORDER BY ma_ho_so, id")
        seen: set[str] = set()
        for code, bodies in _grouped(rows):
            seen.add(code)
            out.history += len(bodies)
            want = expected.dossiers.get(code, (b"", []))[1]
            why = _history_problem(bodies, want, expected.field_sets)
            if why is None and stored.get(code, (0, -1, ""))[1] != len(bodies):
                why = f"history_writes {stored.get(code, (0, -1, ''))[1]} for {len(bodies)} entries"
            if why is not None:
                out.history_wrong[code] = why
        for code, (_, history) in expected.dossiers.items():
            if history and code not in seen and code in stored:
                out.history_wrong[code] = f"none of its {len(history)} entries stored"
        reports = Counter(code for (code,) in conn.execute("SELECT ma_ho_so FROM portal_status"))
    out.status_reports = sum(reports.values())
    for code in expected.statuses | set(reports):
        if reports.get(code, 0) != 1:
            out.statuses_wrong[code] = reports.get(code, 0)
    stats = httpx.get(f"{mock.url}/_admin/stats", timeout=30).json()["services"]
    out.exists_answers = int(stats.get("DongBoHoSoMC", {}).get("error:3", 0))
    return out


def _grouped(rows: Iterable[tuple[str, str]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    code: str | None = None
    bodies: list[dict[str, Any]] = []
    for row_code, body in rows:
        if row_code != code:
            if code is not None:
                yield code, bodies
            code, bodies = row_code, []
        bodies.append(json.loads(body))
    if code is not None:
        yield code, bodies


def _history_problem(
    stored: list[dict[str, Any]], want: list[tuple[int, bytes]], field_sets: list[tuple[str, ...]]
) -> str | None:
    if len(stored) != len(want):
        return f"{len(stored)} stored for {len(want)} in the source"
    for n, (entry, (names, digest)) in enumerate(zip(stored, want, strict=True), start=1):
        projected = {k: entry.get(k, "") for k in field_sets[names]}
        if _digest(projected) != digest:
            later = [i for i, (_, d) in enumerate(want, start=1) if d == _digest(projected)]
            return f"entry {n} is the source's entry {later[0]}" if later else f"entry {n} differs"
    return None


def sample_agrees_with_admin_api(mock: RunningMock, state_file: Path, codes: list[str]) -> list[str]:
    """The admin API's view of ``codes`` against the state file's: the same writes and history."""
    disagree = []
    with _connect(state_file) as conn, httpx.Client(base_url=mock.url, timeout=30) as client:
        for code in codes:
            reply = client.get(f"/_admin/dossiers/{code}")
            row = conn.execute(
                "SELECT sync_writes, history_writes FROM dossiers WHERE ma_ho_so = ?", (code,)
            ).fetchone()
            if reply.status_code != 200 or row is None:
                disagree.append(f"{code}: admin API {reply.status_code}, state file {row}")
                continue
            view, (sync_writes, history_writes) = reply.json(), row
            history = [
                json.loads(b)
                for (b,) in conn.execute("SELECT body FROM history WHERE ma_ho_so = ? ORDER BY id", (code,))
            ]
            by_service = view["writes_by_service"]
            if (by_service["DongBoHoSoMC"], by_service["CapNhatTienDoHoSoMC"]) != (
                sync_writes,
                history_writes,
            ):
                disagree.append(f"{code}: writes {by_service} vs {sync_writes}/{history_writes}")
            elif view["QuaTrinhXuLy"] != history:
                disagree.append(f"{code}: history differs")
    return disagree


# ---------------------------------------------------------------- the state store


def state_tables(state_url: str) -> dict[str, set[str]]:
    engine = create_engine(state_url)
    try:
        inspector = inspect(engine)
        return {t: {c["name"] for c in inspector.get_columns(t)} for t in inspector.get_table_names()}
    finally:
        engine.dispose()


def outbox_states(state_url: str) -> dict[str, int]:
    """``{"pending:steps": n, "done:dossier": m, …}`` (empty before the first migration)."""
    engine = create_engine(state_url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("outbox"):
                return {}
            rows = conn.execute(text("SELECT state, kind, count(*) FROM outbox GROUP BY state, kind"))
            return {f"{state}:{kind}": int(n) for state, kind, n in rows}
    finally:
        engine.dispose()


def dead_letters(state_url: str, limit: int = SHOWN) -> list[str]:
    engine = create_engine(state_url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("outbox"):
                return []
            rows = conn.execute(
                text(
                    "SELECT kind, record_key, last_error FROM outbox WHERE state = 'dead'"
                    " ORDER BY id LIMIT :n"
                ),
                {"n": limit},
            )
            return [f"{kind} {key}: {error}" for kind, key, error in rows]
    finally:
        engine.dispose()


def claimed_by_pid(state_url: str, pid: int) -> tuple[set[str], Counter[str]]:
    """Dossiers whose claim names the process ``pid`` and their pending outbox entries per kind:
    what a replica held when it was killed. Claims live on ``dossier_state`` (migration 0005);
    replica ids are ``host:pid:random`` (dvcsync.state.replica)."""
    engine = create_engine(state_url)
    try:
        with engine.connect() as conn:
            held = set(
                conn.execute(
                    text("SELECT record_key FROM dossier_state WHERE claimed_by LIKE :who"),
                    {"who": f"%:{pid}:%"},
                ).scalars()
            )
            rows = conn.execute(
                text(
                    "SELECT o.kind, count(*) FROM outbox o JOIN dossier_state d USING (record_key)"
                    " WHERE d.claimed_by LIKE :who AND o.state = 'pending' GROUP BY o.kind"
                ),
                {"who": f"%:{pid}:%"},
            )
            return held, Counter({str(kind): int(n) for kind, n in rows})
    finally:
        engine.dispose()


def pending_claims(state_url: str) -> Counter[int]:
    """Pending outbox entries of claimed dossiers, per claiming process (pid): the work each
    replica holds right now (its claims on dossiers already delivered are not counted)."""
    engine = create_engine(state_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT d.claimed_by, count(*) FROM outbox o JOIN dossier_state d USING (record_key)"
                    " WHERE o.state = 'pending' AND d.claimed_by IS NOT NULL GROUP BY d.claimed_by"
                )
            )
            out: Counter[int] = Counter()
            for who, n in rows:
                out[_pid(str(who))] += int(n)
            return out
    finally:
        engine.dispose()


def _pid(replica: str) -> int:
    parts = replica.split(":")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else -1


@dataclass
class LeaseWatch:
    """Polled while replicas run: which processes held claims, and any live replica whose claim
    ran out while it still holds the dossier: past the row's ``claim_until`` and past its lease in
    ``replica_lease`` (renewed every third of a lease by a thread of the replica). A lapse means
    another replica may take its dossiers while its calls are in flight."""

    state_url: str
    claimants: set[int] = field(default_factory=set)
    lapsed: dict[int, float] = field(default_factory=dict)  # pid -> most seconds past its lease
    _engine: Any = None

    def poll(self, live: Iterable[int]) -> None:
        if self._engine is None:
            self._engine = create_engine(self.state_url)
        alive = set(live)
        with self._engine.connect() as conn:
            if not inspect(conn).has_table("dossier_state"):
                return  # the first replica has not made the tables yet
            leases = inspect(conn).has_table("replica_lease")
            rows = conn.execute(
                text(
                    "SELECT d.claimed_by, greatest(min(d.claim_until), coalesce(max(l.lease_until), 0))"
                    " FROM dossier_state d LEFT JOIN replica_lease l ON l.replica = d.claimed_by"
                    " WHERE d.claimed_by IS NOT NULL GROUP BY d.claimed_by"
                    if leases
                    else "SELECT claimed_by, min(claim_until) FROM dossier_state WHERE claimed_by IS NOT NULL"
                    " GROUP BY claimed_by"
                )
            ).fetchall()
        now = time.time()
        for who, until in rows:
            pid = _pid(str(who))
            self.claimants.add(pid)
            late = now - float(until)
            if pid in alive and late > 0.5:
                self.lapsed[pid] = max(self.lapsed.get(pid, 0.0), late)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def push_runs_by_owner(state_url: str) -> dict[str, Counter[str]]:
    """Summed counts of the recorded push runs per ``run.owner`` (when the state records it)."""
    engine = create_engine(state_url)
    try:
        with engine.connect() as conn:
            if "owner" not in {c["name"] for c in inspect(conn).get_columns("run")}:
                return {}
            rows = conn.execute(text("SELECT owner, counts FROM run WHERE job = 'push'"))
            out: dict[str, Counter[str]] = {}
            for owner, counts in rows:
                summed = out.setdefault(str(owner), Counter())
                data = json.loads(counts or "{}")
                for key in ("dossiers_pushed", "steps_pushed", "statuses_reported"):
                    summed[key] += int(data.get(key, 0))
            return out
    finally:
        engine.dispose()


# ---------------------------------------------------------------- processes

CYCLE_LINE = re.compile(r"push cycle \S+: (.*)$")


def write_config(
    path: Path,
    *,
    source: Path,
    mock: RunningMock,
    state_url: str,
    server_port: int = 0,
    claim_lease_s: float | None = None,
    schedule_push: str = "every 1s",
    page_size: int = 1000,
    portal: dict[str, float] | None = None,
    schedule: dict[str, str] | None = None,
) -> Path:
    """A dvcsync.toml for one replica. The payment platform points at a closed loopback port:
    the payments job finds it unreachable and changes nothing (these tests are about the push)."""
    closed = f"http://127.0.0.1:{free_port()}"
    lease = f"claim_lease_s = {claim_lease_s:g}\n" if claim_lease_s is not None else ""
    # ``portal``: keys of [portal] replacing these defaults; ``schedule``: other jobs' schedules
    tuned: dict[str, float] = {"rate_limit": 5000, "batch_size": 100, "history_batch_size": 100}
    tuned |= {"concurrency": 4, "timeout": 60} | (portal or {})
    portal_keys = "".join(f"{key} = {value:g}\n" for key, value in tuned.items())
    schedules = "".join(f'{job} = "{when}"\n' for job, when in (schedule or {}).items())
    path.write_text(
        f'[province]\nsource_url = "sqlite:///{source}"\nmappings = "{REPO / "mappings"}"\n'
        f'[portal]\nadapter_url = "{mock.adapter_url}"\nsoap_url = "{mock.url}/soap"\n'
        + portal_keys
        + f'[payment]\ninit_url = "{closed}/init"\nquery_url = "{closed}/query"\nbill_url = "{closed}/bill"\n'
        f'[state]\nurl = "{state_url}"\nlock_wait_s = 120\n{lease}'
        f"[push]\npage_size = {page_size}\n"
        f'[server]\nport = {server_port or free_port()}\n[schedule]\npush = "{schedule_push}"\n{schedules}',
        encoding="utf-8",
    )
    return path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}


@dataclass
class Replica:
    """One `dvcsync` process; its output goes to files (an unread pipe would fill and stall it)."""

    name: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @classmethod
    def start(cls, name: str, config: Path, *args: str, folder: Path) -> Replica:
        out, err = folder / f"{name}.out", folder / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "dvcsync.cli", "--config", str(config), *args],
                stdout=stdout,
                stderr=stderr,
                env=_env(),
                cwd=REPO,
            )
        return cls(name, process, out, err)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def pause(self) -> None:
        """SIGSTOP: the process, its lease-renewing thread included, stands still (a long GC pause,
        a VM frozen) while its claims run out."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then SIGKILL if it does not stop within ``timeout``; the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        return int(self.process.returncode)

    def wait(self, timeout: float) -> int:
        return int(self.process.wait(timeout))

    def output(self) -> str:
        return self.stdout.read_text(encoding="utf-8", errors="replace")

    def log(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 15) -> str:
        return f"--- {self.name} (pid {self.pid}) stderr, last {lines} lines:\n" + "\n".join(
            self.log().splitlines()[-lines:]
        )

    def pushed(self) -> Counter[str]:
        """What its push cycles delivered, summed from their log lines."""
        summed: Counter[str] = Counter()
        for line in self.log().splitlines():
            match = CYCLE_LINE.search(line)
            if match:
                for pair in match.group(1).split():
                    key, _, value = pair.partition("=")
                    if key in ("dossiers_pushed", "steps_pushed", "statuses_reported") and value.isdigit():
                        summed[key] += int(value)
        return summed


def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.5) -> bool:
    """Poll ``check`` until it holds or ``timeout`` seconds pass (a bound, never an expectation)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


def acknowledge_portal_side(mock: RunningMock, codes: Iterable[str]) -> int:
    """Acknowledge portal-submitted dossiers on the mock (``XacNhanHoSo``), as a deployment whose
    pull has long taken them in would have: the replicas' first pull then lists nothing."""
    import asyncio

    from dvcsync.config import Settings
    from dvcsync.portal import PortalClient
    from dvcsync.portal._http import make_http_client

    settings = Settings.load(None, portal={"adapter_url": mock.adapter_url, "rate_limit": 5000})

    async def run() -> int:
        http = make_http_client(settings.portal)
        client = PortalClient(settings.portal, http)
        semaphore = asyncio.Semaphore(8)

        async def one(code: str) -> bool:
            async with semaphore:
                reply = await client.call("XacNhanHoSo", {"mahoso": code, "mahosodonvi": ""})
                return bool(reply.ok)

        try:
            return sum(await asyncio.gather(*(one(c) for c in codes)))
        finally:
            await http.aclose()

    return asyncio.run(run())


# the compose service's command (deploy/compose.yaml), with this environment's python for `dvcsync`
COMPOSE_COMMAND = '"$PY" -m dvcsync.cli db upgrade && exec "$PY" -m dvcsync.cli run'


def start_as_compose(name: str, config: Path, *, folder: Path) -> Replica:
    """A replica started as deploy/compose.yaml starts one: ``sh -c 'db upgrade && exec run'``
    with the configuration in ``DVCSYNC_CONFIG``. ``exec``: the shell's pid becomes the run's, so
    the replica's claims (``host:pid:random``) name ``Replica.pid``. Both commands' output goes to
    the replica's files (``db upgrade`` says "already at" or "upgraded from")."""
    out, err = folder / f"{name}.out", folder / f"{name}.err"
    env = _env() | {"DVCSYNC_CONFIG": str(config), "PY": sys.executable}
    with out.open("ab") as stdout, err.open("ab") as stderr:
        process = subprocess.Popen(
            ["sh", "-c", COMPOSE_COMMAND], stdout=stdout, stderr=stderr, env=env, cwd=REPO
        )
    return Replica(name, process, out, err)
