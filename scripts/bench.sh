#!/usr/bin/env bash
# Every benchmark, each printing its figures and writing bench/results/*.json.
# BENCH_FULL=1 runs the full sizes (the training sweep to 400 coins takes the better part of an hour
# on 2 cores); the default is a shorter pass.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
if [ "${BENCH_FULL:-0}" = "1" ]; then
  COINS=(25 50 100 200 400); REPS=1000
else
  COINS=(25 50); REPS=200
fi
echo "== synthetic market";      $PY bench/market_synthetic.py
echo "== features + engines";    $PY bench/features_engines.py --coins 400
echo "== backtest vs vectorbt";  $PY bench/backtest.py --coins 400
echo "== training DAG";          $PY bench/training_dag.py --coins "${COINS[@]}"
echo "== hamilton latency";      $PY bench/hamilton.py --coins 400
echo "== shadow false promotion"; $PY bench/shadow_false_promotion.py --reps "$REPS"
