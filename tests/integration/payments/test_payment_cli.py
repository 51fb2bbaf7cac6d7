"""`dvcsync sync payments` from a configuration file, against the mock platform over real HTTP."""

from __future__ import annotations

import json
import sqlite3

import httpx
from typer.testing import CliRunner

from dvcsync.cli import app
from mock_portal.testing import run_mock

from .conftest import REPO, Env, wait_for


def test_sync_payments_command_sends_init_and_later_saves_the_receipt(env: Env) -> None:
    code, amount = env.province.make_paying(9)
    with run_mock(callback_url=env.callback_url, callback_retry_s=0.05) as mock:
        config = env.tmp / "dvcsync.toml"
        config.write_text(
            f'[province]\nsource_url = "sqlite:///{env.province.path}"\nmappings = "{REPO / "mappings"}"\n'
            f'[state]\nurl = "sqlite:///{env.state}"\n'
            f'[payment]\ninit_url = "{mock.url}/payment/init"\nquery_url = "{mock.url}/payment/query"\n'
            f'bill_url = "{mock.url}/payment/bill"\nreceipts_dir = "{env.tmp / "bien-lai"}"\n',
            encoding="utf-8",
        )
        runner = CliRunner()
        first = runner.invoke(app, ["--config", str(config), "sync", "payments", "--json"])
        assert first.exit_code == 0, first.output
        data = json.loads(first.stdout)
        assert (data["initiated"], data["polled"], data["errors"]) == (1, 0, 0)  # polled from 30 min only
        [attempt] = env.province.attempts(code)
        assert attempt["so_tien"] == amount
        ref = attempt["ma_tham_chieu"]
        assert list(data["payment_urls"]) == [ref]

        assert httpx.post(f"{mock.url}/_admin/payments/{ref}/pay", json={}).status_code == 200
        assert wait_for(lambda: env.province.attempts(code)[0]["trang_thai"] == "paid")

        second = runner.invoke(app, ["--config", str(config), "sync", "payments"])
        assert second.exit_code == 0, second.output
        assert "receipts saved (GET_BILL)" in second.stdout
        assert (env.tmp / "bien-lai" / f"{ref}.pdf").read_bytes().startswith(b"%PDF")
        with sqlite3.connect(env.state) as conn:
            runs = conn.execute(
                "SELECT COUNT(*) FROM run WHERE job = 'payments' AND status = 'ok'"
            ).fetchone()
        assert runs == (2,)
