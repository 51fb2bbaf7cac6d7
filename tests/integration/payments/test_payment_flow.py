"""A payment's life against the mock platform: INIT, the signed callback, QUERY, GET_BILL; each
outcome asserted on the province database afterwards."""

from __future__ import annotations

from typing import Any

import httpx

from dvcsync.province.source import SqlSource, make_engine
from mock_portal.testing import free_port, run_mock

from .conftest import Env, wait_for


def _admin(mock_url: str, ref: str, action: str, **options: Any) -> dict[str, Any]:
    response = httpx.post(f"{mock_url}/_admin/payments/{ref}/{action}", json=options)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _deliveries(mock_url: str, ref: str) -> list[dict[str, Any]]:
    payment = httpx.get(f"{mock_url}/_admin/payments/{ref}").json()
    deliveries: list[dict[str, Any]] = payment.get("deliveries") or []
    return deliveries


def _state(env: Env, code: str) -> str:
    return str(env.province.attempts(code)[-1]["trang_thai"])


def _inbox(env: Env) -> list[tuple[str, str]]:
    return [(key, state) for key, state, _ in env.inbox()]


def test_paid_callback_marks_fees_paid_and_the_receipt_is_saved(env: Env) -> None:
    code, amount = env.province.make_paying(0)
    with run_mock(callback_url=env.callback_url, callback_retry_s=0.05) as mock:
        first = env.cycle(mock)
        assert (first.initiated, first.init_refused, first.errors) == (1, 0, 0), first.problems
        assert first.pending == 1  # polled at age 0: the platform does not know yet
        [attempt] = env.province.attempts(code)
        ref = attempt["ma_tham_chieu"]
        assert (attempt["trang_thai"], attempt["so_tien"]) == ("created", amount)
        assert first.payment_urls[ref].endswith(f"/payment/pay/{ref}")
        on_platform = httpx.get(f"{mock.url}/_admin/payments/{ref}").json()
        assert on_platform["so_tien"] == amount

        settled = _admin(mock.url, ref, "pay", MaNganHang="VCB")
        # The callback writes the province first, then marks its inbox row: wait for both (the
        # province alone may be seen between the two writes).
        applied = [(ref, "applied")]
        assert wait_for(lambda: _state(env, code) == "paid" and _inbox(env) == applied, timeout_s=30.0), (
            "the paid callback was not applied",
            _state(env, code),
            _inbox(env),
        )
        [attempt] = env.province.attempts(code)
        assert attempt["ma_giao_dich"] == settled["callback"]["MaGiaoDich"] != ""
        assert attempt["ngan_hang"] == "VCB"
        assert attempt["thoi_gian_ket_qua"] is not None
        assert env.province.unpaid_fees(code) == 0
        assert env.province.updated_at(code) > "2026-01-02T03:04:05"

        # The next push says the dossier was paid online.
        engine = make_engine(f"sqlite:///{env.province.path}")
        try:
            source = env.mappings.specs["dossier"].source
            assert source is not None
            record = SqlSource(engine, source).get(code)
            assert record is not None
            dossier = env.mappings.get("dossier").map(record).value
            assert dossier is not None and dossier.DuocThanhToanTrucTuyen == "1"
        finally:
            engine.dispose()

        second = env.cycle(mock)
        assert (second.initiated, second.polled, second.receipts, second.errors) == (0, 0, 1, 0), (
            second.problems
        )
        [attempt] = env.province.attempts(code)
        receipt = env.tmp / "receipts" / f"{ref}.pdf"
        assert attempt["bien_lai"] == str(receipt)
        assert receipt.read_bytes().startswith(b"%PDF")
        assert env.cycle(mock).receipts == 0  # saved once


def test_failed_payment_keeps_fees_unpaid_and_a_new_attempt_follows(env: Env) -> None:
    code, _ = env.province.make_paying(1)
    with run_mock(callback_url=env.callback_url, callback_retry_s=0.05) as mock:
        assert env.cycle(mock, poll_min_age_s=3600).initiated == 1
        [attempt] = env.province.attempts(code)
        before = env.province.updated_at(code)
        _admin(mock.url, attempt["ma_tham_chieu"], "fail")
        assert wait_for(lambda: _state(env, code) == "failed")
        assert env.province.unpaid_fees(code) > 0
        assert env.province.updated_at(code) == before

        assert env.cycle(mock, poll_min_age_s=3600).initiated == 0  # not again at once by default
        again = env.cycle(mock, poll_min_age_s=3600, init_retry_after_s=0)
        assert again.initiated == 1
        first, second = env.province.attempts(code)
        assert first["ma_tham_chieu"] != second["ma_tham_chieu"]
        assert (first["trang_thai"], second["trang_thai"]) == ("failed", "created")


def test_duplicate_callback_is_applied_once(env: Env) -> None:
    code, _ = env.province.make_paying(2)
    with run_mock(callback_url=env.callback_url, callback_retry_s=0.05) as mock:
        env.cycle(mock, poll_min_age_s=3600)
        [attempt] = env.province.attempts(code)
        ref = attempt["ma_tham_chieu"]
        settled = _admin(mock.url, ref, "pay", duplicate=True)
        assert wait_for(lambda: len(_deliveries(mock.url, ref)) >= 2)
        deliveries = _deliveries(mock.url, ref)
        assert [(d["duplicate"], d["MaLoi"]) for d in deliveries] == [(False, "00"), (True, "00")]
        assert _state(env, code) == "paid"

        # Once more by hand after a visible mark: a replay answers 00 and changes nothing.
        env.province.execute("UPDATE ho_so SET updated_at = '2000-01-01T00:00:00' WHERE so_ho_so = ?", code)
        before = env.province.snapshot(code)
        reply = httpx.post(env.callback_url, json=settled["callback"]).json()
        assert reply["MaLoi"] == "00"
        assert reply["MaXacThuc"] == settled["callback"]["MaXacThuc"]
        assert env.province.snapshot(code) == before
        assert [(k, s) for k, s, _ in env.inbox()] == [(ref, "applied")]


def test_late_callback_after_query_said_pending(env: Env) -> None:
    code, _ = env.province.make_paying(3)
    with run_mock(callback_url=env.callback_url, callback_retry_s=0.05) as mock:
        first = env.cycle(mock)
        assert (first.initiated, first.pending) == (1, 1)
        assert _state(env, code) == "created"
        ref = env.province.attempts(code)[0]["ma_tham_chieu"]
        _admin(mock.url, ref, "pay", delay_s=0.5)
        assert wait_for(lambda: _state(env, code) == "paid")
        assert env.province.unpaid_fees(code) == 0
        assert len(env.province.attempts(code)) == 1


def test_query_applies_first_and_the_late_callback_changes_nothing(env: Env) -> None:
    code, _ = env.province.make_paying(4)
    with run_mock(callback_url=env.callback_url, callback_retry_s=0.05) as mock:
        env.cycle(mock, poll_min_age_s=3600)
        ref = env.province.attempts(code)[0]["ma_tham_chieu"]
        _admin(mock.url, ref, "pay", delay_s=1.5)
        polled = env.cycle(mock)
        assert (polled.polled, polled.paid) == (1, 1)
        assert _state(env, code) == "paid" and env.province.unpaid_fees(code) == 0
        env.province.execute("UPDATE ho_so SET updated_at = '2000-01-01T00:00:00' WHERE so_ho_so = ?", code)
        before = env.province.snapshot(code)
        assert wait_for(lambda: any(d.get("acknowledged") for d in _deliveries(mock.url, ref)))
        assert env.province.snapshot(code) == before


def test_lost_callback_is_recovered_by_query(env: Env) -> None:
    code, _ = env.province.make_paying(5)
    nowhere = f"http://127.0.0.1:{free_port()}/inbound/payment/dpnhankqthanhtoanhs"
    with run_mock(callback_url=nowhere, callback_retry_s=0.05, callback_max_attempts=1) as mock:
        env.cycle(mock, poll_min_age_s=3600)
        ref = env.province.attempts(code)[0]["ma_tham_chieu"]
        _admin(mock.url, ref, "pay")
        assert wait_for(lambda: any(d.get("gave_up") for d in _deliveries(mock.url, ref)))
        assert _state(env, code) == "created"

        too_young = env.cycle(mock, poll_min_age_s=3600)
        assert too_young.polled == 0 and _state(env, code) == "created"

        recovered = env.cycle(mock)
        assert (recovered.polled, recovered.paid, recovered.receipts) == (1, 1, 1), recovered.problems
        [attempt] = env.province.attempts(code)
        assert attempt["trang_thai"] == "paid" and attempt["ma_giao_dich"]
        assert env.province.unpaid_fees(code) == 0
        assert env.province.updated_at(code) > "2026-01-02T03:04:05"


def test_query_answer_failed_marks_the_attempt_failed(env: Env) -> None:
    code, _ = env.province.make_paying(6)
    with run_mock(callback_url=None) as mock:
        env.cycle(mock, poll_min_age_s=3600)
        ref = env.province.attempts(code)[0]["ma_tham_chieu"]
        _admin(mock.url, ref, "fail")
        polled = env.cycle(mock, poll_min_age_s=0)
        assert polled.failed == 1
        assert [a["trang_thai"] for a in env.province.attempts(code)] == ["failed"]
        assert env.province.unpaid_fees(code) > 0


def test_init_refused_by_the_platform_marks_the_attempt_failed(env: Env) -> None:
    code, _ = env.province.make_paying(7)
    with run_mock(callback_url=None) as mock:
        summary = env.cycle(mock, partner_code="KHONG-CAP", poll_min_age_s=3600)
        assert (summary.initiated, summary.init_refused) == (0, 1)
        assert "MaLoi 03" in summary.problems[0]
        assert [a["trang_thai"] for a in env.province.attempts(code)] == ["failed"]


def test_unreachable_platform_fails_the_attempt_without_losing_it(env: Env) -> None:
    code, _ = env.province.make_paying(8)
    with run_mock(callback_url=None) as mock:
        dead = f"http://127.0.0.1:{free_port()}"
        summary = env.cycle(mock, init_url=f"{dead}/payment/init", poll_min_age_s=3600)
        assert summary.init_refused == 1 and "not sent" in summary.problems[0]
        [attempt] = env.province.attempts(code)
        assert attempt["trang_thai"] == "failed" and attempt["ma_tham_chieu"]
