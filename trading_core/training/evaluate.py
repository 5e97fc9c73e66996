"""Purged walk-forward validation of each regime model of one coin x timeframe.

For every window (``trading_core.validation.purged_walk_forward_splits``) the regime's model is
trained on the window's purged training bars of that regime only, predicts the test bars of that
regime, and the whole decision flow (23 engines with ml_brain voting, consensus with serving
tables fitted on the training span, cost check, risk enforcement) is simulated on the test span
with the trading-core backtest; only bars of the regime may open trades. Windows run in time
order; the overall figures come from one backtest over the concatenated test spans (positions
carry across windows, as they would live).

A window is not usable (and says why in its ``reason``) when its training span holds fewer than
``MIN_WINDOW_TRAIN_ROWS`` labelled bars of the regime or its test span holds no bars at all (an
exchange outage); the other windows of the key go on. A key is eligible for release only with
at least ``min_windows`` usable windows and ``min_test_trades`` trades overall.
"""

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from trading_core.backtest import BacktestConfig, BacktestInputs, BacktestResult, run_backtest
from trading_core.consensus import ConsensusParams
from trading_core.costs import CostParams
from trading_core.decision.inputs import (
    causal_reliability,
    decision_inputs,
    engine_votes,
    fit_serving_tables,
    ml_vote,
)
from trading_core.engines import ENGINE_NAMES
from trading_core.errors import InsufficientDataError
from trading_core.regime import RegimeGates
from trading_core.training.dataset import CoinFrame
from trading_core.training.jobs import CoinJob, load_coin_frame
from trading_core.training.model import fit_forward_return_model, load_booster, predict_bps
from trading_core.training.significance import SharpeEvidence, sharpe_evidence
from trading_core.types import REGIME_CODES, Regime, timeframe_ms
from trading_core.validation import WalkForwardSplit, purged_walk_forward_splits

FloatArray = npt.NDArray[np.float64]
MIN_WINDOW_TRAIN_ROWS = 30


@dataclass(frozen=True)
class KeyValidation:
    """Out-of-sample results of one coin x regime x timeframe."""

    coin: str
    regime: str
    timeframe: str
    status: str  # "validated" | "skipped"
    reason: str
    eligible: bool
    windows: tuple[dict[str, Any], ...] = ()
    overall: dict[str, float] = field(default_factory=dict)
    reliability: dict[str, float] = field(default_factory=dict)
    hit_rates: dict[str, dict[str, float]] = field(default_factory=dict)
    correlation: dict[str, dict[str, float]] = field(default_factory=dict)
    equity_ms: tuple[int, ...] = ()
    equity_usd: tuple[float, ...] = ()
    splits: tuple[WalkForwardSplit, ...] = ()
    timestamps_ms: npt.NDArray[np.int64] | None = None
    label_end_ms: npt.NDArray[np.int64] | None = None  # per bar; see CoinFrame.label_end_ms

    @property
    def slug(self) -> str:
        return f"{self.coin}_{self.regime}_{self.timeframe}"

    def metrics(self) -> dict[str, float]:
        """Flat out-of-sample figures for the Brain Library (``oos_`` prefix)."""
        out = {f"oos_{k}": float(v) for k, v in self.overall.items() if math.isfinite(float(v))}
        out["oos_windows"] = float(sum(1 for w in self.windows if w["usable"]))
        out["oos_eligible"] = 1.0 if self.eligible else 0.0
        return out


def validate_coin(job: CoinJob) -> list[KeyValidation]:
    """Worker entry point: load and prepare once, validate each regime."""
    frame = load_coin_frame(job)
    return [validate_key(frame, job, Regime(name)) for name in job.regimes]


def validate_key(frame: CoinFrame, job: CoinJob, regime: Regime) -> KeyValidation:
    config = job.config
    horizon = config.training.model.label_horizon_bars
    base = (job.coin, regime.value, job.timeframe)
    try:
        splits = purged_walk_forward_splits(
            frame.timestamps_ms,
            config.validation.walk_forward,
            bar_ms=timeframe_ms(job.timeframe),
            label_horizon_bars=horizon,
        )
    except InsufficientDataError as exc:
        return KeyValidation(*base, status="skipped", reason=str(exc), eligible=False)
    runner = _WindowRunner(frame, job, regime)
    results = [runner.run(split) for split in splits]
    usable = [r for r in results if r.inputs is not None]
    if not usable:
        return KeyValidation(
            *base,
            status="skipped",
            reason="no usable window: "
            + "; ".join(sorted({str(r.summary["reason"]) for r in results})),
            eligible=False,
            windows=tuple(r.summary for r in results),
            splits=tuple(splits),
            timestamps_ms=frame.timestamps_ms,
            label_end_ms=frame.label_end_ms,
        )
    overall = run_backtest(concat_inputs([r.inputs for r in usable if r.inputs]), runner.bt_config)
    eligible, reason = _eligibility(len(usable), overall.metrics.n_trades, job)
    evidence = sharpe_evidence(
        overall.returns, min_returns=job.config.validation.promotion_gate.min_oos_returns
    )
    test_rows = np.concatenate([r.test_rows for r in usable])
    return KeyValidation(
        *base,
        status="validated",
        reason=reason,
        eligible=eligible,
        windows=tuple(r.summary for r in results),
        overall={**_metric_dict(overall), **_evidence_dict(evidence)},
        reliability=_hit_rates(frame, runner.last_signals, test_rows)[0],
        hit_rates=_hit_rates(frame, runner.last_signals, test_rows)[1],
        correlation=_correlation(runner.last_signals, test_rows),
        equity_ms=tuple(int(t) for t in overall.timestamps_ms),
        equity_usd=tuple(float(e) for e in overall.equity),
        splits=tuple(splits),
        timestamps_ms=frame.timestamps_ms,
        label_end_ms=frame.label_end_ms,
    )


@dataclass
class _WindowResult:
    summary: dict[str, Any]
    inputs: BacktestInputs | None
    test_rows: npt.NDArray[np.int64]


class _WindowRunner:
    """Trains and simulates one window at a time (shared prepared state of the coin)."""

    def __init__(self, frame: CoinFrame, job: CoinJob, regime: Regime) -> None:
        config = job.config
        self.frame, self.job, self.code = frame, job, REGIME_CODES[regime]
        self.horizon = config.training.model.label_horizon_bars
        self.params = ConsensusParams.from_config(config.consensus)
        self.cost_params = CostParams.from_config(config.cost_model)
        self.gates = RegimeGates.from_config(config.regime_gates)
        self.bt_config = BacktestConfig.from_engine_config(config, timeframe=job.timeframe)
        self.trainable = frame.trainable(self.code)
        self.last_signals = np.zeros((frame.n_bars, len(ENGINE_NAMES)))

    def run(self, split: WalkForwardSplit) -> _WindowResult:
        train_rows = split.train_idx[self.trainable[split.train_idx]]
        in_regime = self.frame.regimes[split.test_idx] == self.code
        test_rows = split.test_idx[in_regime & self.frame.warm[split.test_idx]]
        summary: dict[str, Any] = {
            "window": split.window,
            "test_start_ms": split.test_start_ms,
            "test_end_ms": split.test_end_ms,
            "train_rows": int(train_rows.size),
            "test_regime_bars": int(test_rows.size),
            "usable": False,
        }
        if split.test_idx.size == 0:
            summary["reason"] = "test span holds no bars (outage)"
            return _WindowResult(summary, None, test_rows)
        if train_rows.size < MIN_WINDOW_TRAIN_ROWS:
            summary["reason"] = f"{train_rows.size} training bars < {MIN_WINDOW_TRAIN_ROWS}"
            return _WindowResult(summary, None, test_rows)
        started = time.perf_counter()
        forecast = self._forecast(train_rows, test_rows)
        summary["fit_s"] = time.perf_counter() - started
        inputs = self._inputs(split, forecast)
        result = run_backtest(inputs, self.bt_config)
        summary.update(usable=True, **_metric_dict(result))
        return _WindowResult(summary, inputs, test_rows)

    def _forecast(
        self, train_rows: npt.NDArray[np.int64], test_rows: npt.NDArray[np.int64]
    ) -> FloatArray:
        frame, section = self.frame, self.job.config.training.model
        model = fit_forward_return_model(
            frame.features[train_rows],
            frame.label_bps[train_rows],
            frame.feature_names,
            section,
            device=self.job.device,
        )
        forecast = np.full(frame.n_bars, np.nan)
        if test_rows.size:
            booster = load_booster(model.artifact, nthread=section.nthread)
            forecast[test_rows] = predict_bps(
                booster, frame.features[test_rows], frame.feature_names
            )
        return forecast

    def _inputs(self, split: WalkForwardSplit, forecast: FloatArray) -> BacktestInputs:
        frame = self.frame
        signal, confidence = ml_vote(forecast, self.job.config.consensus.ml_scale_bps)
        votes = engine_votes(frame, signal, confidence, self.gates)
        self.last_signals[split.test_idx] = votes.signals[split.test_idx]
        reliability = causal_reliability(frame, votes, self.params, self.horizon)
        tables = fit_serving_tables(
            frame, votes, reliability, split.train_idx, self.params, self.horizon
        )
        inputs, _ = decision_inputs(
            frame,
            votes,
            reliability,
            split.test_idx,
            tables,
            params=self.params,
            cost_params=self.cost_params,
            horizon_bars=self.horizon,
            ml_forecast_bps=forecast,
            trade_mask=frame.regimes == self.code,
        )
        return inputs


def _metric_dict(result: BacktestResult) -> dict[str, float]:
    m = result.metrics
    return {
        "sharpe": m.sharpe,
        "sortino": m.sortino,
        "max_drawdown": m.max_drawdown,
        "hit_rate": m.hit_rate,
        "edge_after_cost_bps": m.avg_net_return_bps,
        "expected_net_edge_bps": m.avg_expected_net_edge_bps,
        "n_trades": float(m.n_trades),
        "total_return": m.total_return,
        "turnover": m.turnover,
    }


def _evidence_dict(evidence: SharpeEvidence) -> dict[str, float]:
    """The moments the promotion gate needs (``trading_core.training.gate``); NaN when the
    series is no evidence (the metrics export drops non-finite values)."""
    return {
        "n_returns": float(evidence.n_returns),
        "sharpe_per_bar": evidence.sharpe_per_bar,
        "return_skewness": evidence.skewness,
        "return_kurtosis": evidence.kurtosis,
    }


def _eligibility(n_windows: int, n_trades: int, job: CoinJob) -> tuple[bool, str]:
    section = job.config.validation.walk_forward
    problems = []
    if n_windows < section.min_windows:
        problems.append(f"{n_windows} usable windows < min_windows {section.min_windows}")
    if n_trades < section.min_test_trades:
        problems.append(f"{n_trades} test trades < min_test_trades {section.min_test_trades}")
    if problems:
        return False, "; ".join(problems)
    return True, f"{n_windows} windows, {n_trades} trades"


def concat_inputs(parts: Sequence[BacktestInputs]) -> BacktestInputs:
    """One coin's inputs of consecutive windows as one (positions carry across windows)."""
    values = {
        f.name: np.concatenate([getattr(p, f.name) for p in parts])
        for f in fields(BacktestInputs)
        if f.name != "symbol"
    }
    return BacktestInputs(symbol=parts[0].symbol, **values)


def _hit_rates(
    frame: CoinFrame, signals: FloatArray, rows: npt.NDArray[np.int64]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Out-of-sample hit rate of each engine's direction against the label on ``rows``."""
    label = frame.label_bps[rows]
    reliability: dict[str, float] = {}
    detail: dict[str, dict[str, float]] = {}
    for j, name in enumerate(ENGINE_NAMES):
        sig = signals[rows, j]
        voted = (sig != 0.0) & np.isfinite(label)
        n = int(voted.sum())
        hit = float(np.mean(np.sign(sig[voted]) == np.sign(label[voted]))) if n else 0.5
        reliability[name] = hit
        detail[name] = {"hit_rate": hit, "n_votes": float(n)}
    return reliability, detail


def _correlation(signals: FloatArray, rows: npt.NDArray[np.int64]) -> dict[str, dict[str, float]]:
    block = signals[rows]
    if block.shape[0] < 3:
        return {}
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(block, rowvar=False)
    corr = np.clip(np.nan_to_num(corr, nan=0.0), -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return {
        a: {b: round(float(corr[i, j]), 6) for j, b in enumerate(ENGINE_NAMES)}
        for i, a in enumerate(ENGINE_NAMES)
    }
