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

:func:`decision_rows` is the one place that turns market columns, a consensus and forecasts into
per-row decision inputs: :func:`decision_inputs` feeds it a coin's history (the walk-forward
backtest), ``hamilton_exec.tick.coin_decisions.prepare_decisions`` the newest bar of every coin of a
tick (production and shadow books).
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trading_core.backtest.engine import BacktestInputs
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
from trading_core.decision.columns import (
    VOLATILITY_COLUMN,
    BoolArray,
    DecisionColumns,
    DecisionRows,
    EngineVotes,
    frame_column,
)
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
    volatility_bps = frame_column(frame, VOLATILITY_COLUMN) * 1e4
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
    trade_mask: BoolArray | None = None,
) -> tuple[BacktestInputs, ConsensusResult]:
    """Per-bar decision inputs of ``rows`` of a coin's history (and their consensus, for
    DecisionEvents): :func:`decision_rows` with the spread resolved from the candle estimate
    (a history has no live book).

    ``trade_mask`` (over all bars) forces a hold where False: the walk-forward of one regime's
    model only trades that regime's bars.
    """
    result = consensus_on(votes, reliability, rows, tables, params)
    decided = decision_rows(
        DecisionColumns.from_frame(frame, rows),
        result,
        tables.ic_by_regime[votes.regimes[rows]],
        horizon_bars=horizon_bars,
        ml_forecast_bps=None if ml_forecast_bps is None else ml_forecast_bps[rows],
        tradable=None if trade_mask is None else trade_mask[rows],
        resolve_spread=cost_params,
    )
    return decided.backtest_inputs(frame.symbol), result


def decision_rows(
    columns: DecisionColumns,
    result: ConsensusResult,
    ic: FloatArray,
    *,
    horizon_bars: int,
    ml_forecast_bps: FloatArray | None = None,
    tradable: BoolArray | None = None,
    resolve_spread: CostParams | None = None,
) -> DecisionRows:
    """Per-row decision inputs from the rows' market ``columns``, their consensus ``result``
    and the information coefficient of each row's regime ``ic`` (its coin's serving tables).

    The expected return is the learned engine's forecast where finite (``ml_forecast_bps``),
    else the consensus score mapped with ``ic``. ``tradable`` False forces a hold. A row is
    valid when warm with known ATR and volatility. The spread: with ``resolve_spread`` (a
    history, no live book) the candle estimate is resolved by the cost model's source rules
    (``resolve_spread_bps_array``); without it (Hamilton) the raw candle estimate is kept, NaN
    where unknown, and ``decide_bar`` resolves it together with the live book and its status
    (``costs.resolve_spread_bps``).
    """
    n = columns.n_rows
    if result.score.shape != (n,) or ic.shape != (n,):
        raise ValueError(f"consensus and ic must cover the {n} rows")
    volatility_bps = columns.realized_vol * 1e4
    forecast = consensus_expected_return_bps(result.score, volatility_bps, horizon_bars, ic)
    if ml_forecast_bps is not None:
        forecast = np.where(np.isfinite(ml_forecast_bps), ml_forecast_bps, forecast)
    action = result.action.copy()
    if tradable is not None:
        action[~tradable] = 0
    atr = columns.atr_pct * columns.close
    spread = columns.candle_spread_bps
    if resolve_spread is not None:
        spread = resolve_spread_bps_array(resolve_spread, spread, n)
    known = np.isfinite(atr) & np.isfinite(volatility_bps) & columns.warm
    return DecisionRows(
        timestamps_ms=columns.timestamps_ms,
        open=columns.open,
        close=columns.close,
        volume=columns.volume,
        atr=np.nan_to_num(atr),
        volatility_bps=np.nan_to_num(volatility_bps),
        spread_bps=spread,
        regime=columns.regimes,
        action=action,
        confidence=result.confidence,
        score=result.score,
        expected_return_bps=np.nan_to_num(forecast),
        data_valid=known,
    )
