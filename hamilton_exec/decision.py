"""One decision per coin per bar: the serving path of trading_core, bar by bar.

For the newest bar of a coin (a single-row :class:`CoinFrame` from :mod:`hamilton_exec.prepare`)
the flow is exactly the walk-forward's: the learned engine's forecast from the release's model
of the bar's regime (:class:`RegimeModelPredictor`), ``ml_vote`` -> ``engine_votes`` (gates) ->
causal reliability -> ``decision_inputs`` (consensus, expected return, costs inputs) ->
``bar_inputs_at`` -> ``decide_bar`` (cost check, risk enforcement) -> ``decision_event``.

Reliability is the one piece of state a single bar cannot give: :class:`CoinMemory` carries the
coin's :class:`ReliabilityTracker` and its last ``horizon`` votes, adding bar ``t - horizon``
when bar ``t`` closes its outcome, which is exactly the rule of
:func:`trading_core.consensus.reliability_series` (row ``t`` uses the bars ``t' <= t - h``).
"""

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from hamilton_exec.forecast import ReleaseForests, newest_forecasts
from hamilton_exec.models import CoinModels
from hamilton_exec.newest import NewestBars
from trading_core.backtest import bar_inputs_at
from trading_core.backtest.walk import ATR_PCT_COLUMN, SPREAD_COLUMN, VOLATILITY_COLUMN, EngineVotes
from trading_core.consensus import (
    ConsensusParams,
    ConsensusResult,
    ReliabilityTracker,
    combine_votes,
    consensus_expected_return_bps,
)
from trading_core.consensus import engine_votes as vote_records
from trading_core.costs import BookTop, CostParams
from trading_core.decision import (
    BarInputs,
    Decision,
    DecisionConfig,
    consensus_row,
    decide_bar,
    decision_event,
)
from trading_core.decision.inputs import decision_inputs, engine_votes, ml_vote
from trading_core.engines import ENGINE_NAMES
from trading_core.events import DecisionEvent, EngineVote
from trading_core.regime import RegimeGates
from trading_core.risk import RiskState
from trading_core.training.dataset import CoinFrame
from trading_core.types import REGIMES, timeframe_ms

FloatArray = npt.NDArray[np.float64]
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class CoinMemory:
    """What a coin's decisions remember between bars: reliability evidence and the votes,
    regimes and closes of the last ``horizon`` bars (whose outcomes are still open)."""

    tracker: ReliabilityTracker
    horizon_bars: int
    recent: deque[tuple[FloatArray, int, float]] = field(default_factory=deque)

    @classmethod
    def fresh(cls, params: ConsensusParams, horizon_bars: int) -> "CoinMemory":
        tracker = ReliabilityTracker.initial(
            len(ENGINE_NAMES), decay=params.decay, prior=params.prior
        )
        return cls(tracker, horizon_bars)

    def close_outcomes(self, close: float) -> None:
        """Bar ``t`` has closed at ``close``: bar ``t - horizon`` now has its outcome."""
        if len(self.recent) == self.horizon_bars:
            signals, regime, then = self.recent.popleft()
            outcome = math.copysign(1.0, close - then) if close != then else 0.0
            self.tracker = self.tracker.update(regime, signals, outcome)

    def remember(self, signals: FloatArray, regime: int, close: float) -> None:
        self.recent.append((np.array(signals, dtype=np.float64), int(regime), float(close)))

    def reliability(self, regime: int) -> FloatArray:
        return self.tracker.reliability(int(regime))[None, :]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracker": self.tracker.to_dict(),
            "horizon_bars": self.horizon_bars,
            "recent": [[s.tolist(), r, c] for s, r, c in self.recent],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CoinMemory":
        recent = deque(
            (np.asarray(s, dtype=np.float64), int(r), float(c)) for s, r, c in data["recent"]
        )
        return cls(ReliabilityTracker.from_dict(data["tracker"]), int(data["horizon_bars"]), recent)


@dataclass(frozen=True)
class DecisionContext:
    """Everything fixed for a run: consensus, costs and decision parameters, gates in force."""

    params: ConsensusParams
    cost_params: CostParams
    decision_config: DecisionConfig
    horizon_bars: int
    ml_scale_bps: float
    risk_preset: str


@dataclass(frozen=True)
class CoinDecision:
    """The outcome of one coin's bar: the decision, its inputs, its event and its votes."""

    decision: Decision
    inputs: BarInputs
    event: DecisionEvent
    signals: FloatArray
    weights: FloatArray
    forecast_bps: float


def coin_votes(
    frame: CoinFrame, models: CoinModels, ml_row: Any, gates: RegimeGates, ml_scale_bps: float
) -> tuple[EngineVotes, FloatArray]:
    """The 23 votes of the coin's newest bar and the learned engine's forecast (NaN: none)."""
    forecast = np.full(1, np.nan) if models.predictor is None else models.predictor(ml_row)
    signal, confidence = ml_vote(forecast, ml_scale_bps)
    return engine_votes(frame, signal, confidence, gates), forecast


def decide_coin(
    frame: CoinFrame,
    ml_row: Any,
    models: CoinModels,
    memory: CoinMemory,
    state: RiskState,
    context: DecisionContext,
    gates: RegimeGates,
    *,
    book: BookTop | None = None,
    invalid_reason: str = "",
    metadata: dict[str, Any] | None = None,
) -> tuple[CoinDecision, RiskState]:
    """Decide the coin's newest bar and advance its memory (see the module docstring).

    ``invalid_reason`` (stale or rejected data) forces a hold with that reason; a bar still in
    its warm-up holds with ``warming_up``.
    """
    votes, forecast = coin_votes(frame, models, ml_row, gates, context.ml_scale_bps)
    regime = int(frame.regimes[0])
    close = float(frame.bars["close"][0])
    memory.close_outcomes(close)
    reliability = memory.reliability(regime)
    memory.remember(votes.signals[0], regime, close)
    inputs, result = decision_inputs(
        frame,
        votes,
        reliability,
        np.zeros(1, dtype=np.int64),
        models.tables,
        params=context.params,
        cost_params=context.cost_params,
        horizon_bars=context.horizon_bars,
        ml_forecast_bps=forecast,
    )
    bar = _bar_inputs(inputs, result, votes, context, book, invalid_reason, forecast)
    decision, state = decide_bar(bar, state, config=context.decision_config)
    meta = {"model_version": models.version_for(regime), **(metadata or {})}
    if math.isfinite(float(forecast[0])):
        meta["ml_forecast_bps"] = float(forecast[0])
    event = decision_event(decision, bar, risk_preset=context.risk_preset, metadata=meta)
    outcome = CoinDecision(
        decision=decision,
        inputs=bar,
        event=event,
        signals=votes.signals[0],
        weights=np.asarray(result.weights[0]),
        forecast_bps=float(forecast[0]),
    )
    return outcome, state


def _bar_inputs(
    inputs: Any,
    result: Any,
    votes: EngineVotes,
    context: DecisionContext,
    book: BookTop | None,
    invalid_reason: str,
    forecast: FloatArray,
) -> BarInputs:
    bar = bar_inputs_at(inputs, 0, context.decision_config)
    regime = int(votes.regimes[0])
    records = vote_records(
        ENGINE_NAMES,
        votes.signals[0],
        votes.confidences[0],
        result.weights[0],
        votes.enabled[regime],
    )
    valid = bar.data_valid and not invalid_reason
    reason = invalid_reason or ("" if bar.data_valid else "warming_up")
    return replace(
        bar,
        consensus=consensus_row(result, 0, records),
        book=book,
        data_valid=valid,
        invalid_reason=reason,
        edge_source="ml_brain" if math.isfinite(float(forecast[0])) else "consensus",
    )


# --- the batched path: every fresh coin of a tick at once, then decide_bar coin by coin ------


@dataclass(frozen=True)
class PreparedDecision:
    """One coin's bar ready for ``decide_bar``: what :func:`decide_coin` builds before it."""

    inputs: BarInputs
    signals: FloatArray
    weights: FloatArray
    forecast_bps: float
    model_version: str | None


def prepare_decisions(
    batch: NewestBars,
    models: Sequence[CoinModels],
    memories: Sequence[CoinMemory],
    context: DecisionContext,
    gates: RegimeGates,
    *,
    invalid_reasons: Sequence[str],
    forests: ReleaseForests | None = None,
) -> list[PreparedDecision]:
    """:func:`decide_coin` up to ``decide_bar`` for every row of ``batch`` at once (the same
    numbers, bit for bit), advancing each row's memory. The consensus is one
    ``combine_votes`` call: each coin's correlation divisors and the soft gates are folded
    into its reliability row (``rel * multiplier / divisor``, the very product ``combine_votes``
    forms) and neutral tables are passed, so one call serves coins with different tables.
    """
    n = len(batch)
    if not len(models) == len(memories) == len(invalid_reasons) == n:
        raise ValueError(f"{n} rows need as many models, memories and invalid reasons")
    if n == 0:
        return []
    forecasts = newest_forecasts(batch, models, forests)
    ml_signal, ml_confidence = ml_vote(forecasts, context.ml_scale_bps)
    signals = np.column_stack([batch.rule_signals, ml_signal])
    confidences = np.column_stack([batch.rule_confidences, ml_confidence])
    enabled = np.vstack([gates.enabled_mask(r) for r in REGIMES])
    multipliers = np.vstack([gates.weight_multipliers(r) for r in REGIMES])
    codes = batch.regimes.astype(np.int64)
    reliability = _advance_memories(memories, signals, codes, batch.column("close"))
    divisors = np.stack([m.tables.cluster_divisors[c] for m, c in zip(models, codes, strict=True)])
    result = combine_votes(
        signals,
        confidences,
        batch.regimes,
        reliability * multipliers[codes] / divisors,
        enabled=enabled,
        weight_multipliers=np.ones_like(multipliers),
        cluster_divisors=np.ones_like(multipliers),
        params=context.params,
    )
    votes = _vote_rows(signals, confidences, result.weights, enabled[codes])
    bars = _bar_inputs_rows(batch, models, result, votes, forecasts, context, invalid_reasons)
    return [
        PreparedDecision(
            inputs=bar,
            signals=signals[i],
            weights=np.asarray(result.weights[i]),
            forecast_bps=float(forecasts[i]),
            model_version=models[i].version_for(int(codes[i])),
        )
        for i, bar in enumerate(bars)
    ]


def _vote_rows(
    signals: FloatArray,
    confidences: FloatArray,
    weights: FloatArray,
    enabled: npt.NDArray[np.bool_],
) -> list[tuple[EngineVote, ...]]:
    """``consensus.engine_votes`` of every row (the same records: ``tolist`` gives the very
    floats ``float()`` gives, without a conversion per element)."""
    if signals.shape[1] != len(ENGINE_NAMES):
        raise ValueError(f"{signals.shape[1]} vote columns for {len(ENGINE_NAMES)} engines")
    rows = zip(
        signals.tolist(), confidences.tolist(), weights.tolist(), enabled.tolist(), strict=True
    )
    return [tuple(map(EngineVote, ENGINE_NAMES, s, c, w, g)) for s, c, w, g in rows]


def _advance_memories(
    memories: Sequence[CoinMemory],
    signals: FloatArray,
    codes: npt.NDArray[np.int64],
    close: FloatArray,
) -> FloatArray:
    """Each coin's reliability row for this bar, advancing its memory as decide_coin does."""
    reliability = np.empty(signals.shape)
    for i, memory in enumerate(memories):
        memory.close_outcomes(float(close[i]))
        reliability[i] = memory.reliability(int(codes[i]))[0]
        memory.remember(signals[i], int(codes[i]), float(close[i]))
    return reliability


def _bar_inputs_rows(
    batch: NewestBars,
    models: Sequence[CoinModels],
    result: ConsensusResult,
    votes: Sequence[tuple[EngineVote, ...]],
    forecasts: FloatArray,
    context: DecisionContext,
    invalid_reasons: Sequence[str],
) -> list[BarInputs]:
    """``decision_inputs`` + ``bar_inputs_at`` + ``_bar_inputs`` of every row."""
    n, codes = len(batch), batch.regimes.astype(np.int64)
    volatility_bps = batch.column(VOLATILITY_COLUMN) * 1e4
    ic = np.array([m.tables.ic_by_regime[c] for m, c in zip(models, codes, strict=True)])
    expected = consensus_expected_return_bps(result.score, volatility_bps, context.horizon_bars, ic)
    expected = np.nan_to_num(np.where(np.isfinite(forecasts), forecasts, expected))
    close = batch.column("close")
    atr = batch.column(ATR_PCT_COLUMN) * close
    # the raw candle estimate (NaN: unknown): decide_bar resolves the spread from it, the live
    # book and the book's status with the one rule (costs.resolve_spread_bps)
    candle_spread = batch.column(SPREAD_COLUMN)
    known = np.isfinite(atr) & np.isfinite(volatility_bps) & batch.warm
    atr, volatility_bps = np.nan_to_num(atr), np.nan_to_num(volatility_bps)
    bar_ms = timeframe_ms(context.decision_config.timeframe)
    volume = batch.column("volume")
    rows = []
    for i in range(n):
        opened_ms = int(batch.timestamps_ms[i])
        invalid = invalid_reasons[i]
        rows.append(
            BarInputs(
                timestamp=_EPOCH + timedelta(milliseconds=opened_ms),
                decided_at=_EPOCH + timedelta(milliseconds=opened_ms + bar_ms),
                symbol=batch.symbols[i],
                regime=REGIMES[int(codes[i])],
                consensus=consensus_row(result, i, votes[i]),
                expected_return_bps=float(expected[i]),
                price=float(close[i]),
                atr=float(atr[i]),
                volatility_bps=float(volatility_bps[i]),
                bar_volume=float(volume[i]),
                candle_spread_bps=max(float(candle_spread[i]), 0.0),
                data_valid=bool(known[i]) and not invalid,
                invalid_reason=invalid or ("" if known[i] else "warming_up"),
                edge_source="ml_brain" if math.isfinite(float(forecasts[i])) else "consensus",
            )
        )
    return rows


def decide_prepared(
    prepared: PreparedDecision,
    state: RiskState,
    context: DecisionContext,
    *,
    metadata: dict[str, Any] | None = None,
) -> tuple[CoinDecision, RiskState]:
    """``decide_bar`` and the DecisionEvent of a prepared bar (the end of :func:`decide_coin`)."""
    decision, state = decide_bar(prepared.inputs, state, config=context.decision_config)
    meta = {"model_version": prepared.model_version, **(metadata or {})}
    if math.isfinite(prepared.forecast_bps):
        meta["ml_forecast_bps"] = prepared.forecast_bps
    event = decision_event(
        decision, prepared.inputs, risk_preset=context.risk_preset, metadata=meta
    )
    outcome = CoinDecision(
        decision=decision,
        inputs=prepared.inputs,
        event=event,
        signals=prepared.signals,
        weights=prepared.weights,
        forecast_bps=prepared.forecast_bps,
    )
    return outcome, state
