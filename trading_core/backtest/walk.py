"""Walk-forward consensus inputs: what the training DAG and the edge tests backtest.

For each purged walk-forward split (:mod:`trading_core.validation.walk_forward`) the
correlation clusters and the consensus' information coefficient (one per regime) are fitted
on the split's training bars only (whose labels close before the purge gap), then applied to
its test bars; the reliability weights are causal over the whole series. The test windows,
concatenated, become one :class:`BacktestInputs`, so positions carry across windows as live.

Per-bar market inputs come from the feature columns named below (``compute_features``):
ATR = ``atr_14_pct x close``, one bar's volatility = ``realized_vol_24`` (log-return standard
deviation), the candle spread estimate = ``spread_cs_bps``. A bar whose features are still
warming up is flagged invalid (the decision step holds on it).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from trading_core.backtest.engine import BacktestInputs
from trading_core.consensus import (
    ConsensusParams,
    calibrate_information_coefficients_by_regime,
    cluster_divisors,
    combine_votes,
    consensus_expected_return_bps,
    forward_return_sign,
    reliability_series,
)
from trading_core.costs import CostParams, resolve_spread_bps_array
from trading_core.validation.walk_forward import WalkForwardSplit

ATR_PCT_COLUMN: Final = "atr_14_pct"
VOLATILITY_COLUMN: Final = "realized_vol_24"
SPREAD_COLUMN: Final = "spread_cs_bps"
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EngineVotes:
    """The engines' per-bar output and the regime gates, as plain arrays (n_bars, n_engines)
    and (n_regimes, n_engines)."""

    signals: FloatArray
    confidences: FloatArray
    regimes: npt.NDArray[np.int8]
    enabled: npt.NDArray[np.bool_]
    weight_multipliers: FloatArray


def _column(frame: pl.DataFrame, name: str) -> FloatArray:
    if name not in frame.columns:
        raise ValueError(f"bars lack the feature column {name!r}; run compute_features first")
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


def _window_consensus(
    votes: EngineVotes,
    reliability: FloatArray,
    rows: npt.NDArray[np.int64],
    divisors: FloatArray,
    params: ConsensusParams,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int8]]:
    result = combine_votes(
        votes.signals[rows],
        votes.confidences[rows],
        votes.regimes[rows],
        reliability[rows],
        enabled=votes.enabled,
        weight_multipliers=votes.weight_multipliers,
        cluster_divisors=divisors,
        params=params,
    )
    return result.score, result.confidence, result.action


def consensus_walk_forward_inputs(
    bars_with_features: pl.DataFrame,
    votes: EngineVotes,
    splits: Sequence[WalkForwardSplit],
    *,
    symbol: str,
    consensus: ConsensusParams,
    cost_params: CostParams,
    horizon_bars: int,
) -> BacktestInputs:
    """Backtest inputs over the splits' test bars (see the module docstring)."""
    n = bars_with_features.height
    if votes.signals.shape[0] != n or votes.regimes.shape != (n,):
        raise ValueError(f"votes cover {votes.signals.shape[0]} bars; bars have {n}")
    if not splits:
        raise ValueError("no walk-forward splits: nothing to test")
    close = _column(bars_with_features, "close")
    volatility_bps = _column(bars_with_features, VOLATILITY_COLUMN) * 1e4
    outcome = forward_return_sign(close, horizon_bars)
    forward_bps = np.full(n, np.nan)
    forward_bps[:-horizon_bars] = np.log(close[horizon_bars:] / close[:-horizon_bars]) * 1e4
    reliability = reliability_series(
        votes.signals,
        outcome,
        votes.regimes,
        decay=consensus.decay,
        prior=consensus.prior,
        horizon_bars=horizon_bars,
    )
    walked = _WalkedConsensus.empty(n)
    for split in splits:
        train, test = split.train_idx, split.test_idx
        divisors = cluster_divisors(
            votes.signals[train],
            votes.enabled,
            consensus.correlation_threshold,
            confidence_window=votes.confidences[train],
            weight_multipliers=votes.weight_multipliers,
        )
        train_score, _, _ = _window_consensus(votes, reliability, train, divisors, consensus)
        ic_by_regime = calibrate_information_coefficients_by_regime(
            train_score,
            forward_bps[train],
            volatility_bps[train],
            votes.regimes[train],
            horizon_bars,
        )
        score, confidence, action = _window_consensus(votes, reliability, test, divisors, consensus)
        walked.score[test], walked.confidence[test], walked.action[test] = score, confidence, action
        walked.forecast_bps[test] = consensus_expected_return_bps(
            score, volatility_bps[test], horizon_bars, ic_by_regime[votes.regimes[test]]
        )
    rows = np.unique(np.concatenate([s.test_idx for s in splits]))
    return _inputs(bars_with_features, symbol, votes.regimes, cost_params, rows, walked)


@dataclass(frozen=True)
class _WalkedConsensus:
    """Per-bar consensus outputs filled window by window (zero outside the test windows)."""

    score: FloatArray
    confidence: FloatArray
    action: npt.NDArray[np.int8]
    forecast_bps: FloatArray

    @classmethod
    def empty(cls, n_bars: int) -> "_WalkedConsensus":
        zeros = np.zeros(n_bars)
        return cls(zeros.copy(), zeros.copy(), np.zeros(n_bars, dtype=np.int8), zeros.copy())


def _inputs(
    bars: pl.DataFrame,
    symbol: str,
    regimes: npt.NDArray[np.int8],
    cost_params: CostParams,
    rows: npt.NDArray[np.int64],
    walked: _WalkedConsensus,
) -> BacktestInputs:
    close = _column(bars, "close")
    atr = _column(bars, ATR_PCT_COLUMN) * close
    volatility_bps = _column(bars, VOLATILITY_COLUMN) * 1e4
    spread = resolve_spread_bps_array(cost_params, _column(bars, SPREAD_COLUMN), bars.height)
    known = np.isfinite(atr) & np.isfinite(volatility_bps)
    forecast = walked.forecast_bps
    return BacktestInputs(
        symbol=symbol,
        timestamps_ms=bars["timestamp"].dt.epoch("ms").to_numpy()[rows],
        open=_column(bars, "open")[rows],
        close=close[rows],
        volume=_column(bars, "volume")[rows],
        atr=atr[rows],
        volatility_bps=volatility_bps[rows],
        half_spread_bps=spread[rows] / 2.0,
        regime=regimes[rows],
        action=walked.action[rows],
        confidence=walked.confidence[rows],
        score=walked.score[rows],
        expected_return_bps=np.where(np.isfinite(forecast), forecast, 0.0)[rows],
        data_valid=known[rows],
    )
