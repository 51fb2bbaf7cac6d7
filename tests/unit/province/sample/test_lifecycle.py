"""Every planned lifecycle, for any draw, is a chain of legal status moves in time order."""

from __future__ import annotations

import itertools
from datetime import datetime
from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from dvcsync.contract import is_legal_move
from dvcsync.province.sample.calendar import to_seconds
from dvcsync.province.sample.lifecycle import DIRECT, NEW, NOW, ONLINE, POSTAL, RECEIVING, plan_dossier

START = to_seconds(datetime(2024, 1, 2, 8, 0))


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    channel=st.sampled_from([DIRECT, ONLINE, POSTAL]),
    offset=st.integers(0, NOW - START - 3 * 3600),
    days=st.integers(1, 30),
    prepaid=st.sampled_from([0, 50_000]),
    postpaid=st.sampled_from([0, 100_000]),
    paying=st.booleans(),
)
def test_plans_are_legal_and_ordered(
    seed: int, channel: int, offset: int, days: int, prepaid: int, postpaid: int, paying: bool
) -> None:
    arrival = START + offset  # postal: arrives two days after posting
    submitted = arrival - 2 * 86_400 if channel == POSTAL else arrival
    needs_paying = paying or bool(postpaid)
    plan = plan_dossier(Random(seed), channel, submitted, arrival, days, prepaid, postpaid, needs_paying)
    statuses = [s[0] for s in plan.steps]
    times = [s[1] for s in plan.steps]
    assert plan.steps, "a submitted dossier has at least its first step"
    assert statuses[0] == (NEW if channel == ONLINE else RECEIVING)
    for old, new in itertools.pairwise(statuses):
        assert is_legal_move(str(old + 1), str(new + 1)), statuses
    assert times == sorted(set(times)) and times[-1] <= NOW
    for _amount, _state, created, settled, _phase in plan.payments:
        assert created <= NOW and (settled is None or created < settled <= NOW)
    if plan.received is not None:
        assert plan.due is not None and plan.due > plan.received >= submitted
