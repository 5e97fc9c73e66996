# Every target bootstraps .venv itself: a fresh machine needs only Python >= 3.11 and git.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= cpu,dev
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: demo test lint typecheck bench clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/coin-engine demo

lint: $(STAMP)
	$(BIN)/ruff check trading_core engine_assets hamilton_exec tests bench
	$(BIN)/ruff format --check trading_core engine_assets hamilton_exec tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP)
	bash scripts/test.sh

bench: $(STAMP)
	bash scripts/bench.sh

clean:
	rm -rf $(VENV) .dagster_home .coverage* htmlcov data/demo
