"""Real-candles calibration of the promotion gate (issue 11, third experiment).

    python bench/selection_real.py                  # DAG + Hamilton replay + held-out backtests
    python bench/selection_real.py --workdir DIR --skip-dag   # re-evaluate a finished run

How it measures:

1. Store. Every Binance spot ``*_USDT-1h.parquet`` of ``shared/data/real/manifest.csv``
   (exchange binance, timeframe 1h: 126 coins, 2020-12-01 .. 2021-07-17 20:00 UTC) is copied
   into a fresh parquet store; the engine reads it with ``data.source: parquet``. The parquet
   source serves only the timeframes it has files for (it does not resample 1h to 4h), so the
   run uses ``engine.timeframes: [1h]`` only. The 221 zero-volume candles (of ~690k) are kept:
   an order decided on one waits for a bar with volume (ZERO_VOLUME_NOTE).
2. Training. One Dagster materialization of all DAILY_ASSETS (ranking -> ohlcv -> trained_models
   -> walk_forward_metrics -> best_models with the promotion gate -> shadow_evaluation ->
   brain_library_push) for partition 2021-05-30, whose data ends at 2021-05-31 00:00 UTC
   (``partition_end``), on a Dask LocalCluster of 2 workers. Config: the defaults (walk-forward,
   min_test_trades, gate, costs, risk, history_days 365 = all data since 2020-12-01) except the
   coin-selection filters, widened so every coin is eligible, and ``active_coins`` = all coins.
   Every key registered that day is a trial; its claimed figures (``oos_sharpe`` annualized,
   ``oos_sharpe_se``, ``oos_p_adjusted``, ``oos_dsr``, edge, trades) and gate verdict are read
   back from the Brain Library.
3. Held out: 2021-06-01 00:00 .. 2021-07-18 00:00 UTC (the data ends 2021-07-17 20:00).
   a. Production set: ``coin-engine hamilton run --paper --replay`` over that span in its own
      process, on the release the DAG wrote (skipped when no model passed the gate: then no
      release exists). Realized PnL per production key = the trade outcomes whose entry
      decision was in that coin x regime (outcome PnL, which nets the exit fee, minus the entry
      fee: taker fee on the entry notional); trades the release's coins made in other regimes
      are reported apart. Realized Sharpe = daily realized PnL / initial capital, x sqrt(365).
      Counterfactual: the gate-rejected keys whose claimed OOS Sharpe and edge are both > 0
      (the gate's first two conditions alone) are put in production in a COPY of the Brain
      Library, released there and replayed by Hamilton the same way (one shared book).
   b. Every key (production and rejected): the key's final model (the Brain Library artifact,
      trained on all data before 2021-05-31) backtested on the held-out bars by the walk-forward's
      own decision path (``decision.inputs.decision_inputs`` + ``run_backtest``): the coin
      is prepared over 2020-12-01 .. 2021-07-18 (causal features, same first bar as in
      training), the model predicts the held-out bars of its regime, the serving tables are the
      ones stored with the model (fitted on the training span), only bars of the key's regime
      may open trades, one coin book of ``initial_capital_usd``. Realized Sharpe is the
      backtest's (per-bar, annualized like ``oos_sharpe``), edge = average net return per trade
      after costs (bps), PnL = final equity - initial capital.
   c. Diagnostic (not the product's verdict): the product gate (``judge_keys``) rerun over the
      same trials with every key treated as eligible, i.e. the PSR p-values and BH adjustment
      without the evidence floor (min_windows, min_test_trades): ``diag_*`` fields.
4. Output: bench/results/selection_real.json (per key), selection_real.png (claimed vs realized
   Sharpe, y = x), a calibration table (claimed-Sharpe bins x gate verdict) and Spearman's rank
   correlation of claimed vs realized Sharpe, printed.
"""

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
REAL = Path(os.environ.get("COIN_ENGINE_REAL_DATA", str(REPO.parent / "shared" / "data" / "real")))
PARTITION = "2021-05-30"  # its data ends at partition_end = 2021-05-31 00:00 UTC
HOLDOUT_START = datetime(2021, 6, 1, tzinfo=UTC)
HOLDOUT_END = datetime(2021, 7, 18, tzinfo=UTC)  # exclusive; last candle 2021-07-17 20:00
TIMEFRAME = "1h"
ZERO_VOLUME_NOTE = (
    "zero-volume candles are kept: an order decided on a bar that traded nothing is deferred "
    "(reason cost_unavailable) until a bar with volume; before that fix it filled at an "
    "infinite price, turned the key's equity into NaN and failed walk_forward_metrics for the day"
)
BINS: tuple[tuple[str, float, float], ...] = (
    ("<0", -math.inf, 0.0),
    ("0-1", 0.0, 1.0),
    ("1-2", 1.0, 2.0),
    ("2-4", 2.0, 4.0),
    (">4", 4.0, math.inf),
)


# --- setup ---------------------------------------------------------------------------------


def build_store(store: Path) -> tuple[list[str], int]:
    """Copy the Binance spot 1h USDT candles of the manifest into ``store`` as they are (see
    ZERO_VOLUME_NOTE); their coins and the number of zero-volume candles among them."""
    import polars as pl

    store.mkdir(parents=True, exist_ok=True)
    coins, dropped = [], 0
    with (REAL / "manifest.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if (row["exchange"], row["timeframe"], row["market"], row["quote"]) != (
                "binance",
                TIMEFRAME,
                "spot",
                "USDT",
            ):
                continue
            bars = pl.read_parquet(REAL / row["file"])
            dropped += bars.filter(pl.col("volume") <= 0.0).height
            bars.write_parquet(store / Path(row["file"]).name)
            coins.append(row["symbol"])
    return sorted(coins), dropped


def engine_env(work: Path, n_coins: int) -> dict[str, str]:
    """ENGINE__ overrides: paths, parquet source, wide coin selection, all coins, 1h only."""
    return {
        "ENGINE__DATA__SOURCE": "parquet",
        "ENGINE__DATA__STORE_PATH": str(work / "ohlcv"),
        "ENGINE__TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN": f"sqlite:///{work}/brain.db",
        "ENGINE__TRAINING__MODEL_VERSIONING__STORAGE_PATH": str(work / "artifacts"),
        "ENGINE__HAMILTON__STATE_PATH": str(work / "hamilton"),
        "ENGINE__ENGINE__TIMEFRAMES": f"[{TIMEFRAME}]",
        "ENGINE__ENGINE__ACTIVE_COINS": str(n_coins),
        "ENGINE__COIN_SELECTION__MIN_DAILY_VOLUME_USD": "0",
        "ENGINE__COIN_SELECTION__MAX_SPREAD_BPS": "100000",
        "ENGINE__COIN_SELECTION__MIN_AGE_DAYS": "0",
        "ENGINE__TRAINING__DISTRIBUTED__NUM_WORKERS": "2",
    }


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- 2. the daily DAG ----------------------------------------------------------------------


def run_dag() -> dict[str, Any]:
    """One Dagster materialization of every daily asset for PARTITION (env already set)."""
    from selection import materialize_day  # bench/selection.py, beside this script

    success, wall_s = materialize_day(PARTITION)
    return {"success": success, "wall_s": wall_s}


def claimed_rows(library: Any) -> list[dict[str, Any]]:
    """Each key registered for the partition day: claimed OOS figures and the gate verdict."""
    from trading_core.training.orchestrate import candidates_of_day

    day = date.fromisoformat(PARTITION)
    rows = []
    for slug, model in sorted(candidates_of_day(library, day).items()):
        metrics, validation = model.metrics, model.validation or {}
        gate = validation.get("gate") or {}
        rows.append(
            {
                "key": slug,
                "coin": model.key.coin,
                "regime": model.key.regime,
                "timeframe": model.key.timeframe,
                "model": model.name,
                "stage": model.stage.value,
                "validation_status": validation.get("status"),
                "eligible": validation.get("eligible"),
                "claimed_sharpe": metrics.get("oos_sharpe"),
                "claimed_sharpe_se": metrics.get("oos_sharpe_se"),
                "claimed_edge_bps": metrics.get("oos_edge_after_cost_bps"),
                "claimed_trades": metrics.get("oos_n_trades"),
                "psr": metrics.get("oos_psr"),
                "p_value": metrics.get("oos_p_value"),
                "p_adjusted": metrics.get("oos_p_adjusted"),
                "dsr": metrics.get("oos_dsr"),
                "gate_trials": metrics.get("gate_trials"),
                "gate_passed": bool(gate.get("passed", False)),
                "gate_reason": gate.get("reason"),
            }
        )
    return rows


def diagnostic_gate(library: Any, config: Any, rows: Sequence[dict[str, Any]]) -> None:
    """The product gate (``judge_keys``) over the same trials with every key treated as
    eligible: the p-values the gate would compute without its evidence floor (min_windows,
    min_test_trades). A diagnostic only: the product verdict is ``gate_passed``."""
    from dataclasses import replace

    from trading_core.training.gate import judge_keys
    from trading_core.training.orchestrate import key_evidence

    versions = [library.get_model(r["model"]) for r in rows]
    evidence = [replace(key_evidence(v), eligible=True) for v in versions]
    verdicts = judge_keys(evidence, config.validation.promotion_gate)
    for row in rows:
        verdict = verdicts[row["key"]]
        row.update(
            {
                "diag_p_value": verdict.p_value,
                "diag_p_adjusted": verdict.p_adjusted,
                "diag_dsr": _finite(verdict.dsr),
                "diag_passed": verdict.passed,
                "diag_reason": verdict.reason,
            }
        )


def naive_set(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What ships without the gate's evidence floor and significance test: claimed OOS Sharpe
    and edge after costs both positive (the gate's first two conditions alone)."""
    return [
        r
        for r in rows
        if (r["claimed_sharpe"] or 0.0) > 0.0 and (r["claimed_edge_bps"] or 0.0) > 0.0
    ]


def counterfactual_release(
    work: Path, env: dict[str, str], keys: Sequence[dict[str, Any]]
) -> dict[str, str]:
    """A copy of the Brain Library in which ``keys`` (gate-rejected) are put in production and
    released, for a Hamilton replay of them; the environment that points at the copy. The
    artifacts are shared (their URIs are absolute), the original library is untouched."""
    from trading_core.brain import BrainLibrary
    from trading_core.config import load_config
    from trading_core.training.orchestrate import push_release
    from trading_core.types import Stage

    folder = work / "counterfactual"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(work / "brain.db", folder / "brain.db")
    cf_env = {
        **env,
        "ENGINE__TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN": f"sqlite:///{folder}/brain.db",
    }
    with environment(cf_env):
        library = BrainLibrary.from_config(load_config())
        for row in keys:
            library.set_stage(
                row["model"],
                Stage.PRODUCTION,
                actor="bench-selection-real",
                reason="counterfactual: claimed OOS Sharpe and edge > 0, gate bypassed",
            )
        push_release(
            library,
            date.fromisoformat(PARTITION),
            note="counterfactual release for bench/selection_real.py",
            created_by="bench-selection-real",
        )
        library.close()
    return cf_env


# --- 3a. Hamilton paper replay of the release ----------------------------------------------


def hamilton_replay(work: Path, tag: str) -> dict[str, Any]:
    """``coin-engine hamilton run --paper --replay`` over the held-out span, own process, on
    the latest release of the library the environment names."""
    state_dir = work / "hamilton" / tag
    shutil.rmtree(state_dir, ignore_errors=True)
    command = [
        str(REPO / ".venv" / "bin" / "coin-engine"),
        "hamilton", "run", "--paper", "--replay",
        "--from", HOLDOUT_START.isoformat(), "--to", HOLDOUT_END.isoformat(),
        "--timeframe", TIMEFRAME, "--state-dir", str(state_dir),
        "--metrics-port", "0", "--health-port", "0",
    ]  # fmt: skip
    log_path = work / f"hamilton-{tag}.log"
    started = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        done = subprocess.run(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True, check=False
        )
    wall = time.perf_counter() - started
    state_file = state_dir / "hamilton_state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    return {
        "returncode": done.returncode,
        "wall_s": wall,
        "summary": done.stdout[-4000:],
        "log": str(log_path),
        "risk_state": state.get("risk_state", {}),
        "symbols": state.get("symbols", []),
    }


def hamilton_pnl(library: Any, served: Sequence[dict[str, Any]], config: Any) -> dict[str, Any]:
    """Realized held-out PnL after costs per served key from the stored trade outcomes."""
    fee_bps = config.cost_model.fee_schedule[config.cost_model.venue].taker_bps
    capital = config.risk.initial_capital_usd
    quote = config.engine.quote
    events = library.query_decision_events(since=HOLDOUT_START, until=HOLDOUT_END, shadow=False)
    outcomes = [
        o
        for o in library.trade_outcomes(since=HOLDOUT_START, until=HOLDOUT_END + timedelta(days=1))
        if not o["shadow"]
    ]
    days = (HOLDOUT_END - HOLDOUT_START).days
    daily: dict[tuple[str, str], np.ndarray] = defaultdict(lambda: np.zeros(days))
    pnl: dict[tuple[str, str], float] = defaultdict(float)
    trades: dict[tuple[str, str], int] = defaultdict(int)
    for outcome in outcomes:
        details = outcome.get("details") or {}
        entry_fee = (
            float(details.get("closed_qty", 0.0))
            * float(details.get("entry_price", 0.0))
            * fee_bps
            * 1e-4
        )
        net = float(outcome["pnl_usd"]) - entry_fee
        group = (outcome["symbol"], outcome["regime"])
        closed = outcome["closed_at"]
        closed = closed if closed.tzinfo else closed.replace(tzinfo=UTC)
        index = min(max((closed - HOLDOUT_START).days, 0), days - 1)
        daily[group][index] += net / capital
        pnl[group] += net
        trades[group] += 1
    orders: dict[tuple[str, str], int] = defaultdict(int)
    for event in events:
        if event["action"] != "hold":
            orders[(event["symbol"], event["regime"])] += 1
    per_key = {}
    for row in served:
        group = (f"{row['coin']}/{quote}", row["regime"])
        per_key[row["key"]] = {
            "hamilton_pnl_usd": pnl.get(group, 0.0),
            "hamilton_closed_trades": trades.get(group, 0),
            "hamilton_orders": orders.get(group, 0),
            "hamilton_sharpe": _daily_sharpe(daily.get(group, np.zeros(days))),
        }
    keyed = {(f"{r['coin']}/{quote}", r["regime"]) for r in served}
    other = [g for g in pnl if g not in keyed]
    total = np.zeros(days)
    for series in daily.values():
        total += series
    return {
        "per_key": per_key,
        "events": len(events),
        "orders": sum(orders.values()),
        "closed_trades": len(outcomes),
        "realized_pnl_usd": sum(pnl.values()),
        "realized_pnl_usd_served_regimes": sum(pnl[g] for g in pnl if g in keyed),
        "realized_pnl_usd_other_regimes": sum(pnl[g] for g in other),
        "closed_trades_other_regimes": sum(trades[g] for g in other),
        "realized_daily_sharpe": _daily_sharpe(total),
        "fee_bps_per_fill": fee_bps,
    }


def _daily_sharpe(returns: np.ndarray) -> float | None:
    std = float(np.std(returns, ddof=1)) if returns.size > 1 else 0.0
    if std <= 0.0:
        return None
    return float(np.mean(returns) / std * math.sqrt(365.0))


# --- 3b. every key's final model on the held-out bars --------------------------------------


def holdout_backtests(library: Any, config: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Add the held-out backtest of each key's final model to its row (in place)."""
    by_coin: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_coin[row["coin"]].append(row)
    for n, (coin, coin_rows) in enumerate(sorted(by_coin.items()), 1):
        try:
            results = _coin_holdout(library, config, coin, coin_rows)
        except Exception as exc:  # noqa: BLE001 - one coin's failure is reported, not fatal
            results = {
                r["key"]: {"holdout_error": f"{type(exc).__name__}: {exc}"} for r in coin_rows
            }
        for row in coin_rows:
            row.update(results[row["key"]])
        if n % 20 == 0:
            print(f"  held-out backtests: {n}/{len(by_coin)} coins", flush=True)


def _coin_holdout(
    library: Any, config: Any, coin: str, rows: Sequence[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    from trading_core.backtest import BacktestConfig, run_backtest
    from trading_core.consensus import ConsensusParams
    from trading_core.costs import CostParams
    from trading_core.decision.inputs import (
        ServingTables,
        causal_reliability,
        decision_inputs,
        engine_votes,
        ml_vote,
    )
    from trading_core.regime import RegimeGates
    from trading_core.training.jobs import CoinJob, load_coin_frame
    from trading_core.training.model import load_booster, predict_bps
    from trading_core.types import REGIME_CODES, Regime

    job = CoinJob(
        symbol=f"{coin}/{config.engine.quote}",
        timeframe=TIMEFRAME,
        as_of=HOLDOUT_END,
        partition_date=(HOLDOUT_END - timedelta(days=1)).date().isoformat(),
        store_root=config.data.store_path,
        config=config,
        regimes=tuple(r["regime"] for r in rows),
    )
    frame = load_coin_frame(job)
    start_ms = int(HOLDOUT_START.timestamp() * 1000)
    holdout = np.flatnonzero(frame.timestamps_ms >= start_ms)
    params = ConsensusParams.from_config(config.consensus)
    cost_params = CostParams.from_config(config.cost_model)
    gates = RegimeGates.from_config(config.regime_gates)
    bt_config = BacktestConfig.from_engine_config(config, timeframe=TIMEFRAME)
    horizon = config.training.model.label_horizon_bars
    capital = config.risk.initial_capital_usd
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        model = library.get_model(row["model"])
        if not model.serving_tables:
            out[row["key"]] = {"holdout_error": "no serving tables stored with the model"}
            continue
        tables = ServingTables.from_payload(dict(model.serving_tables))
        code = REGIME_CODES[Regime(row["regime"])]
        in_regime = frame.regimes == code
        rows_to_predict = holdout[in_regime[holdout] & frame.warm[holdout]]
        forecast = np.full(frame.n_bars, np.nan)
        if rows_to_predict.size:
            booster = load_booster(library.load_artifact(model), nthread=1)
            forecast[rows_to_predict] = predict_bps(
                booster, frame.features[rows_to_predict], frame.feature_names
            )
        signal, confidence = ml_vote(forecast, config.consensus.ml_scale_bps)
        votes = engine_votes(frame, signal, confidence, gates)
        reliability = causal_reliability(frame, votes, params, horizon)
        inputs, _ = decision_inputs(
            frame,
            votes,
            reliability,
            holdout,
            tables,
            params=params,
            cost_params=cost_params,
            horizon_bars=horizon,
            ml_forecast_bps=forecast,
            trade_mask=in_regime,
        )
        metrics = run_backtest(inputs, bt_config).metrics
        out[row["key"]] = {
            "holdout_bars": int(holdout.size),
            "holdout_regime_bars": int(rows_to_predict.size),
            "realized_sharpe": _finite(metrics.sharpe),
            "realized_edge_bps": _finite(metrics.avg_net_return_bps) if metrics.n_trades else None,
            "realized_trades": int(metrics.n_trades),
            "realized_pnl_usd": float(metrics.final_equity_usd - capital),
            "realized_fees_usd": float(metrics.fees_usd),
            "realized_max_drawdown": _finite(metrics.max_drawdown),
        }
    return out


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# --- 4. calibration ------------------------------------------------------------------------


def calibration(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keys binned by claimed OOS Sharpe and gate verdict, with their held-out figures."""
    table = []
    for verdict in ("passed", "rejected"):
        for label, low, high in (*BINS, ("n/a", math.nan, math.nan)):
            members = [
                r
                for r in rows
                if r["gate_passed"] == (verdict == "passed")
                and _in_bin(r["claimed_sharpe"], low, high, label)
                and r.get("realized_sharpe") is not None
            ]
            if not members:
                continue
            edges = [r["realized_edge_bps"] for r in members if r["realized_edge_bps"] is not None]
            table.append(
                {
                    "gate": verdict,
                    "claimed_bin": label,
                    "count": len(members),
                    "mean_claimed_sharpe": _mean([r["claimed_sharpe"] for r in members]),
                    "mean_realized_sharpe": _mean([r["realized_sharpe"] for r in members]),
                    "mean_realized_edge_bps": _mean(edges),
                    "keys_trading": sum(r["realized_trades"] > 0 for r in members),
                    "share_positive_pnl": sum(r["realized_pnl_usd"] > 0 for r in members)
                    / len(members),
                }
            )
    return table


def group_summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Held-out figures of the product production set, the diagnostic gate's picks, the naive
    set and all keys."""
    naive = {r["key"] for r in naive_set(rows)}
    groups = {
        "production (gate passed)": [r for r in rows if r["gate_passed"]],
        "diagnostic gate passed (no evidence floor)": [r for r in rows if r.get("diag_passed")],
        "naive: claimed Sharpe > 0 and edge > 0": [r for r in rows if r["key"] in naive],
        "all keys": list(rows),
    }
    out = []
    for name, members in groups.items():
        scored = [r for r in members if r.get("realized_sharpe") is not None]
        edges = [r["realized_edge_bps"] for r in scored if r["realized_edge_bps"] is not None]
        out.append(
            {
                "group": name,
                "count": len(members),
                "mean_claimed_sharpe": _mean([r["claimed_sharpe"] for r in scored]),
                "mean_realized_sharpe": _mean([r["realized_sharpe"] for r in scored]),
                "mean_realized_edge_bps": _mean(edges),
                "realized_pnl_usd": float(sum(r["realized_pnl_usd"] for r in scored)),
                "share_positive_pnl": (
                    sum(r["realized_pnl_usd"] > 0 for r in scored) / len(scored) if scored else None
                ),
            }
        )
    return out


def _in_bin(value: float | None, low: float, high: float, label: str) -> bool:
    if value is None or not math.isfinite(value):
        return label == "n/a"
    return label != "n/a" and low <= value < high


def _mean(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def rank_correlation(rows: Sequence[dict[str, Any]], *, traded_only: bool) -> dict[str, Any]:
    from scipy.stats import spearmanr

    pairs = [
        (r["claimed_sharpe"], r["realized_sharpe"])
        for r in rows
        if r["claimed_sharpe"] is not None
        and r.get("realized_sharpe") is not None
        and (not traded_only or r["realized_trades"] > 0)
    ]
    if len(pairs) < 3:
        return {"n": len(pairs), "rho": None, "p_value": None}
    result = spearmanr([p[0] for p in pairs], [p[1] for p in pairs])
    return {"n": len(pairs), "rho": float(result.statistic), "p_value": float(result.pvalue)}


def _hamilton_vs_backtest(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Cross-check of 3b against Hamilton: rank correlation of the per-key held-out PnL of the
    counterfactual replay (one shared book) and of the per-key backtests (one book per key)."""
    from scipy.stats import spearmanr

    pairs = [
        (r["cf_hamilton_pnl_usd"], r["realized_pnl_usd"])
        for r in rows
        if "cf_hamilton_pnl_usd" in r and r.get("realized_pnl_usd") is not None
    ]
    if len(pairs) < 3:
        return {"n": len(pairs), "rho": None, "p_value": None}
    result = spearmanr([p[0] for p in pairs], [p[1] for p in pairs])
    return {"n": len(pairs), "rho": float(result.statistic), "p_value": float(result.pvalue)}


def print_table(table: Sequence[dict[str, Any]]) -> None:
    head = (
        f"{'gate':<9}{'claimed':>8}{'n':>5}{'claimed SR':>12}{'realized SR':>13}"
        f"{'edge bps':>10}{'trading':>9}{'PnL>0':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in table:
        print(
            f"{r['gate']:<9}{r['claimed_bin']:>8}{r['count']:>5}"
            f"{_fmt(r['mean_claimed_sharpe']):>12}{_fmt(r['mean_realized_sharpe']):>13}"
            f"{_fmt(r['mean_realized_edge_bps'], 1):>10}{r['keys_trading']:>9}"
            f"{r['share_positive_pnl']:>7.2f}"
        )


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def plot(rows: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5))
    points = [
        r for r in rows if r["claimed_sharpe"] is not None and r.get("realized_sharpe") is not None
    ]
    naive = {r["key"] for r in naive_set(rows)}
    groups = (
        ("rejected", "tab:gray", ".", 14, [r for r in points if not r["gate_passed"]
                                          and r["key"] not in naive]),
        ("rejected, claimed SR and edge > 0", "tab:blue", "o", 18,
         [r for r in points if not r["gate_passed"] and r["key"] in naive]),
        ("passed gate (production)", "tab:red", "D", 40, [r for r in points if r["gate_passed"]]),
    )  # fmt: skip
    for label, color, marker, size, chosen in groups:
        ax.scatter(
            [r["claimed_sharpe"] for r in chosen],
            [r["realized_sharpe"] for r in chosen],
            s=size,
            c=color,
            marker=marker,
            alpha=0.6,
            label=f"{label}: {len(chosen)}",
        )
    values = [v for r in points for v in (r["claimed_sharpe"], r["realized_sharpe"])]
    if values:
        low, high = min(values), max(values)
        ax.plot([low, high], [low, high], color="black", lw=0.8, ls="--", label="y = x")
    ax.axhline(0.0, color="gray", lw=0.5)
    ax.axvline(0.0, color="gray", lw=0.5)
    ax.set_xlabel("claimed walk-forward OOS Sharpe (annualized, training span)")
    ax.set_ylabel("realized held-out Sharpe (2021-06-01 .. 07-17)")
    ax.set_title(
        f"Binance 1h: {len(rows)} keys on {len({r['coin'] for r in rows})} coins, "
        "trained to 2021-05-31",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main ----------------------------------------------------------------------------------


def evaluate(
    work: Path, env: dict[str, str], out: dict[str, Any], *, skip_dag: bool, skip_hamilton: bool
) -> list[dict[str, Any]]:
    """Steps 2, 3a and 3b under ``env``; figures into ``out``, per-key rows returned."""
    from trading_core.brain import BrainLibrary
    from trading_core.config import load_config

    timings = out["timings_s"]
    with environment(env):
        if not skip_dag:
            dag = run_dag()
            timings["dag_s"] = dag["wall_s"]
            out["dag_success"] = dag["success"]
            print(f"DAG: success={dag['success']} in {dag['wall_s']:.1f} s", flush=True)
        config = load_config()
        library = BrainLibrary.from_config(config)
        rows = claimed_rows(library)
        production = [r for r in rows if r["stage"] == "production"]
        release = library.latest_release()
        out["release_id"] = release.id if release is not None else None
        out["n_production"] = len(production)
        print(
            f"keys: {len(rows)}, validated: "
            f"{sum(r['validation_status'] == 'validated' for r in rows)}, eligible: "
            f"{sum(bool(r['eligible']) for r in rows)}, gate passed: "
            f"{sum(r['gate_passed'] for r in rows)}, production: {len(production)}",
            flush=True,
        )
        diagnostic_gate(library, config, rows)
        if release is None:
            out["hamilton_production"] = {
                "skipped": "no model passed the gate: no release was written, nothing to replay"
            }
        elif not skip_hamilton:
            replay = hamilton_replay(work, "production")
            timings["hamilton_production_s"] = replay["wall_s"]
            print(replay["summary"], flush=True)
            out["hamilton_production"] = {**replay, **hamilton_pnl(library, production, config)}
            for row in production:
                row.update(out["hamilton_production"]["per_key"].get(row["key"], {}))
        started = time.perf_counter()
        holdout_backtests(library, config, rows)
        timings["holdout_backtests_s"] = time.perf_counter() - started
        library.close()
    naive = naive_set(rows)
    if naive and not skip_hamilton:
        cf_env = counterfactual_release(work, env, naive)
        with environment(cf_env):
            replay = hamilton_replay(work, "counterfactual")
            timings["hamilton_counterfactual_s"] = replay["wall_s"]
            print(replay["summary"], flush=True)
            cf_library = BrainLibrary.from_config(load_config())
            cf = {**replay, **hamilton_pnl(cf_library, naive, config)}
            cf_library.close()
        out["hamilton_counterfactual"] = {
            "what": "gate-rejected keys with claimed OOS Sharpe > 0 and edge > 0, released "
            "in a copy of the library and replayed by Hamilton",
            **cf,
        }
        for row in naive:
            row.update({f"cf_{k}": v for k, v in cf["per_key"].get(row["key"], {}).items()})
    return rows


def report(rows: list[dict[str, Any]], out: dict[str, Any]) -> None:
    """Write the JSON and the PNG, print the calibration table."""
    table = calibration(rows)
    groups = group_summary(rows)
    out.update(
        {
            "n_keys": len(rows),
            "n_scored": sum(r.get("realized_sharpe") is not None for r in rows),
            "n_diag_passed": sum(bool(r.get("diag_passed")) for r in rows),
            "calibration": table,
            "groups": groups,
            "spearman_all": rank_correlation(rows, traded_only=False),
            "spearman_traded": rank_correlation(rows, traded_only=True),
            "spearman_hamilton_vs_backtest_pnl": _hamilton_vs_backtest(rows),
            "keys": rows,
        }
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "selection_real.json").write_text(json.dumps(out, indent=2, default=str))
    plot(rows, RESULTS / "selection_real.png")
    print_table(table)
    for g in groups:
        print(
            f"{g['group']:<45} n={g['count']:<4} claimed SR {_fmt(g['mean_claimed_sharpe'])}"
            f"  realized SR {_fmt(g['mean_realized_sharpe'])}"
            f"  edge {_fmt(g['mean_realized_edge_bps'], 1)} bps  PnL {g['realized_pnl_usd']:,.0f}"
            f"  PnL>0 {_fmt(g['share_positive_pnl'])}"
        )
    print(f"spearman (all scored keys): {out['spearman_all']}")
    print(f"spearman (keys with held-out trades): {out['spearman_traded']}")
    print(f"spearman Hamilton vs backtest PnL: {out['spearman_hamilton_vs_backtest_pnl']}")
    print(f"timings: {json.dumps(out['timings_s'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="default: a new temporary folder (kept)")
    parser.add_argument("--skip-dag", action="store_true", help="reuse the workdir's library")
    parser.add_argument("--skip-hamilton", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="bench-selection-real-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"workdir: {work}", flush=True)
    coins, dropped = build_store(work / "ohlcv")
    env = engine_env(work, len(coins))
    out: dict[str, Any] = {
        "partition": PARTITION,
        "train_data_end": "2021-05-31T00:00:00+00:00",
        "holdout": [HOLDOUT_START.isoformat(), HOLDOUT_END.isoformat()],
        "coins": len(coins),
        "timeframes": [TIMEFRAME],
        "zero_volume_candles_kept": dropped,
        "zero_volume_note": ZERO_VOLUME_NOTE,
        "overrides": env,
        "timings_s": {},
    }
    rows = evaluate(work, env, out, skip_dag=args.skip_dag, skip_hamilton=args.skip_hamilton)
    out["timings_s"]["total_s"] = time.perf_counter() - started
    report(rows, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
