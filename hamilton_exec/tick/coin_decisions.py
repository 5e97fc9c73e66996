"""One decision per coin per bar: the serving path of trading_core, batched across coins.

Production (:mod:`hamilton_exec.tick.hamilton_engine`) and the shadow books
(:mod:`hamilton_exec.tick.shadow_books`) run the one path: :func:`prepare_decisions` takes the
newest bars of a tick (:class:`NewestBars`, one row per coin, each coin with its release models and
serving tables) and forms every row's inputs at once: the learned engine's forecast from the model
of the bar's regime (``newest_forecasts``), ``ml_vote``, one ``combine_votes`` call, then
:func:`trading_core.decision.inputs.decision_rows` (expected return, market inputs, validity,
the same function the walk-forward backtest uses) -> :class:`BarInputs`;
:func:`decide_prepared` runs ``decide_bar`` (cost check, risk enforcement) and builds the
``DecisionEvent`` of each bar, in order, against the caller's risk state.

Reliability is the one piece of state a single bar cannot give: :class:`CoinMemory` carries the
coin's :class:`ReliabilityTracker` and its last ``horizon`` votes, adding bar ``t - horizon``
when bar ``t`` closes its outcome, which is exactly the rule of
:func:`trading_core.consensus.reliability_series` (row ``t`` uses the bars ``t' <= t - h``).
"""

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from hamilton_exec.tick.forecast import ReleaseForests, newest_forecasts
from hamilton_exec.tick.newest_bars import NewestBars
from hamilton_exec.tick.served_release import CoinModels
from trading_core.consensus import (
    ConsensusParams,
    ConsensusResult,
    ReliabilityTracker,
    combine_votes,
)
from trading_core.costs import CostParams
from trading_core.decision import (
    BarInputs,
    Decision,
    DecisionConfig,
    EventOrigin,
    consensus_row,
    decide_bar,
    decision_event,
)
from trading_core.decision.inputs import decision_rows, ml_vote
from trading_core.engines import ENGINE_NAMES
from trading_core.events import DecisionEvent, EngineVote
from trading_core.regime import RegimeGates
from trading_core.risk import RiskState
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


@dataclass(frozen=True)
class PreparedDecision:
    """One coin's bar ready for ``decide_bar``."""

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
    """Every row of ``batch`` up to ``decide_bar`` (module docstring), advancing each row's
    memory (a row is one coin's book: its models, memory and invalid reason; a batch may hold
    a bar twice, for two books). The consensus is one
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
    """Each row's reliability for this bar, advancing its memory (``CoinMemory``)."""
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
    """The :class:`BarInputs` of every row, from :func:`decision_rows` (spread left to
    ``decide_bar``: the raw candle estimate, resolved there with the live book)."""
    codes = batch.regimes.astype(np.int64)
    ic = np.array([m.tables.ic_by_regime[c] for m, c in zip(models, codes, strict=True)])
    rows = decision_rows(
        batch.decision_columns(),
        result,
        ic,
        horizon_bars=context.horizon_bars,
        ml_forecast_bps=forecasts,
    )
    bar_ms = timeframe_ms(context.decision_config.timeframe)
    out = []
    for i in range(len(batch)):
        opened_ms = int(rows.timestamps_ms[i])
        invalid, known = invalid_reasons[i], bool(rows.data_valid[i])
        out.append(
            BarInputs(
                timestamp=_EPOCH + timedelta(milliseconds=opened_ms),
                decided_at=_EPOCH + timedelta(milliseconds=opened_ms + bar_ms),
                symbol=batch.symbols[i],
                regime=REGIMES[int(codes[i])],
                consensus=consensus_row(result, i, votes[i]),
                expected_return_bps=float(rows.expected_return_bps[i]),
                price=float(rows.close[i]),
                atr=float(rows.atr[i]),
                volatility_bps=float(rows.volatility_bps[i]),
                bar_volume=float(rows.volume[i]),
                candle_spread_bps=max(float(rows.spread_bps[i]), 0.0),
                data_valid=known and not invalid,
                invalid_reason=invalid or ("" if known else "warming_up"),
                edge_source="ml_brain" if math.isfinite(float(forecasts[i])) else "consensus",
            )
        )
    return out


def decide_prepared(
    prepared: PreparedDecision,
    state: RiskState,
    context: DecisionContext,
    *,
    origin: EventOrigin,
    model_version: str | None = None,
) -> tuple[CoinDecision, RiskState]:
    """``decide_bar`` and the DecisionEvent of a prepared bar, recorded with ``origin`` and
    ``model_version`` (default: the prepared bar's; a shadow challenger names itself)."""
    decision, state = decide_bar(prepared.inputs, state, config=context.decision_config)
    forecast = (
        {"ml_forecast_bps": prepared.forecast_bps} if math.isfinite(prepared.forecast_bps) else {}
    )
    event = decision_event(
        decision,
        prepared.inputs,
        risk_preset=context.risk_preset,
        model_version=prepared.model_version if model_version is None else model_version,
        origin=origin,
        extras=forecast,
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
