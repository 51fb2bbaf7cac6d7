"""A flood of refused payment callbacks logs at most a burst per window, says how many it left
out, and always logs a caller's first refusal of a kind. The window is moved by the test, not
waited for."""

from __future__ import annotations

import logging

import pytest

from dvcsync.sync import payment_inbound


@pytest.fixture
def window(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    fresh: list[float] = [0.0, 0, 0]
    monkeypatch.setattr(payment_inbound, "_log_window", fresh)
    return fresh


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == payment_inbound.log.name]


def test_a_flood_logs_one_burst_then_counts_what_it_left_out(
    window: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    burst = payment_inbound._LOG_BURST
    for n in range(burst + 7):
        payment_inbound._log_limited(False, "refused %d", n)
    assert len(_lines(caplog)) == burst
    payment_inbound._log_limited(True, "first of its kind")  # a first refusal is never left out
    assert _lines(caplog)[-1] == "first of its kind (7 more refusals not logged)"
    window[0] -= payment_inbound._LOG_WINDOW_S + 1  # the window began long enough ago
    payment_inbound._log_limited(False, "after the window")
    assert _lines(caplog)[-1] == "after the window"
    assert len(_lines(caplog)) == burst + 2
