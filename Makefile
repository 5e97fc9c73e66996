# Every target bootstraps .venv itself: a fresh machine needs only Python >= 3.11 and git.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= cpu,ui,dev
# exact versions (scripts/lock_constraints.py writes it: `make lock`); the images use it too
CONSTRAINTS := constraints.txt
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: demo test lint typecheck bench clean install lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

# Re-resolve constraints.txt after a dependency change in pyproject.toml (needs PyPI).
lock: | $(BIN)/python
	$(BIN)/python scripts/lock_constraints.py

demo: $(STAMP)
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/coin-engine demo

lint: $(STAMP)
	$(BIN)/ruff check trading_core engine_assets hamilton_exec coin_engine tests bench
	$(BIN)/ruff format --check trading_core engine_assets hamilton_exec coin_engine tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP)
	bash scripts/test.sh

bench: $(STAMP)
	bash scripts/bench.sh

clean:
	rm -rf $(VENV) .dagster_home .coverage* htmlcov data/demo
