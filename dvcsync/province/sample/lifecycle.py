"""How one dossier moves through the one-stop office: its steps, its payment attempts, its dates.

Every dossier is planned to its natural end (returned, refused, withdrawn, stopped, or left hanging
the way some really are: a supplement never brought, a result never collected) and the plan is then
cut at the snapshot moment ``NOW``. Recent dossiers therefore come out in progress in realistic
proportions without a separate rule, and the status sequence is legal by construction: each branch
below only takes moves allowed by ``dvcsync.contract.LEGAL_MOVES`` (statuses are indexes into
``schema.STATUS_KEYWORDS``, i.e. the national code minus one).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from random import Random

from .calendar import DAY, add_workdays, in_office, to_seconds

NOW = to_seconds(datetime(2026, 11, 15, 23, 59, 59))  # the snapshot: nothing later is shown

# Status indexes (national code - 1).
NEW, RECEIVING, DENIED, PROCESSING, WAITING, PAYING, CANCELLED, UNRESOLVED, RELEASING, DONE = range(10)

# Who acted.
APPLICANT, ONESTOP, SPECIALIST, HEAD, LEADER = range(5)

# Channels and payment outcomes.
DIRECT, ONLINE, POSTAL = range(3)
CREATED, PAID, FAILED = range(3)

DENY_REASONS = (
    "Hồ sơ không thuộc thẩm quyền giải quyết của cơ quan",
    "Thành phần hồ sơ không đúng quy định",
    "Tệp đính kèm không đọc được, đề nghị nộp lại",
    "Thông tin người nộp không khớp với Cơ sở dữ liệu quốc gia về dân cư",
    "Hồ sơ trùng với hồ sơ đã nộp trước đó",
)
SUPPLEMENT_REASONS = (
    "Bổ sung bản sao giấy tờ tùy thân còn hiệu lực",
    "Tờ khai chưa đầy đủ chữ ký, đề nghị ký lại",
    "Bổ sung giấy tờ chứng minh nơi cư trú",
    "Thông tin trên tờ khai không khớp với giấy tờ kèm theo",
    "Bổ sung văn bản ủy quyền có chứng thực",
    "Bản chụp giấy tờ không rõ nét, đề nghị chụp lại",
)
STOP_REASONS = (
    "Quá thời hạn bổ sung hồ sơ theo yêu cầu",
    "Hồ sơ không đủ điều kiện giải quyết theo quy định",
    "Có tranh chấp, khiếu nại liên quan đang được xem xét",
    "Người nộp hồ sơ không thực hiện nghĩa vụ tài chính",
)


class Plan:
    """The visible part of one dossier's life. ``steps`` are ``(status, time, role, text)``."""

    __slots__ = (
        "due",
        "finished",
        "payments",
        "postpaid",
        "prepaid",
        "received",
        "refused",
        "returned",
        "steps",
        "supplemented",
    )

    def __init__(self) -> None:
        self.steps: list[tuple[int, int, int, str]] = []
        # (amount, state, created, result time or None, phase) with phase 0 at submission, 1 when paying
        self.payments: list[tuple[int, int, int, int | None, int]] = []
        self.received: int | None = None
        self.due: int | None = None
        self.finished: int | None = None
        self.returned: int | None = None
        self.refused: int | None = None
        self.supplemented = False
        self.prepaid = False  # fees collected up front are settled
        self.postpaid = False  # fees collected afterwards are settled


def _office(ts: int) -> int:
    return in_office(ts, _JITTER[ts % len(_JITTER)])


# Minutes after opening for events pushed to the next morning, picked by the time itself so that
# no random draw is spent (keeps the stream of draws, and so the data, stable across small edits).
_JITTER = tuple((k * 7919) % 5400 for k in range(97))


class _Cut(Exception):
    """The next event falls after NOW: the plan ends here."""


def _attempts(rng: Random, plan: Plan, amount: int, start: int, phase: int) -> tuple[int, bool]:
    """Online payment attempts from ``start``; returns when the last one settled and whether paid."""
    roll = rng.random()
    if roll < 0.72:
        pattern: tuple[int, ...] = (PAID,)
    elif roll < 0.86:
        pattern = (FAILED, PAID)
    elif roll < 0.90:
        pattern = (FAILED, FAILED, PAID)
    elif roll < 0.95:
        pattern = (CREATED,)  # never completed: the page was closed
    else:
        pattern = (FAILED,)
    t = start
    paid = False
    for outcome in pattern:
        if t > NOW:
            break
        settled = t + 20 + int(rng.random() * 600)
        if outcome == CREATED or settled > NOW:
            plan.payments.append((amount, CREATED, t, None, phase))
            break
        plan.payments.append((amount, outcome, t, settled, phase))
        paid = outcome == PAID
        t = settled + 60 + int(rng.random() * 1800)
    return t, paid


def plan_dossier(
    rng: Random,
    channel: int,
    submitted: int,
    arrival: int,
    days: int,
    prepaid_amount: int,
    postpaid_amount: int,
    needs_paying: bool,
) -> Plan:
    """Plan a dossier submitted at ``submitted`` (arriving at ``arrival`` when posted)."""
    plan = Plan()
    with contextlib.suppress(_Cut):
        _run(rng, plan, channel, submitted, arrival, days, prepaid_amount, postpaid_amount, needs_paying)
    return plan


class _Planner:
    """Draws one dossier's steps in order, each at least a minute after the last; an event after
    NOW raises ``_Cut`` (the snapshot is taken before it)."""

    def __init__(self, rng: Random, plan: Plan, start: int) -> None:
        self.rng = rng
        self.plan = plan
        self.last = start

    def step(self, status: int, t: int, role: int, text: str) -> int:
        t = max(t, self.last + 60)
        if t > NOW:
            raise _Cut
        self.plan.steps.append((status, t, role, text))
        self.last = t
        return t

    def stop(self, status: int, t: int, role: int, text: str) -> None:
        """The dossier ends unresolved here: refused and finished at once."""
        self.plan.refused = self.plan.finished = self.step(status, t, role, text)


def _run(
    rng: Random,
    plan: Plan,
    channel: int,
    submitted: int,
    arrival: int,
    days: int,
    prepaid_amount: int,
    postpaid_amount: int,
    needs_paying: bool,
) -> None:
    p = _Planner(rng, plan, submitted)
    received = _submission(p, channel, submitted, arrival, prepaid_amount)
    if received is None:
        return
    t = _reception(p, received, days)
    if t is None:
        return
    if rng.random() < 0.08:
        t = _supplement(p, t, days)
        if t is None:
            return
    roll = rng.random()
    if roll < 0.012:
        p.stop(UNRESOLVED, _office(t + int(rng.random() * 3 * DAY)), LEADER, rng.choice(STOP_REASONS[1:3]))
        return
    if roll < 0.018:
        p.step(CANCELLED, _office(t + int(rng.random() * 3 * DAY)), ONESTOP, "")
        return
    _decision(p, t, channel, days, postpaid_amount, needs_paying)


def _submission(p: _Planner, channel: int, submitted: int, arrival: int, prepaid_amount: int) -> int | None:
    """Submission and the moment of reception; ``None`` when the dossier ends before (refused or
    withdrawn online)."""
    rng, plan = p.rng, p.plan
    if channel == POSTAL:
        return arrival
    if channel != ONLINE:
        return submitted + 120 + int(rng.random() * 1200)
    p.step(NEW, submitted, APPLICANT, "")
    if prepaid_amount:
        _, paid = _attempts(rng, plan, prepaid_amount, submitted + 60 + int(rng.random() * 900), 0)
        plan.prepaid = paid
    roll = rng.random()
    t = _office(submitted + 600 + int(rng.random() ** 2 * 3 * DAY))
    if roll < 0.035:
        plan.refused = p.step(DENIED, t, ONESTOP, rng.choice(DENY_REASONS))
        return None
    if roll < 0.05:
        p.step(CANCELLED, t, APPLICANT, "")
        return None
    return t


def _reception(p: _Planner, received: int, days: int) -> int | None:
    """Reception, then processing starts; ``None`` when the dossier ends first."""
    rng, plan = p.rng, p.plan
    plan.received = received = p.step(RECEIVING, received, ONESTOP, "")
    plan.prepaid = True  # at the latest, paid at the counter on reception
    plan.due = add_workdays(received, days)
    roll = rng.random()
    if roll < 0.008:
        p.step(CANCELLED, _office(received + int(rng.random() * 2 * DAY)), ONESTOP, "")
        return None
    if roll < 0.014:
        p.stop(
            UNRESOLVED,
            _office(received + 3600 + int(rng.random() * DAY)),
            SPECIALIST,
            rng.choice(STOP_REASONS),
        )
        return None
    wait = rng.random()
    wait = int(wait * 4 * 3600) if wait < 0.6 else int((wait - 0.6) * 2.5 * min(days, 2) * DAY)
    return p.step(PROCESSING, _office(received + 300 + wait), SPECIALIST, "")


def _supplement(p: _Planner, t: int, days: int) -> int | None:
    """A request to supplement the dossier; ``None`` when it never resumes."""
    rng, plan = p.rng, p.plan
    t = p.step(
        WAITING,
        _office(t + int(rng.random() * min(days, 3) * DAY)),
        SPECIALIST,
        rng.choice(SUPPLEMENT_REASONS),
    )
    roll = rng.random()
    if roll < 0.05:
        return None  # the applicant never came back
    if roll < 0.10:
        p.step(CANCELLED, _office(t + (2 + int(rng.random() * 10)) * DAY), ONESTOP, "")
        return None
    if roll < 0.14:
        p.stop(UNRESOLVED, add_workdays(t, 15 + int(rng.random() * 10)), SPECIALIST, STOP_REASONS[0])
        return None
    t = p.step(PROCESSING, _office(t + (1 + int(rng.random() * 10)) * DAY), ONESTOP, "")
    plan.supplemented = True
    plan.due = add_workdays(t, days)
    return t


def _decision(p: _Planner, t: int, channel: int, days: int, postpaid_amount: int, needs_paying: bool) -> None:
    """The decision, on time mostly, late sometimes; fees collected afterwards; the result."""
    rng, plan = p.rng, p.plan
    due = plan.due
    assert due is not None
    if rng.random() < 0.12:
        finish = add_workdays(due, 1 + int(rng.random() * 8)) - int(rng.random() * 3 * 3600)
    else:
        finish = t + int((due - t) * (0.35 + 0.6 * rng.random()))
    span = max(finish - t, 600)
    if days > 1:
        p.step(PROCESSING, _office(t + int(span * 0.4)), HEAD, "")
    if needs_paying:
        paid = _paying(p, t, span, channel, postpaid_amount)
        if paid is None:
            return
        t = paid
        finish = max(finish, t + 3600)
    p.step(PROCESSING, _office(max(t + 600, finish - int(span * 0.15))), LEADER, "")
    plan.finished = p.step(RELEASING, _office(finish), ONESTOP, "")
    if rng.random() < 0.02:
        return  # result never collected
    back = finish + (2 if channel == POSTAL else 0) * DAY + int(rng.random() * 3 * DAY)
    plan.returned = p.step(DONE, _office(back), ONESTOP, "")
    if not needs_paying:
        plan.postpaid = True


def _paying(p: _Planner, t: int, span: int, channel: int, postpaid_amount: int) -> int | None:
    """The fees collected afterwards; when processing resumes, ``None`` when it does not."""
    rng, plan = p.rng, p.plan
    t = p.step(PAYING, _office(t + int(span * 0.55)), SPECIALIST, "")
    if postpaid_amount and channel == ONLINE:
        t, _ = _attempts(rng, plan, postpaid_amount, t + 1800 + int(rng.random() * 2 * DAY), 1)
    else:
        t = t + 3600 + int(rng.random() * 3 * DAY)  # paid at the counter or the tax office
    roll = rng.random()
    if roll < 0.02:
        return None  # still waiting for the money
    if roll < 0.035:
        p.stop(UNRESOLVED, add_workdays(t, 30), SPECIALIST, STOP_REASONS[3])
        return None
    t = p.step(PROCESSING, _office(t + 600), SPECIALIST, "")
    plan.postpaid = True
    return t
