#!/usr/bin/env bash
# The whole quality gate: lint, types, package boundaries (lint-imports), then the test suite
# with coverage over the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export PATH="$PWD/$BIN:$PATH"
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
bash scripts/install_system_deps.sh
echo "== ruff"; ruff check trading_core engine_assets hamilton_exec coin_engine tests bench
echo "== mypy"; mypy
echo "== lint-imports"; lint-imports --no-cache  # the package boundaries: [tool.importlinter]
echo "== pytest"
rm -f .coverage .coverage.*
COVERAGE_PROCESS_START="$PWD/pyproject.toml" \
  pytest --cov --cov-report=term --cov-report=xml -p no:cacheprovider --durations=30 "$@"
