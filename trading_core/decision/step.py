"""The decision step: one function both the backtest and Hamilton call per bar per coin.

Flow (the seed's execution flow): data invalid -> hold; ILLIQUID or a consensus hold -> hold (an
open position is still closed when its holding time has elapsed); cost check (net edge =
expected edge - round-trip costs must reach ``min_edge_after_cost_bps``) -> hold
``edge_below_cost``; risk enforcement -> hold with the denial reason; else buy/sell ``qty``.

Position semantics: one net position per coin (long, short or flat). A signal on the side of the
open position renews it (its holding clock restarts) when a fresh entry would pass the cost
check; no pyramiding. An opposite signal closes the position and, when the opening part passes
the cost check and the risk limits, opens the other side in the same order (a flip). A position
is closed after ``holding_bars`` bars without renewal (the horizon the edge was forecast for).
Shorts are allowed for perps only, by default.

``expected_return_bps`` is the signed forecast of the return over the holding horizon (from
the learned model when present, else :func:`trading_core.consensus.consensus_expected_return_bps`);
the decision's ``expected_edge_bps`` is that forecast in the direction of the trade.

The logic itself is :func:`trading_core.decision.kernel.decide_core` (numba), which the
backtest kernel calls bar by bar, so a replay through :func:`decide_bar` and through the
backtest gives the same decisions (bit for bit;
``tests/unit/trading_core/backtest/test_backtest.py`` checks it).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from trading_core.config.models import EngineConfig
from trading_core.consensus import ConsensusResult
from trading_core.costs import (
    BookStatus,
    BookTop,
    CostBreakdown,
    CostParams,
    SpreadChoice,
    SpreadOrigin,
    resolve_spread_bps,
)
from trading_core.costs.kernel import (
    N_COST_COMPONENTS,
    fill_price_and_fee,
    funding_charge_usd,
)
from trading_core.decision.kernel import (
    D_BARS_HELD,
    D_COSTS,
    D_DENIAL,
    D_EDGE,
    D_FEE_BPS,
    D_LIMITED_BY,
    D_ORDER_QTY,
    D_PRICE_ADJUST_BPS,
    D_REASON,
    D_SLIPPAGE_FROM_BOOK,
    N_DECISION,
    DecisionReason,
    decide_core,
    reason_from_code,
)
from trading_core.events import (
    TYPED_METADATA_KEYS,
    DecisionEvent,
    EngineVote,
    EventCosts,
    EventMode,
)
from trading_core.risk import DenialReason, Fill, RiskEnforcer, RiskLimits, RiskState
from trading_core.risk.enforcer import epoch_ms
from trading_core.risk.reasons import STATE_CODE, denial_from_code
from trading_core.types import REGIME_CODES, Action, Regime, timeframe_ms

ACTION_CODE: dict[Action, int] = {Action.BUY: 1, Action.SELL: -1, Action.HOLD: 0}
_NO_LEVELS = np.empty((0, 2))  # no live book: slippage by the square-root law
_MS_PER_HOUR = 3_600_000


@dataclass(frozen=True, slots=True)
class ConsensusRow:
    """One bar of the consensus: score in [-1, 1], agreement and confidence in [0, 1]."""

    score: float
    agreement: float
    confidence: float
    action: Action
    votes: tuple[EngineVote, ...] = ()

    def __post_init__(self) -> None:
        if not -1.0 <= self.score <= 1.0:
            raise ValueError(f"consensus score {self.score!r} must be in [-1, 1]")
        for name in ("agreement", "confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"consensus {name} {value!r} must be in [0, 1]")


def consensus_row(
    result: ConsensusResult, bar: int, votes: tuple[EngineVote, ...] = ()
) -> ConsensusRow:
    """Row ``bar`` of a vectorized :class:`ConsensusResult` (``votes`` from ``engine_votes``)."""
    return ConsensusRow(
        score=float(result.score[bar]),
        agreement=float(result.agreement[bar]),
        confidence=float(result.confidence[bar]),
        action=result.action_at(bar),
        votes=votes,
    )


@dataclass(frozen=True, slots=True)
class BarInputs:
    """Everything one decision needs. ``timestamp`` is the candle's open time; ``decided_at`` the
    moment of the decision (the candle's close in a replay) and drives the UTC-day roll and the
    order-rate window. ``volatility_bps`` is one bar's return standard deviation."""

    timestamp: datetime
    decided_at: datetime
    symbol: str
    regime: Regime
    consensus: ConsensusRow
    expected_return_bps: float
    price: float
    atr: float
    volatility_bps: float
    bar_volume: float
    candle_spread_bps: float | None = None
    book: BookTop | None = None
    book_status: BookStatus = BookStatus.NO_FEED
    data_valid: bool = True
    invalid_reason: str = ""
    edge_source: str = "consensus"

    def __post_init__(self) -> None:
        epoch_ms(self.timestamp)
        epoch_ms(self.decided_at)
        if self.expected_return_bps != self.expected_return_bps:
            raise ValueError("expected_return_bps is NaN; pass 0.0 when there is no forecast")
        if not self.data_valid and not self.invalid_reason:
            raise ValueError("data_valid=False needs an invalid_reason saying what is wrong")


@dataclass(frozen=True)
class DecisionConfig:
    """Cost parameters, risk limits and the holding horizon of the decision step."""

    costs: CostParams
    limits: RiskLimits
    timeframe: str
    holding_bars: int
    allow_short: bool
    accrue_funding: bool = True
    cost_array: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)
    limit_array: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        timeframe_ms(self.timeframe)
        if self.holding_bars < 1:
            raise ValueError(f"holding_bars={self.holding_bars!r} must be >= 1")
        arrays = {"cost_array": self.costs.as_array(), "limit_array": self.limits.as_array()}
        for name, array in arrays.items():
            array.flags.writeable = False
            object.__setattr__(self, name, array)

    @property
    def bar_hours(self) -> float:
        return timeframe_ms(self.timeframe) / _MS_PER_HOUR

    @property
    def holding_hours(self) -> float:
        return self.holding_bars * self.bar_hours

    @classmethod
    def from_engine_config(
        cls,
        config: EngineConfig,
        *,
        timeframe: str,
        holding_bars: int | None = None,
        preset: str | None = None,
        allow_short: bool | None = None,
        accrue_funding: bool = True,
    ) -> "DecisionConfig":
        """Defaults: holding = ``training.model.label_horizon_bars``; shorts only for perps."""
        costs = CostParams.from_config(config.cost_model)
        limits = RiskLimits.from_config(
            config.risk_presets,
            config.risk,
            max_concurrent_trades=config.engine.max_concurrent_trades,
            preset=preset,
        )
        return cls(
            costs=costs,
            limits=limits,
            timeframe=timeframe,
            holding_bars=holding_bars or config.training.model.label_horizon_bars,
            allow_short=costs.instrument == "perp" if allow_short is None else allow_short,
            accrue_funding=accrue_funding,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do on one bar. ``qty`` is the absolute order size (0 for hold)."""

    symbol: str
    timestamp: datetime
    regime: Regime
    action: Action
    qty: float
    reasons: tuple[str, ...]
    expected_edge_bps: float
    costs: CostBreakdown
    consensus_score: float
    position_qty_before: float
    fill_price_adjust_bps: float
    fill_fee_bps: float
    denial: DenialReason | None = None
    limited_by: DenialReason | None = None
    # where the cost model's spread came from and why a fallback was taken ("" when none)
    spread_origin: SpreadOrigin = SpreadOrigin.STATIC
    spread_fallback: str = ""
    # "book": the live book's levels priced the slippage; "model": the square-root law
    slippage_source: str = "model"

    @property
    def costs_bps(self) -> float:
        return self.costs.total_bps

    @property
    def net_edge_bps(self) -> float:
        return self.expected_edge_bps - self.costs.total_bps

    @property
    def signed_qty(self) -> float:
        return {Action.BUY: self.qty, Action.SELL: -self.qty}.get(self.action, 0.0)


def _reasons(out: npt.NDArray[np.float64], inputs: BarInputs) -> tuple[str, ...]:
    reason = reason_from_code(int(out[D_REASON]))
    parts: list[str] = [reason.value]
    if reason is DecisionReason.DATA_INVALID:
        parts.append(inputs.invalid_reason)
    for code in (int(out[D_DENIAL]), int(out[D_LIMITED_BY])):
        denial = denial_from_code(code)
        if denial is not None:
            parts.append(denial.value)
    return tuple(parts)


def _prepare_state(inputs: BarInputs, state: RiskState, config: DecisionConfig) -> RiskState:
    """Funding for the bar just held, then the mark (price, UTC day roll, daily-loss state)."""
    enforcer = RiskEnforcer(config.limits)
    priced = inputs.price > 0.0 and inputs.price != float("inf")
    position = state.positions.get(inputs.symbol)
    if priced and position is not None and config.accrue_funding:
        charge = funding_charge_usd(
            position.qty * inputs.price, config.costs.funding_bps_per_8h, config.bar_hours
        )
        state = enforcer.charge(state, float(charge))
    return enforcer.mark(state, inputs.decided_at, {inputs.symbol: inputs.price} if priced else {})


def decide_bar(
    inputs: BarInputs, state: RiskState, *, config: DecisionConfig
) -> tuple[Decision, RiskState]:
    """Decide one bar for one coin; returns the decision and the state after it (marked, the
    position's holding clock advanced, the order time recorded). Fills are applied separately
    with :meth:`RiskEnforcer.apply_fill` (e.g. from :func:`paper_fill`)."""
    state = _prepare_state(inputs, state, config)
    enforcer = RiskEnforcer(config.limits)
    spread = resolve_spread_bps(
        config.costs,
        book=inputs.book,
        candle_spread_bps=inputs.candle_spread_bps,
        book_status=inputs.book_status,
    )
    out = _run_core(inputs, state, config, enforcer, spread.spread_bps)
    position = state.positions.get(inputs.symbol)
    decision = _decision(out, inputs, position.qty if position else 0.0, spread)
    if position is not None:
        held = replace(position, bars_held=int(out[D_BARS_HELD]))
        state = state.with_position(inputs.symbol, held)
    if decision.action is not Action.HOLD:
        state = enforcer.record_order(state, inputs.decided_at)
    return decision, state


def _run_core(
    inputs: BarInputs,
    state: RiskState,
    config: DecisionConfig,
    enforcer: RiskEnforcer,
    spread_bps: float,
) -> npt.NDArray[np.float64]:
    position = state.positions.get(inputs.symbol)
    out = np.zeros(N_DECISION, dtype=np.float64)
    decide_core(
        ACTION_CODE[inputs.consensus.action],
        inputs.consensus.confidence,
        inputs.consensus.score,
        REGIME_CODES[inputs.regime],
        inputs.data_valid,
        inputs.expected_return_bps,
        inputs.price,
        inputs.atr,
        inputs.volatility_bps,
        inputs.bar_volume,
        spread_bps / 2.0,
        position.qty if position else 0.0,
        position.bars_held if position else 0,
        state.equity_usd,
        state.gross_notional_usd(excluding=inputs.symbol),
        sum(1 for s in state.positions if s != inputs.symbol),
        enforcer.orders_last_minute(state, inputs.decided_at),
        STATE_CODE[state.trading_state],
        state.kill_switch,
        config.holding_bars,
        config.holding_hours,
        config.allow_short,
        config.cost_array,
        config.limit_array,
        out,
        inputs.book.levels("asks") if inputs.book is not None else _NO_LEVELS,
        inputs.book.levels("bids") if inputs.book is not None else _NO_LEVELS,
    )
    return out


def _decision(
    out: npt.NDArray[np.float64], inputs: BarInputs, position_qty: float, spread: SpreadChoice
) -> Decision:
    order_qty = float(out[D_ORDER_QTY])
    action = Action.BUY if order_qty > 0 else Action.SELL if order_qty < 0 else Action.HOLD
    return Decision(
        symbol=inputs.symbol,
        timestamp=inputs.timestamp,
        regime=inputs.regime,
        action=action,
        qty=abs(order_qty),
        reasons=_reasons(out, inputs),
        expected_edge_bps=float(out[D_EDGE]),
        costs=CostBreakdown.from_array(out[D_COSTS : D_COSTS + N_COST_COMPONENTS]),
        consensus_score=inputs.consensus.score,
        position_qty_before=position_qty,
        fill_price_adjust_bps=float(out[D_PRICE_ADJUST_BPS]),
        fill_fee_bps=float(out[D_FEE_BPS]),
        denial=denial_from_code(int(out[D_DENIAL])),
        limited_by=denial_from_code(int(out[D_LIMITED_BY])),
        spread_origin=spread.origin,
        spread_fallback=spread.fallback_reason,
        slippage_source="book" if out[D_SLIPPAGE_FROM_BOOK] else "model",
    )


def paper_fill(decision: Decision, reference_price: float, filled_at: datetime) -> Fill | None:
    """The simulated fill of ``decision`` at ``reference_price`` (the backtest's fill model:
    half-spread + slippage as a worse price, the fee on the filled notional); None for a hold."""
    if decision.action is Action.HOLD:
        return None
    price, fee = fill_price_and_fee(
        decision.signed_qty, reference_price, decision.fill_price_adjust_bps, decision.fill_fee_bps
    )
    return Fill(decision.symbol, decision.signed_qty, float(price), float(fee), filled_at)


@dataclass(frozen=True, slots=True)
class EventOrigin:
    """Where a decision was served, recorded on its :class:`DecisionEvent`: the release
    (``None``: no release served), the service mode, and extras stored with the event (the
    timeframe; a shadow challenger's pairing). Typed here so no caller builds the serialised
    metadata layout by hand."""

    release_id: int | None = None
    mode: EventMode | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        typed = sorted(TYPED_METADATA_KEYS.intersection(self.extras))
        if typed:
            raise ValueError(
                f"EventOrigin extras {typed} are typed DecisionEvent fields: pass them as "
                "release_id / mode / model_version, not as extras"
            )

    def with_extras(self, **extras: Any) -> "EventOrigin":
        """This origin with ``extras`` added (a shadow challenger's pairing)."""
        return replace(self, extras={**self.extras, **extras})


NO_ORIGIN: Final = EventOrigin()


def decision_event(
    decision: Decision,
    inputs: BarInputs,
    *,
    risk_preset: str,
    model_version: str | None = None,
    origin: EventOrigin = NO_ORIGIN,
    extras: Mapping[str, Any] | None = None,
) -> DecisionEvent:
    """The :class:`DecisionEvent` of ``decision``: votes from the consensus row; reasons, qty,
    the cost breakdown, the model version and the origin's release and mode as typed fields;
    edge source, consensus agreement/confidence, the origin's extras and ``extras`` (e.g.
    the ML forecast) as metadata."""
    costs = EventCosts(
        fee_bps=decision.costs.fee_bps,
        spread_bps=decision.costs.spread_bps,
        slippage_bps=decision.costs.slippage_bps,
        funding_bps=decision.costs.funding_bps,
        safety_bps=decision.costs.safety_bps,
        spread_source=decision.spread_origin.value,
        spread_fallback=decision.spread_fallback,
        slippage_source=decision.slippage_source,
    )
    return DecisionEvent(
        timestamp=decision.timestamp,
        symbol=decision.symbol,
        regime=decision.regime,
        engine_votes=inputs.consensus.votes,
        consensus_score=decision.consensus_score,
        action=decision.action,
        expected_edge_bps=decision.expected_edge_bps,
        costs_bps=decision.costs_bps,
        net_edge_bps=decision.net_edge_bps,
        risk_preset=risk_preset,
        metadata={
            "edge_source": inputs.edge_source,
            "agreement": inputs.consensus.agreement,
            "consensus_confidence": inputs.consensus.confidence,
            **origin.extras,
            **(extras or {}),
        },
        reasons=decision.reasons,
        qty=decision.qty,
        costs=costs,
        model_version=model_version,
        release_id=origin.release_id,
        mode=origin.mode,
    )
