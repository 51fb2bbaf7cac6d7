"""The deployment files say what the adapter needs: the Dockerfile (layer order, non-root user,
volume, health check), deploy/compose.yaml (PostgreSQL state, secrets as files), the systemd unit
(credentials, hardening) and the example configuration, which must load and be allowed to listen."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from dvcsync.config import Settings, published_secret_problems
from dvcsync.server import listen_problems

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_has_what_production_needs() -> None:
    steps = _instructions()
    kinds = [k for k, _ in steps]
    args = {k: v for k, v in steps}  # the last of each kind
    assert kinds[0] == "FROM" and args["FROM"].startswith("python:3.11")
    assert args["USER"] not in {"root", "0"} and kinds.index("USER") < kinds.index("ENTRYPOINT")
    assert "VOLUME" in kinds and "/var/lib/dvcsync" in args["VOLUME"]
    assert "DVCSYNC_CONFIG=/etc/dvcsync/dvcsync.toml" in [v for k, v in steps if k == "ENV"]
    assert "/healthz" in args["HEALTHCHECK"] and "urllib" in args["HEALTHCHECK"]
    assert "curl" not in args["HEALTHCHECK"]
    assert args["EXPOSE"] == "8090"
    assert json.loads(args["ENTRYPOINT"]) == ["dvcsync"] and json.loads(args["CMD"]) == ["run"]


def test_dockerfile_installs_dependencies_before_copying_the_code() -> None:
    steps = _instructions()
    copies = [(i, v) for i, (k, v) in enumerate(steps) if k == "COPY"]
    first_copy, first_sources = copies[0]
    assert first_sources.split()[:-1] == ["requirements.lock"]  # hashed pins: nothing resolved in the build
    locked = "pip install --require-hashes -r requirements.lock"
    deps = next(i for i, (k, v) in enumerate(steps) if k == "RUN" and locked in v)
    code = next(i for i, v in copies if v.startswith("dvcsync "))
    assert first_copy < deps < code
    install = next(v for k, v in steps[code:] if k == "RUN" and "pip install" in v)
    assert "--no-deps" in install


def test_every_path_the_dockerfile_copies_exists_and_the_build_inputs_are_copied() -> None:
    sources: set[str] = set()
    for kind, value in _instructions():
        if kind == "COPY":
            sources.update(p for p in value.split()[:-1] if not p.startswith("--"))
    for source in sources:
        assert (REPO / source).exists(), source
    # what the wheel is built from, including the package-dir mapping of mappings/
    assert {"pyproject.toml", "README.md", "dvcsync", "mock_portal", "mappings"} <= sources


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.skipif(not _docker_available(), reason="no Docker daemon")
def test_the_image_builds_and_runs_init_and_demo() -> None:
    tag = "dvcsync-test:latest"

    def docker(*args: str, timeout: float) -> str:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"docker {args}: {result.stdout}\n{result.stderr}"
        return result.stdout

    docker("build", "-t", tag, str(REPO), timeout=1000)
    assert docker("run", "--rm", "--entrypoint", "id", tag, "-u", timeout=60).strip() != "0"
    docker("run", "--rm", tag, "init", "/tmp/etc", timeout=60)
    assert "pushed (DongBoHoSoMC)" in docker(
        "run", "--rm", tag, "demo", "--dossiers", "50", "--out", "/tmp/demo", timeout=300
    )


def test_compose_runs_the_adapter_on_postgresql_with_secrets_as_files() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    assert {"postgres", "mock-portal"} <= set(services)
    adapters = _adapters(services)
    assert adapters
    for adapter in adapters.values():
        assert adapter["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert {"portal_password", "payment_secret", "inbound_token", "postgres_password"} <= set(
            adapter["secrets"]
        )
        (mounted,) = adapter["configs"]
        assert mounted["target"] == "/etc/dvcsync/dvcsync.toml"
        assert (DEPLOY / compose["configs"][mounted["source"]]["file"]).is_file()
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./secrets/")  # deploy/.gitignore keeps them out of git
    assert "secrets/" in (DEPLOY / ".gitignore").read_text(encoding="utf-8")
    for name, service in services.items():  # no secret value written into the compose file
        for key, value in (service.get("environment") or {}).items():
            if re.search("PASSWORD|SECRET|TOKEN", key):
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), (name, key)


def _adapters(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the adapter: ``dvcsync run`` in their command."""
    return {
        name: service
        for name, service in services.items()
        if "dvcsync run" in " ".join(map(str, service.get("command") or []))
    }


def test_compose_runs_three_replicas_each_upgrading_then_running() -> None:
    """Three replicas on the one PostgreSQL state, started together by `docker compose up`, each
    `db upgrade && exec dvcsync run` (at the current revision `db upgrade` takes no lock, so they
    all start: tests/e2e/test_rolling_restart.py runs this very command), the inbound server of
    each reachable by the name the mock calls and published on a port of its own."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    adapters = _adapters(services)
    replicas = sum(int((s.get("deploy") or {}).get("replicas", 1)) for s in adapters.values())
    assert replicas == 3, sorted(adapters)
    state = tomllib.loads((DEPLOY / "compose.dvcsync.toml").read_text(encoding="utf-8"))["state"]["url"]
    assert state.startswith("postgresql")  # replicas share a server state, never a SQLite file
    published = set()
    for name, service in adapters.items():
        (command,) = service["command"]
        assert service["entrypoint"] == ["sh", "-c"], name
        assert command.rstrip().endswith("&& dvcsync db upgrade && exec dvcsync run"), (name, command)
        assert service["environment"]["DVCSYNC_CONFIG"] == "/etc/dvcsync/dvcsync.toml"
        assert service["restart"] == "unless-stopped", name
        assert "adapter" in service["networks"]["default"]["aliases"], name
        (port,) = service["ports"]
        assert port.startswith("127.0.0.1:") and port.endswith(":8090"), (name, port)
        published.add(port.split(":")[1])
    assert len(published) == len(adapters)  # no two replicas on one host port
    # the mock's callbacks and pushes go to the name every replica answers to
    mock = " ".join(services["mock-portal"]["command"])
    assert "--callback-url http://adapter:8090/" in mock and "--province-url http://adapter:8090/" in mock


def test_compose_adapter_config_loads_and_may_listen(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in ("portal_password", "payment_secret", "inbound_token"):
        (secrets / name).write_text(f"{name}-not-the-mock-default-0123456789\n", encoding="utf-8")
    text = (DEPLOY / "compose.dvcsync.toml").read_text(encoding="utf-8")
    config = tmp_path / "dvcsync.toml"
    config.write_text(text.replace("/run/secrets/", f"{secrets}/"), encoding="utf-8")
    settings = Settings.load(config, use_env=False)
    assert settings.state.url.startswith("postgresql")
    assert settings.server.host == "0.0.0.0"
    assert listen_problems(settings.server) == []
    assert published_secret_problems(settings) == []


def test_example_config_loads_and_may_listen() -> None:
    settings = Settings.load(DEPLOY / "dvcsync.toml.example", use_env=False)
    assert settings.server.host == "0.0.0.0" and listen_problems(settings.server) == []
    assert settings.province.mappings == DEPLOY / "mappings"  # relative to the file's folder


def test_systemd_unit_uses_credentials_and_hardening() -> None:
    text = (DEPLOY / "dvcsync.service").read_text(encoding="utf-8")
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(text)
    service = unit["Service"]
    assert service["Type"] == "exec"
    assert service["User"] == "dvcsync"
    assert service["StateDirectory"] == "dvcsync"
    assert service["ExecStart"].endswith("dvcsync run")
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes"}.items():
        assert service[key] == value, key
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # repeated keys: configparser keeps the last, so read every line
    lines = [line.strip() for line in text.splitlines()]
    credentials = {
        line.split("=", 1)[1].split(":", 1)[0] for line in lines if line.startswith("LoadCredential=")
    }
    assert credentials == {"portal-password", "payment-secret", "inbound-token"}
    environment = {line.split("=", 1)[1] for line in lines if line.startswith("Environment=")}
    assert {
        "DVCSYNC_PORTAL__PASSWORD_FILE=%d/portal-password",
        "DVCSYNC_PAYMENT__SECRET_FILE=%d/payment-secret",
        "DVCSYNC_SERVER__TOKEN_FILE=%d/inbound-token",
    } <= environment
    # every DVCSYNC_ variable the unit sets names a real setting (an unknown one is an error)
    for assignment in environment:
        name = assignment.split("=", 1)[0]
        if name.startswith("DVCSYNC_") and name != "DVCSYNC_CONFIG":
            section, key = name.removeprefix("DVCSYNC_").lower().split("__")
            assert key in type(getattr(Settings.load(None, use_env=False), section)).model_fields, name


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    # the binary must exist for verify: point the unit at this environment's dvcsync
    dvcsync = str(Path(sys.executable).parent / "dvcsync")
    text = (DEPLOY / "dvcsync.service").read_text(encoding="utf-8")
    unit = tmp_path / "dvcsync.service"
    unit.write_text(text.replace("/opt/dvcsync/bin/dvcsync", dvcsync), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    problems = [line for line in output.splitlines() if str(unit) in line or "dvcsync.service" in line]
    assert result.returncode == 0 and not problems, output
