# Quick start: `make demo` runs the main job on the embedded defaults, `make test` runs everything.
# Both need only Python 3.11+: they create .venv and install the project into it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit pytest install clean bench

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/dvcsync demo

lint: $(STAMP)
	$(BIN)/ruff check adapter mock_portal tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

pytest: $(STAMP)
	$(BIN)/pytest -q --durations=15

test: lint typecheck pytest

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python -P $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-out
