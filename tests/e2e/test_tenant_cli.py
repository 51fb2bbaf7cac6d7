"""Two tenants (two provinces' sources, two portals) in one configuration, through the real
command in its own process: ``--tenant`` reaches that tenant's source, state and portal only;
``status`` shows each. On PostgreSQL the two states are two schemas of one database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from dvcsync.province.sample import generate
from mock_portal.testing import RunningMock, run_mock_process

from .conftest import REPO, seed_portal


def _dvcsync(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=clean | env,
        cwd=config.parent,
        timeout=300,
    )


def _upgrade(config: Path, tenant: str) -> None:
    """``dvcsync db upgrade --tenant CODE``: starts that tenant's state, as an operator does before
    its first command (the others refuse a state that does not exist)."""
    done = _dvcsync(config, "db", "upgrade", "--tenant", tenant)
    assert done.returncode == 0, done.stdout + done.stderr


def _stored(mock: RunningMock) -> int:
    return int(httpx.get(f"{mock.url}/_admin/dossiers", params={"size": 1}, timeout=30).json()["total"])


def _calls(mock: RunningMock) -> int:
    return int(httpx.get(f"{mock.url}/_admin/stats", timeout=30).json()["total"])


def _config(tmp_path: Path, state_url: str, portals: dict[str, RunningMock]) -> Path:
    text = (
        f'[province]\nmappings = "{REPO / "mappings"}"\n'
        "[portal]\nrate_limit = 1000\nbatch_size = 100\ntimeout = 10\n"
        f'[state]\nurl = "{state_url}"\n'
    )
    for code, mock in portals.items():
        text += (
            f'[tenants.{code}.province]\nsource_url = "sqlite:///{code}.db"\n'
            f'[tenants.{code}.portal]\nadapter_url = "{mock.adapter_url}"\nsoap_url = "{mock.url}/soap"\n'
        )
    config = tmp_path / "dvcsync.toml"
    config.write_text(text, encoding="utf-8")
    return config


def test_tenant_pushes_its_own_source_to_its_own_portal_into_its_own_state(tmp_path: Path) -> None:
    generate(tmp_path / "a.db", 40, 1)
    generate(tmp_path / "b.db", 30, 2)
    with run_mock_process() as mock_a, run_mock_process() as mock_b:
        seed_portal(mock_a, tmp_path / "a.db")
        seed_portal(mock_b, tmp_path / "b.db")
        config = _config(tmp_path, "sqlite:///state/dvcsync-state.db", {"a": mock_a, "b": mock_b})
        state = tmp_path / "state"
        before_a, before_b = _stored(mock_a), _stored(mock_b)
        calls_b = _calls(mock_b)

        refused = _dvcsync(config, "sync", "push")
        assert refused.returncode == 2, refused.stderr
        assert "serves 2 tenants (a, b)" in refused.stderr
        assert not state.exists() and _calls(mock_b) == calls_b

        _upgrade(config, "a")
        pushed = _dvcsync(config, "sync", "push", "--tenant", "a", "--json")
        assert pushed.returncode == 0, pushed.stderr
        summary = json.loads(pushed.stdout)
        assert summary["dossiers_pushed"] > 0
        assert _stored(mock_a) > before_a  # a's portal has a's dossiers
        assert _stored(mock_b) == before_b and _calls(mock_b) == calls_b  # b's portal was not called
        assert sorted(p.name for p in state.glob("*.db")) == ["dvcsync-state-a.db"]

        status = _dvcsync(config, "status", "--json")
        assert status.returncode == 0, status.stderr
        tenants = json.loads(status.stdout)["tenants"]
        assert tenants["b"] == {"state": None}
        assert tenants["a"]["dossiers"] >= summary["dossiers_pushed"]
        assert [run["job"] for run in tenants["a"]["runs"]] == ["push"]

        stored_a = _stored(mock_a)
        done = _dvcsync(config, "db", "upgrade", DVCSYNC_TENANT="b")  # the variable as --tenant
        assert done.returncode == 0, done.stderr
        pushed_b = _dvcsync(config, "sync", "push", "--json", DVCSYNC_TENANT="b")
        assert pushed_b.returncode == 0, pushed_b.stderr
        assert _stored(mock_b) > before_b and _stored(mock_a) == stored_a
        tenants = json.loads(_dvcsync(config, "status", "--json").stdout)["tenants"]
        assert [run["job"] for run in tenants["a"]["runs"]] == ["push"]  # b's run is b's alone
        assert [run["job"] for run in tenants["b"]["runs"]] == ["push"]

        human = _dvcsync(config, "status", "--tenant", "b")
        assert human.returncode == 0 and "tenant b: dvcsync status" in human.stdout
        assert "tenant a" not in human.stdout


def test_two_tenants_states_are_two_schemas_of_one_postgres_database(tmp_path: Path) -> None:
    pytest.importorskip("psycopg2")
    from sqlalchemy import create_engine, text

    from dvcsync.config import Settings
    from dvcsync.tenants import each_tenant
    from tests.postgres import create_database, postgres_server

    generate(tmp_path / "a.db", 20, 3)
    generate(tmp_path / "b.db", 20, 4)
    with postgres_server() as server, run_mock_process() as mock_a, run_mock_process() as mock_b:
        url = create_database(server, "dvcsync_state")
        seed_portal(mock_a, tmp_path / "a.db")
        seed_portal(mock_b, tmp_path / "b.db")
        config = _config(tmp_path, url, {"a": mock_a, "b": mock_b})
        urls = {code: s.state.url for code, s in each_tenant(Settings.load(config, use_env=False)).items()}
        assert "search_path" in urls["a"] and "search_path" in urls["b"]

        status = _dvcsync(config, "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout) == {"tenants": {"a": {"state": None}, "b": {"state": None}}}

        for code in ("a", "b"):
            _upgrade(config, code)
            pushed = _dvcsync(config, "sync", "push", "--tenant", code, "--json")
            assert pushed.returncode == 0, pushed.stderr
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                named = text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'dvcsync%'")
                schemas = {row[0] for row in conn.execute(named)}
                counts = {
                    schema: conn.execute(text(f"SELECT COUNT(*) FROM {schema}.dossier_state")).scalar_one()
                    for schema in ("dvcsync_a", "dvcsync_b")
                }
                public = conn.execute(
                    text("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'")
                ).scalar_one()
        finally:
            engine.dispose()
        assert schemas == {"dvcsync_a", "dvcsync_b"}
        shown = json.loads(_dvcsync(config, "status", "--json").stdout)["tenants"]
        assert counts == {"dvcsync_a": shown["a"]["dossiers"], "dvcsync_b": shown["b"]["dossiers"]}
        assert counts["dvcsync_a"] > 0 and counts["dvcsync_b"] > 0
        assert public == 0  # nothing of either tenant in the shared schema
