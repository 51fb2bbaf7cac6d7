"""A payment cycle against the mock platform over mutual TLS, with ``[payment]``'s own TLS settings
(``[portal]`` trusts nothing of it); receipts land owner-only (personal data at rest)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx

from dvcsync.config import PaymentSettings
from dvcsync.portal import ssl_context
from mock_portal.app import create_app
from mock_portal.config import MockConfig
from mock_portal.testing import RunningMock

from ..portal.tls_support import make_tls_files, serve_tls
from .conftest import Env


def test_a_payment_cycle_over_mutual_tls_saves_an_owner_only_receipt(env: Env, tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    payment_tls = {"ca_bundle": tls.ca, "client_cert": tls.client_cert, "client_key": tls.client_key}
    code, amount = env.province.make_paying(10)
    config = MockConfig()
    with serve_tls(create_app(config), tls, client_ca=tls.ca) as url:
        mock = RunningMock(url=url, config=config)
        refused = env.cycle(mock, poll_min_age_s=3600)  # no [payment] TLS: the test CA is not trusted
        assert refused.initiated == 0 and refused.init_refused == 1
        assert "TLS: certificate verify failed" in refused.problems[0]

        first = env.cycle(mock, poll_min_age_s=3600, init_retry_after_s=0, **payment_tls)
        assert (first.initiated, first.errors) == (1, 0), first.problems
        ref = next(a["ma_tham_chieu"] for a in env.province.attempts(code) if a["trang_thai"] == "created")
        admin = httpx.Client(verify=ssl_context(PaymentSettings(**payment_tls)), timeout=10)
        with admin:
            assert admin.post(f"{url}/_admin/payments/{ref}/pay", json={}).status_code == 200

        settled = env.cycle(mock, poll_min_age_s=0, **payment_tls)
        assert (settled.paid, settled.receipts, settled.errors) == (1, 1, 0), settled.problems

    receipts = env.tmp / "receipts"
    receipt = receipts / f"{ref}.pdf"
    assert receipt.read_bytes().startswith(b"%PDF")
    assert stat.S_IMODE(os.stat(receipt).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(receipts).st_mode) == 0o700
    assert env.province.unpaid_fees(code) == 0 and amount > 0
