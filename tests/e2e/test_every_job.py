"""Every job on both profiles (issue #19 item 5): the sample one-stop schema and OpenCPS v2, the
same run parametrised (``tests/every_job.py``), each job's outcome checked against what that
profile's data and mappings say: counts on the mock, rows in the province database read through
the profile's ``province.yaml``, report categories.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from dvcsync.mapping import load_mappings
from dvcsync.province.payments import PAID, PaymentLedger
from dvcsync.province.ratings import ratings_between
from dvcsync.province.sample import generate
from dvcsync.province.sample.opencps import generate as generate_opencps
from dvcsync.province.schema import load_schema
from dvcsync.reconcile.period import local_now
from dvcsync.sync import satisfaction

from ..every_job import UNMAPPED, Run, run_every_job

pytestmark = pytest.mark.slow

SATISFACTION_TODAY = date(2026, 11, 20)  # the samples' snapshot is 2026-11-15: 12 complete months
DOSSIERS, SEED = 300, 19
WITHDRAWN = "7"  # national status of a withdrawn dossier
PAID_ON_PLATFORM = "1"  # the payment platform's state of a paid transaction


@pytest.fixture
def fixed_months(monkeypatch: pytest.MonkeyPatch) -> None:
    real = satisfaction.complete_months  # months counted back from a fixed day, not the wall clock
    monkeypatch.setattr(
        satisfaction, "complete_months", lambda count, today=None: real(count, today or SATISFACTION_TODAY)
    )


@pytest.mark.parametrize("profile", ["sample", "opencps"])
def test_every_job_on_each_profile(profile: str, tmp_path: Path, fixed_months: None) -> None:
    base = tmp_path / f"{profile}.db"
    (generate if profile == "sample" else generate_opencps)(base, DOSSIERS, SEED)
    today = local_now().date()
    period = ((today - timedelta(days=60)).isoformat(), (today + timedelta(days=1)).isoformat())
    run = run_every_job(tmp_path / "run", base, profile=profile, period=period, today=today.isoformat())
    out = run.out

    # push: the dossiers the mock knows were submitted on the portal are reported, the rest stored
    assert out["knows"], "mock-portal --knows found no portal dossier through the configuration"
    assert out["push"]["dossiers_pushed"] > 0 and out["push"]["dead"] == 0, out["push"]
    assert out["mock"]["dossiers"] >= out["push"]["dossiers_pushed"]

    # pull and a withdrawal made on the portal, in the province's rows
    assert out["pull"]["created"] == 3, out["pull"]
    assert out["withdrawal"]["withdrawn"] == 1, out["withdrawal"]
    _check_pulled(run)

    # payments: INIT, paid on the platform, QUERY applied once, receipt saved
    _check_payment(run)

    # reconcile found the planted change, repair sent it, the report after says nothing stale
    assert out["reconcile"]["counts"].get("stale") == 1, out["reconcile"]["counts"]
    assert ("stale", run.stale) in out["reconcile"]["items"]
    assert list(out["repair"]) == ["stale"] and out["reconcile after repair"].get("stale", 0) == 0

    # catalogue: the procedures without a national code are matched, decided and pushed after
    matched = {code for code, _status, _candidate in out["catalogue match"]}
    assert set(UNMAPPED) <= matched, sorted(matched)
    assert out["push after catalogue"]["dossiers_pushed"] > 0, "the dossiers of the decided procedures"

    # satisfaction: every rating of the 12 months read through the profile's schema
    _check_satisfaction(run)


def _check_pulled(run: Run) -> None:
    schema, mset = load_schema(run.mappings), load_mappings(run.mappings)
    d = schema.dossiers
    withdrawn = schema.statuses.withdrawn or mset.codes["statuses"].reverse_lookup(WITHDRAWN)
    engine = create_engine(f"sqlite:///{run.onestop}")
    try:
        with engine.connect() as conn:
            q = conn.dialect.identifier_preparer.quote
            rows = dict(
                conn.execute(
                    text(
                        f"SELECT {q(d.portal_code)}, {q(d.status)} FROM {q(d.table)}"
                        f" WHERE {q(d.portal_code)} IN (:a, :b, :c)"
                    ),
                    dict(zip("abc", run.new, strict=True)),
                ).all()
            )
    finally:
        engine.dispose()
    assert sorted(rows) == sorted(run.new), rows
    assert rows[run.new[0]] == withdrawn, rows
    assert all(status != withdrawn for code, status in rows.items() if code != run.new[0]), rows


def _check_payment(run: Run) -> None:
    out = run.out
    assert out["payments INIT"]["initiated"] >= 1, out["payments INIT"]
    query, again = out["payments QUERY"], out["payments again"]
    assert query["paid"] == 1 and query["receipts"] == 1, query
    assert again["paid"] == 0 and again["initiated"] == 0, again
    engine = create_engine(f"sqlite:///{run.onestop}")
    try:
        ledger = PaymentLedger(engine, load_schema(run.mappings))
        attempt = ledger.attempt(run.reference)
        assert attempt is not None and attempt.state == PAID and attempt.dossier_key == run.paying
        assert attempt.receipt and Path(attempt.receipt).is_file()
        assert ledger.owed(run.paying) == (ledger.ahead, 0), "the dossier's fees are not all marked paid"
    finally:
        engine.dispose()
    on_mock = [p for p in out["mock"]["payments"] if run.reference.startswith(p[0])]
    assert (PAID_ON_PLATFORM, attempt.amount) in [(state, amount) for _ref, state, amount in on_mock], on_mock

    # the second, told by its callback: applied by the first delivery, the replay changes nothing,
    # the next cycle applies nothing again (no QUERY finds it open) and saves its receipt
    assert out["payments INIT 2"]["initiated"] >= 1, out["payments INIT 2"]
    assert out["callback"] == ["Đã ghi nhận thanh toán", "Đã ghi nhận trước đó"], out["callback"]
    after = out["payments after callback"]
    assert after["paid"] == 0 and after["receipts"] == 1, after
    engine = create_engine(f"sqlite:///{run.onestop}")
    try:
        ledger = PaymentLedger(engine, load_schema(run.mappings))
        by_callback = ledger.attempt(run.reference_by_callback)
        assert by_callback is not None and by_callback.state == PAID and by_callback.receipt
        owed = ledger.owed(run.paying_by_callback)  # nothing up front; fees after processing may remain
        assert owed is not None and (owed[0] == ledger.after or owed[1] == 0), owed
    finally:
        engine.dispose()


def _check_satisfaction(run: Run) -> None:
    sent = run.out["satisfaction"]
    months = satisfaction.complete_months(12)
    engine = create_engine(f"sqlite:///{run.onestop}")
    try:
        rated = ratings_between(
            engine,
            satisfaction.month_start(months[0]),
            satisfaction.next_month_start(months[-1]),
            load_schema(run.mappings),
        )
    finally:
        engine.dispose()
    assert rated, "no rating read through the profile's schema"
    assert sent["ratings"] == len(rated), (sent, len(rated))
    assert sent["sent"] > 0 and run.out["mock"]["ratings"] == sent["sent"], (sent, run.out["mock"]["ratings"])
