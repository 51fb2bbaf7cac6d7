# Quick start: `make demo` runs the main job on the embedded defaults, `make test` runs everything.
# Both need only Python 3.11+: they create .venv and install the project into it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit pytest test-moved-clock install lock clean bench coverage

# Dependencies come from the lock files only (exact versions, sha256 hashes; issue #21): nothing
# resolves a range at install time. requirements-dev.lock = runtime + [dev] + [postgres] + [mysql]
# (what the tests need); requirements.lock = runtime + [postgres] + [mysql] (the Dockerfile's).
LOCK     := requirements-dev.lock
UV_LOCK  := $(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes --python-version 3.11 \
            --python-platform x86_64-manylinux_2_28 --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# Rewrite both lock files after a change to pyproject.toml's dependencies: the pins already there are
# kept unless the new ranges exclude them. `make lock UPGRADE=1` moves every pin to the newest release
# the ranges allow. Commit both files, then `make install`.
lock: $(STAMP)
	$(UV_LOCK) --extra dev --extra postgres --extra mysql -o requirements-dev.lock
	$(UV_LOCK) --extra postgres --extra mysql -c requirements-dev.lock -o requirements.lock

demo: $(STAMP)
	$(BIN)/dvcsync demo

lint: $(STAMP)
	$(BIN)/ruff check dvcsync mock_portal tests bench
	$(BIN)/ruff format --check dvcsync mock_portal tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Bytecode is written (__pycache__/, ignored) even where the shell sets PYTHONDONTWRITEBYTECODE:
# otherwise every run recompiles dvcsync, mock_portal and the tests, in pytest and in each child
# process a test starts (~2.5 s of collection, ~1 s a child). docs/testing.md, "How long".
unit: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -q -m "not slow" tests/unit

# Two pytest workers (pytest-xdist), the slow real-process tests among the rest: most of the suite's
# wall time is waiting (leases, paced portals, processes starting), not CPU, so two workers take about
# half the time on two cores (docs/testing.md, "make test"). PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
pytest: $(STAMP)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --durations=15

# The date-sensitive part of the suite again, with the wall clock moved (libfaketime, Debian's
# `faketime`; tests/moved_clock.sh): a test that mixes a fixed date with "now" fails here, today,
# instead of on a fresh clone some weeks later (issue #24). Two clocks, each a month's first day in
# the province (Asia/Ho_Chi_Minh, UTC+7) while UTC still reads the day before:
#  1. 00:05 on the first of next month, a year on (sometimes a year's first day): the unit tests
#     (prune's keep_days, satisfaction's months, periods, payment windows...) and the reconcile,
#     payments, catalogue pull, satisfaction, scheduled-report, withdrawal and demo end-to-end tests;
#  2. 03:00 on 1 March next year (still 28 or 29 February in UTC): the month-boundary ones only
#     (reconcile periods, satisfaction months, dated reports; payment windows are ages, not days).
# Files are picked to keep this within ~4 minutes of CI (the e2e prune test, 40 s of pushing, adds no
# date logic over the unit prune tests). Override a clock: make test-moved-clock MOVED_CLOCK_1='...'
# (anything GNU date reads, with its zone). Without faketime: skipped with a note, except in CI.
MOVED_CLOCK_1 ?= $(shell date -d "$$(date +%Y-%m-01) +13 months" +%F) 00:05 +07:00
MOVED_CLOCK_2 ?= $(shell date -d "$$(($$(date +%Y) + 1))-03-01 -1 day" +%F) 20:00 UTC
SCHEDULED_REPORTS := tests/e2e/test_reconcile_operation.py::test_the_scheduled_job_writes_dated_reports_and_keeps_keep_reports
MOVED_CLOCK_TESTS_1 := tests/unit \
  tests/e2e/test_reconcile.py tests/e2e/test_reconcile_cli.py $(SCHEDULED_REPORTS) \
  tests/e2e/test_pay_after.py tests/integration/payments tests/integration/reconcile/test_payments_check.py \
  tests/e2e/test_catalogue.py::test_pull_after_the_catalogue_changes_reports_exactly_the_changes \
  tests/e2e/test_satisfaction.py tests/e2e/test_portal_withdrawals.py tests/e2e/test_demo.py
MOVED_CLOCK_TESTS_2 := tests/unit/reconcile tests/unit/sync tests/unit/state/test_prune.py \
  tests/unit/catalogue/test_state.py tests/unit/test_demo_dossiers.py \
  tests/e2e/test_reconcile.py tests/e2e/test_satisfaction.py tests/e2e/test_pay_after.py $(SCHEDULED_REPORTS)

MOVED_CLOCK_PYTEST := -q -p no:cacheprovider --timeout=300  # a thread's timed wait hangs there: fail, not hang

test-moved-clock: $(STAMP)
	bash tests/moved_clock.sh '$(MOVED_CLOCK_1)' $(MOVED_CLOCK_PYTEST) $(MOVED_CLOCK_TESTS_1)
	bash tests/moved_clock.sh '$(MOVED_CLOCK_2)' $(MOVED_CLOCK_PYTEST) $(MOVED_CLOCK_TESTS_2)

test: lint typecheck pytest test-moved-clock

# Line and branch coverage of the unit and integration tests (not e2e), per package; the child
# processes they start are measured too (pyproject.toml [tool.coverage.run]). Not part of `make test`:
# it measures, it does not gate. Figures and how they moved: docs/testing.md.
# Data and reports go to build/coverage/ (ignored), the data file's path absolute for the children.
COVERAGE_TESTS ?= tests/unit tests/integration
COVERAGE_DIR   := $(CURDIR)/build/coverage
coverage: $(STAMP)
	rm -rf $(COVERAGE_DIR) && mkdir -p $(COVERAGE_DIR)
	COVERAGE_FILE=$(COVERAGE_DIR)/.coverage $(BIN)/pytest -q -p no:cacheprovider --cov --cov-report= $(COVERAGE_TESTS)
	COVERAGE_FILE=$(COVERAGE_DIR)/.coverage $(BIN)/coverage combine -q --append 2>/dev/null || true  # children that wrote after pytest-cov combined
	COVERAGE_FILE=$(COVERAGE_DIR)/.coverage $(BIN)/coverage json -q -o $(COVERAGE_DIR)/coverage.json
	$(BIN)/python tests/coverage_packages.py $(COVERAGE_DIR)/coverage.json

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python -P $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-out
