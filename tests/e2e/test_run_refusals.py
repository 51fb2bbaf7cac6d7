"""`dvcsync run` refuses a configuration that would expose the inbound server to anyone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .conftest import db_upgrade
from .test_run import _start


def _config(tmp_path: Path, server: str) -> Path:
    """A configuration whose state exists (``dvcsync db upgrade``, as deploy/ runs before each
    start), so that the refusal reached is the one under test, not "no state"."""
    (tmp_path / "portal.secret").write_text("a-real-portal-password\n", encoding="utf-8")
    (tmp_path / "payment.secret").write_text("a-real-payment-secret-0123456789\n", encoding="utf-8")
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        f'[portal]\npassword_file = "{tmp_path / "portal.secret"}"\n'
        f'[payment]\nsecret_file = "{tmp_path / "payment.secret"}"\n'
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n'
        f"[server]\n{server}\n",
        encoding="utf-8",
    )
    db_upgrade(config)
    return config


def _runs(state: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(state) as conn:
        return conn.execute("SELECT job, status FROM run").fetchall()


def test_a_public_address_without_allow_list_or_credential_is_refused(tmp_path: Path) -> None:
    service = _start(_config(tmp_path, 'host = "0.0.0.0"\nport = 1'))
    _, err = service.communicate(timeout=120)
    assert service.returncode == 2, err
    text = err.decode()
    assert "refusing to start" in text and "[server] allow" in text and "token_file" in text
    assert "Traceback" not in text
    assert _runs(tmp_path / "state.db") == []  # refused before any job ran


def test_the_published_payment_secret_is_refused_on_a_public_address(tmp_path: Path) -> None:
    config = tmp_path / "dvcsync.toml"
    config.write_text('[server]\nhost = "0.0.0.0"\nallow = ["203.0.113.0/24"]\n', encoding="utf-8")
    service = _start(config)
    _, err = service.communicate(timeout=120)
    assert service.returncode == 2
    assert "secret_file" in err.decode() and "published" in err.decode()


def test_a_missing_tls_file_is_a_configuration_error_not_a_traceback(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from .test_run import REPO

    config = tmp_path / "dvcsync.toml"
    config.write_text(
        f'[portal]\nca_bundle = "{tmp_path / "missing-ca.pem"}"\n'
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n',
        encoding="utf-8",
    )
    db_upgrade(config)  # the state exists: the refusal reached is the missing file's
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVCSYNC_")}
    done = subprocess.run(
        [sys.executable, "-m", "dvcsync.cli", "--config", str(config), "sync", "push"],
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "configuration error" in err and "ca_bundle" in err and "missing-ca.pem" in err
    assert "Traceback" not in err


def test_a_port_in_use_is_one_clear_message_and_leaves_no_run_running(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        service = _start(_config(tmp_path, f"port = {port}"))
        _, err = service.communicate(timeout=120)
    text = err.decode()
    assert service.returncode == 2, text
    assert f"cannot listen on 127.0.0.1:{port}" in text and "Traceback" not in text
    assert "CancelledError" not in text
    assert [job for job, status in _runs(tmp_path / "state.db") if status == "running"] == []
