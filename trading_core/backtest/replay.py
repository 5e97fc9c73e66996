"""Replay a backtest's inputs through :func:`trading_core.decision.decide_bar` in plain Python,
bar by bar, exactly as Hamilton would (paper fills, the same fill timing).

Slow (a Python call per bar) but the reference for parity: its decisions must equal the numba
backtest's, which tests check.
"""

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from trading_core.backtest.engine import BacktestConfig, BacktestInputs
from trading_core.consensus import ACTION_BY_CODE
from trading_core.decision import (
    BarInputs,
    ConsensusRow,
    Decision,
    DecisionConfig,
    decide_bar,
    paper_fill,
)
from trading_core.risk import RiskEnforcer, RiskState
from trading_core.types import REGIMES, timeframe_ms

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def bar_inputs_at(inputs: BacktestInputs, bar: int, config: DecisionConfig) -> BarInputs:
    """The :class:`BarInputs` of bar ``bar`` (decided at the bar's close)."""
    opened_ms = int(inputs.timestamps_ms[bar])
    valid = bool(inputs.data_valid[bar])
    return BarInputs(
        timestamp=_utc(opened_ms),
        decided_at=_utc(opened_ms + timeframe_ms(config.timeframe)),
        symbol=inputs.symbol,
        regime=REGIMES[int(inputs.regime[bar])],
        consensus=ConsensusRow(
            score=float(inputs.score[bar]),
            agreement=1.0,
            confidence=float(inputs.confidence[bar]),
            action=ACTION_BY_CODE[int(inputs.action[bar])],
        ),
        expected_return_bps=float(inputs.expected_return_bps[bar]),
        price=float(inputs.close[bar]),
        atr=float(inputs.atr[bar]),
        volatility_bps=float(inputs.volatility_bps[bar]),
        bar_volume=float(inputs.volume[bar]),
        candle_spread_bps=2.0 * float(inputs.half_spread_bps[bar]),
        data_valid=valid,
        invalid_reason="" if valid else "flagged invalid",
    )


@dataclass(frozen=True)
class Replay:
    """Decisions per bar, equity at each bar's close and the final state."""

    decisions: tuple[Decision, ...]
    equity: npt.NDArray[np.float64]
    final_state: RiskState


def replay_decisions(inputs: BacktestInputs, config: BacktestConfig) -> Replay:
    """Walk the bars through ``decide_bar`` + paper fills (see the module docstring).

    The inputs carry the spread already resolved by the pre-pass; it is handed to
    ``decide_bar`` as a candle estimate with ``spread_source="candles"`` so both use the same
    number (nothing else reads the spread source).
    """
    decision_config = replace(
        config.decision, costs=replace(config.decision.costs, spread_source="candles")
    )
    enforcer = RiskEnforcer(decision_config.limits)
    first = bar_inputs_at(inputs, 0, decision_config)
    state = enforcer.initial_state(config.initial_capital_usd, first.decided_at)
    pending: Decision | None = None
    decisions: list[Decision] = []
    equity = np.empty(inputs.n_bars)
    for bar in range(inputs.n_bars):
        bar_inputs = bar_inputs_at(inputs, bar, decision_config)
        if pending is not None:
            fill = paper_fill(pending, float(inputs.open[bar]), bar_inputs.timestamp)
            state = enforcer.apply_fill(state, fill) if fill else state
            pending = None
        decision, state = decide_bar(bar_inputs, state, config=decision_config)
        decisions.append(decision)
        if config.fill_at == "next_open":
            pending = decision
        else:
            fill = paper_fill(decision, float(inputs.close[bar]), bar_inputs.decided_at)
            state = enforcer.apply_fill(state, fill) if fill else state
        held = state.position_qty(inputs.symbol)
        equity[bar] = state.cash_usd + held * float(inputs.close[bar])
    return Replay(tuple(decisions), equity, state)
