"""The mock on a public address (issue 20 item 8): it refuses to listen beyond loopback without
``--admin-token``; with one, ``/_admin`` asks every caller for it; a busy port is one line and
exit 2, before any banner."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from mock_portal.config import MockConfig
from mock_portal.testing import free_port, run_mock_process

REPO = Path(__file__).resolve().parents[3]
ADMIN = "admin-token-0123456789abcdef"


def _mock(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MOCK_PORTAL_", "DVCSYNC_"))}
    return subprocess.run(
        [sys.executable, "-m", "mock_portal", *argv],
        capture_output=True,
        text=True,
        env=clean | (env or {}),
        cwd=REPO,
        timeout=60,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_a_public_address_without_an_admin_token_is_refused(host: str) -> None:
    with pytest.raises(ValidationError, match="--admin-token"):
        MockConfig(host=host)
    done = _mock("--host", host, "--port", str(free_port()))
    assert done.returncode == 2, done.stderr
    assert "--admin-token" in done.stderr and "mock national portal on" not in done.stdout


def test_a_short_admin_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="16 characters"):
        MockConfig(admin_token="short")


def test_loopback_needs_no_admin_token() -> None:
    assert MockConfig(host="127.0.0.1").admin_token is None
    assert MockConfig(host="localhost").admin_token is None


def test_a_busy_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = _mock("--host", "127.0.0.1", "--port", str(port))
    assert done.returncode == 2
    assert done.stdout == "", "the banner was printed before the port was known to be free"
    lines = done.stderr.strip().splitlines()
    assert lines == [f"mock_portal: cannot listen on 127.0.0.1:{port}: the port is in use"]


def test_with_an_admin_token_the_admin_api_asks_every_caller_for_it() -> None:
    with run_mock_process(admin_token=ADMIN) as mock:  # set, it is asked of loopback callers too
        base = f"http://127.0.0.1:{mock.config.port}"
        assert httpx.get(f"{base}/_admin/stats", timeout=10).status_code == 401
        wrong = httpx.get(f"{base}/_admin/stats", headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401 and "Bearer" in wrong.headers["www-authenticate"]
        # percent-encoded, and a write: still asked
        assert httpx.get(f"{base}/%5Fadmin/stats", timeout=10).status_code == 401
        paid = httpx.post(f"{base}/_admin/payments/NOPE/pay", timeout=10)
        assert paid.status_code == 401
        good = httpx.get(f"{base}/_admin/stats", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
        assert good.status_code == 200
        # the portal's own face is the contract's, not the admin's
        assert httpx.get(f"{base}/docs", timeout=10).status_code == 200
