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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from hamilton_exec.models import CoinModels
from trading_core.backtest import bar_inputs_at
from trading_core.backtest.walk import EngineVotes
from trading_core.consensus import ConsensusParams, ReliabilityTracker
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
from trading_core.engines import ENGINE_NAMES
from trading_core.events import DecisionEvent
from trading_core.regime import RegimeGates
from trading_core.risk import RiskState
from trading_core.serving import decision_inputs, engine_votes, ml_vote
from trading_core.training.dataset import CoinFrame

FloatArray = npt.NDArray[np.float64]


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
