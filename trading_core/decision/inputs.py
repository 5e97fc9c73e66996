"""From a prepared coin to per-bar decision inputs: the one path both the walk-forward
validation (training DAG) and Hamilton use.

``ServingTables`` are what a coin x timeframe needs besides its bars to vote: the correlation
clusters of the engines (the correlation penalty's divisors) and the consensus' information
coefficient per regime (which turns a consensus score into an expected return). The walk-forward
fits them on each window's training bars and applies them to its test bars; the training DAG
stores the tables fitted on the whole history with the models; Hamilton reads them from the
release. Reliability weights are causal (``reliability_series``) and computed from the bars.

The learned engine's forecast, when its regime has a model, is the expected return of the bar;
otherwise the consensus score is mapped to one with the regime's information coefficient.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trading_core.backtest.engine import BacktestInputs
from trading_core.backtest.walk import ATR_PCT_COLUMN, SPREAD_COLUMN, VOLATILITY_COLUMN, EngineVotes
from trading_core.consensus import (
    ConsensusParams,
    ConsensusResult,
    calibrate_information_coefficients_by_regime,
    cluster_divisors,
    combine_votes,
    consensus_expected_return_bps,
    forward_return_sign,
    reliability_series,
)
from trading_core.costs import CostParams, resolve_spread_bps_array
from trading_core.engines import ENGINE_NAMES
from trading_core.regime import RegimeGates
from trading_core.training.dataset import CoinFrame
from trading_core.types import REGIMES

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ServingTables:
    """Correlation divisors by regime (4, n_engines) and information coefficients by regime (4,)."""

    cluster_divisors: FloatArray
    ic_by_regime: FloatArray
    engine_names: tuple[str, ...] = ENGINE_NAMES

    def __post_init__(self) -> None:
        divisors = np.asarray(self.cluster_divisors, dtype=np.float64)
        ic = np.asarray(self.ic_by_regime, dtype=np.float64)
        if divisors.shape != (len(REGIMES), len(self.engine_names)) or np.any(divisors < 1.0):
            raise ValueError(
                f"cluster_divisors {divisors.shape} must hold one value >= 1 per regime and "
                f"engine ({len(REGIMES)}, {len(self.engine_names)})"
            )
        if ic.shape != (len(REGIMES),) or not np.all(np.isfinite(ic)):
            raise ValueError(f"ic_by_regime must hold {len(REGIMES)} finite values; got {ic!r}")
        object.__setattr__(self, "cluster_divisors", divisors)
        object.__setattr__(self, "ic_by_regime", ic)

    def to_payload(self) -> dict[str, Any]:
        return {
            "engines": list(self.engine_names),
            "cluster_divisors": self.cluster_divisors.tolist(),
            "ic_by_regime": {
                r.value: float(v) for r, v in zip(REGIMES, self.ic_by_regime, strict=True)
            },
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "ServingTables":
        ic = payload["ic_by_regime"]
        return cls(
            cluster_divisors=np.asarray(payload["cluster_divisors"], dtype=np.float64),
            ic_by_regime=np.asarray([float(ic[r.value]) for r in REGIMES]),
            engine_names=tuple(payload["engines"]),
        )


def engine_votes(
    frame: CoinFrame, ml_signal: FloatArray, ml_confidence: FloatArray, gates: RegimeGates
) -> EngineVotes:
    """The 23 engines' votes of ``frame``: the 22 rule engines plus ml_brain's column."""
    n = frame.n_bars
    if ml_signal.shape != (n,) or ml_confidence.shape != (n,):
        raise ValueError(f"ml arrays must have shape ({n},)")
    return EngineVotes(
        signals=np.column_stack([frame.rule_signals, ml_signal]),
        confidences=np.column_stack([frame.rule_confidences, ml_confidence]),
        regimes=frame.regimes,
        enabled=np.vstack([gates.enabled_mask(r) for r in REGIMES]),
        weight_multipliers=np.vstack([gates.weight_multipliers(r) for r in REGIMES]),
    )


def ml_vote(forecast_bps: FloatArray, scale_bps: float) -> tuple[FloatArray, FloatArray]:
    """ml_brain's signal and confidence from a forecast (NaN -> abstain), as the engine maps it."""
    known = np.isfinite(forecast_bps)
    signal = np.where(known, np.tanh(np.where(known, forecast_bps, 0.0) / scale_bps), 0.0)
    return signal, np.abs(signal)


def causal_reliability(
    frame: CoinFrame, votes: EngineVotes, params: ConsensusParams, horizon_bars: int
) -> FloatArray:
    close = frame.bars["close"].to_numpy()
    outcome = forward_return_sign(close, horizon_bars)
    return reliability_series(
        votes.signals,
        outcome,
        votes.regimes,
        decay=params.decay,
        prior=params.prior,
        horizon_bars=horizon_bars,
    )


def consensus_on(
    votes: EngineVotes,
    reliability: FloatArray,
    rows: IntArray,
    tables: ServingTables,
    params: ConsensusParams,
) -> ConsensusResult:
    return combine_votes(
        votes.signals[rows],
        votes.confidences[rows],
        votes.regimes[rows],
        reliability[rows],
        enabled=votes.enabled,
        weight_multipliers=votes.weight_multipliers,
        cluster_divisors=tables.cluster_divisors,
        params=params,
    )


def fit_serving_tables(
    frame: CoinFrame,
    votes: EngineVotes,
    reliability: FloatArray,
    rows: IntArray,
    params: ConsensusParams,
    horizon_bars: int,
) -> ServingTables:
    """Tables fitted on ``rows`` only (a window's training bars, or the whole history)."""
    divisors = cluster_divisors(
        votes.signals[rows],
        votes.enabled,
        params.correlation_threshold,
        confidence_window=votes.confidences[rows],
        weight_multipliers=votes.weight_multipliers,
    )
    provisional = ServingTables(divisors, np.zeros(len(REGIMES)))
    score = consensus_on(votes, reliability, rows, provisional, params).score
    volatility_bps = _column(frame, VOLATILITY_COLUMN) * 1e4
    label = np.where(np.isfinite(frame.label_bps), frame.label_bps, np.nan)
    ic = calibrate_information_coefficients_by_regime(
        score, label[rows], volatility_bps[rows], votes.regimes[rows], horizon_bars
    )
    return ServingTables(divisors, np.nan_to_num(np.asarray(ic, dtype=np.float64)))


def decision_inputs(
    frame: CoinFrame,
    votes: EngineVotes,
    reliability: FloatArray,
    rows: IntArray,
    tables: ServingTables,
    *,
    params: ConsensusParams,
    cost_params: CostParams,
    horizon_bars: int,
    ml_forecast_bps: FloatArray | None = None,
    trade_mask: npt.NDArray[np.bool_] | None = None,
) -> tuple[BacktestInputs, ConsensusResult]:
    """Per-bar decision inputs of ``rows`` (and their consensus, for DecisionEvents).

    ``trade_mask`` (over all bars) forces a hold where False: the walk-forward of one regime's
    model only trades that regime's bars.
    """
    result = consensus_on(votes, reliability, rows, tables, params)
    volatility_bps = _column(frame, VOLATILITY_COLUMN) * 1e4
    forecast = consensus_expected_return_bps(
        result.score, volatility_bps[rows], horizon_bars, tables.ic_by_regime[votes.regimes[rows]]
    )
    if ml_forecast_bps is not None:
        ml = ml_forecast_bps[rows]
        forecast = np.where(np.isfinite(ml), ml, forecast)
    action = result.action.copy()
    if trade_mask is not None:
        action[~trade_mask[rows]] = 0
    close = _column(frame, "close")
    atr = _column(frame, ATR_PCT_COLUMN) * close
    spread = resolve_spread_bps_array(cost_params, _column(frame, SPREAD_COLUMN), frame.n_bars)
    known = np.isfinite(atr) & np.isfinite(volatility_bps) & frame.warm
    inputs = BacktestInputs(
        symbol=frame.symbol,
        timestamps_ms=frame.timestamps_ms[rows],
        open=_column(frame, "open")[rows],
        close=close[rows],
        volume=_column(frame, "volume")[rows],
        atr=np.nan_to_num(atr[rows]),
        volatility_bps=np.nan_to_num(volatility_bps[rows]),
        half_spread_bps=np.nan_to_num(spread[rows]) / 2.0,
        regime=votes.regimes[rows],
        action=action,
        confidence=result.confidence,
        score=result.score,
        expected_return_bps=np.nan_to_num(forecast),
        data_valid=known[rows],
    )
    return inputs, result


def _column(frame: CoinFrame, name: str) -> FloatArray:
    if name not in frame.bars.columns:
        raise ValueError(f"prepared bars lack the column {name!r}; run prepare_coin_frame first")
    values: FloatArray = frame.bars[name].cast(float).fill_null(np.nan).to_numpy()
    return values
