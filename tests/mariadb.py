"""A private MariaDB server for the tests that are about server databases (OpenCPS runs on
MariaDB/MySQL): its own data folder in a temporary directory, created by ``mariadb-install-db``,
a unix socket there and a free loopback port, stopped at the end. Never the system's service.
Found from Debian's ``mariadb-server`` package or the PATH; `.ci/run` installs it. Without it the
tests skip, unless ``DVCSYNC_REQUIRE_MARIADB=1`` (set by CI) makes that a failure.

The server runs with ``--skip-grant-tables`` (any user on loopback is its superuser: a throwaway
server, nothing to protect) and the character set Debian configures (utf8mb4, its
case-insensitive ``utf8mb4_general_ci``: what a province's server most likely has)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mock_portal.testing import free_port

START_TIMEOUT_S = 60.0


def _bin(*names: str) -> str | None:
    for name in names:
        for folder in ("/usr/sbin", "/usr/bin"):
            if os.access(f"{folder}/{name}", os.X_OK):
                return f"{folder}/{name}"
        found = shutil.which(name)
        if found:
            return found
    return None


def _unavailable(message: str) -> None:
    if os.environ.get("DVCSYNC_REQUIRE_MARIADB") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _driver_missing() -> str | None:
    try:
        import pymysql  # noqa: F401
    except ImportError:
        return "PyMySQL is not installed (pip install 'dvcsync[mysql]')"
    return None


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until the server accepts a MySQL handshake on the port; its log in the error otherwise."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mariadbd exited with {process.returncode}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                if conn.recv(1):  # the server's greeting: it is listening and serving
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"mariadbd did not start within {START_TIMEOUT_S:.0f}s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return "(no log)"


@contextmanager
def mariadb_server() -> Iterator[str]:
    """Yields ``mysql+pymysql://root@127.0.0.1:<port>`` (grant tables skipped)."""
    install, server = _bin("mariadb-install-db", "mysql_install_db"), _bin("mariadbd", "mysqld")
    if install is None or server is None:
        _unavailable("MariaDB server binaries not found (Debian package 'mariadb-server')")
    missing = _driver_missing()
    if missing:
        _unavailable(missing)
    assert install is not None and server is not None
    folder = Path(tempfile.mkdtemp(prefix="dvcsync-mariadb-"))
    data, log = folder / "data", folder / "log"
    as_root = os.geteuid() == 0
    user = ["--user=mysql"] if as_root else []
    if as_root:
        shutil.chown(folder, "mysql")
    port = free_port()
    try:
        subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={data}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                *user,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        process = subprocess.Popen(
            [
                server,
                "--no-defaults",
                *user,
                f"--datadir={data}",
                f"--socket={folder / 'sock'}",
                f"--pid-file={folder / 'pid'}",
                f"--log-error={log}",
                f"--port={port}",
                "--bind-address=127.0.0.1",
                "--skip-grant-tables",
                "--skip-name-resolve",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=16M",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--skip-log-bin",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except (subprocess.SubprocessError, OSError):
        shutil.rmtree(folder, ignore_errors=True)
        raise
    try:
        _wait_ready(process, port, log)
        yield f"mysql+pymysql://root@127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def create_database(server: str, name: str) -> str:
    """A fresh database on ``server`` (utf8mb4); its URL, with the connection's charset."""
    from sqlalchemy import create_engine, text

    engine = create_engine(f"{server}/mysql?charset=utf8mb4")
    with engine.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    engine.dispose()
    return f"{server}/{name}?charset=utf8mb4"
