"""HALTED and the kill switch: new risk denied, reductions allowed (never a flip), the same rule
in the decision step and the backtest kernel; a late bar never lifts a daily-loss halt."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_core.backtest import BacktestConfig, BacktestInputs, replay_decisions, run_backtest
from trading_core.config.models import EngineConfig
from trading_core.decision import BarInputs, ConsensusRow, DecisionConfig, decide_bar
from trading_core.decision.kernel import REASON_BY_CODE
from trading_core.risk import (
    DenialReason,
    Fill,
    OrderIntent,
    Position,
    RiskEnforcer,
    RiskState,
    TradingState,
)
from trading_core.risk.reasons import S_HALTED
from trading_core.types import Action, Regime

OPEN = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
SYMBOL = "ETH/USDT"
CONFIG = DecisionConfig.from_engine_config(EngineConfig(), timeframe="1h")
ENFORCER = RiskEnforcer(CONFIG.limits)
HALTS = [
    pytest.param({"trading_state": TradingState.HALTED}, "daily_loss_halt", id="halted"),
    pytest.param({"kill_switch": True}, "kill_switch", id="kill_switch"),
]


def _inputs(action: Action, *, forecast_bps: float, **overrides: object) -> BarInputs:
    score = 0.8 if action is Action.BUY else -0.8 if action is Action.SELL else 0.0
    base = BarInputs(
        timestamp=OPEN,
        decided_at=OPEN + timedelta(hours=1),
        symbol=SYMBOL,
        regime=Regime.TREND,
        consensus=ConsensusRow(score, 0.9, 0.9, action),
        expected_return_bps=forecast_bps,
        price=2_000.0,
        atr=20.0,
        volatility_bps=50.0,
        bar_volume=5_000.0,
        candle_spread_bps=2.0,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def _state(position_qty: float = 0.0, bars_held: int = 0, **overrides: object) -> RiskState:
    state = ENFORCER.initial_state(100_000.0, OPEN)
    if position_qty:
        held = Position(position_qty, 2_000.0, 2_000.0, bars_held)
        state = replace(state.with_position(SYMBOL, held), cash_usd=100_000.0 - position_qty * 2e3)
    return replace(state, **overrides)  # type: ignore[arg-type]


# --- the decision step ------------------------------------------------------------------------


@pytest.mark.parametrize(("halt", "reason"), HALTS)
def test_halt_opposite_signal_closes_without_flipping(halt: dict[str, Any], reason: str) -> None:
    flip_signal = _inputs(Action.SELL, forecast_bps=-100.0)  # worth a flip when ACTIVE
    decision, _ = decide_bar(flip_signal, _state(5.0, **halt), config=CONFIG)
    assert decision.action is Action.SELL
    assert decision.qty == pytest.approx(5.0)  # the close only, never the short
    assert decision.reasons == ("closed_opposite_signal", reason)
    assert decision.denial is None and decision.limited_by is DenialReason(reason)


@pytest.mark.parametrize(("halt", "reason"), HALTS)
def test_halt_closes_a_short_on_an_opposite_signal(halt: dict[str, Any], reason: str) -> None:
    decision, _ = decide_bar(
        _inputs(Action.BUY, forecast_bps=100.0), _state(-5.0, **halt), config=CONFIG
    )
    assert decision.action is Action.BUY and decision.qty == pytest.approx(5.0)
    assert decision.reasons[0] == "closed_opposite_signal"


@pytest.mark.parametrize(("halt", "reason"), HALTS)
def test_halt_closes_when_the_holding_time_elapses(halt: dict[str, Any], reason: str) -> None:
    state = _state(5.0, bars_held=CONFIG.holding_bars - 1, **halt)
    decision, after = decide_bar(_inputs(Action.HOLD, forecast_bps=0.0), state, config=CONFIG)
    assert decision.action is Action.SELL and decision.qty == pytest.approx(5.0)
    assert decision.reasons == ("closed_holding_elapsed",)
    assert len(after.recent_order_times_ms) == 1


@pytest.mark.parametrize(("halt", "reason"), HALTS)
def test_halt_opening_from_flat_is_denied(halt: dict[str, Any], reason: str) -> None:
    decision, after = decide_bar(
        _inputs(Action.BUY, forecast_bps=100.0), _state(**halt), config=CONFIG
    )
    assert decision.action is Action.HOLD
    assert decision.reasons == ("risk_denied", reason)
    assert after.recent_order_times_ms == ()


@pytest.mark.parametrize(("halt", "reason"), HALTS)
def test_halt_same_side_signal_never_adds(halt: dict[str, Any], reason: str) -> None:
    decision, _ = decide_bar(
        _inputs(Action.BUY, forecast_bps=100.0), _state(5.0, **halt), config=CONFIG
    )
    assert decision.action is Action.HOLD


# --- the risk kernel: invariant ---------------------------------------------------------------


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    position=st.floats(-500.0, 500.0),
    side=st.sampled_from([Action.BUY, Action.SELL]),
    qty=st.floats(0.0, 2_000.0),
    killed=st.booleans(),
    flatten=st.booleans(),
    confidence=st.floats(0.0, 1.0),
)
def test_halted_or_killed_order_only_ever_reduces_property(
    position: float, side: Action, qty: float, killed: bool, flatten: bool, confidence: float
) -> None:
    held = {SYMBOL: Position(position, 100.0, 100.0)} if abs(position) > 1e-6 else {}
    state = RiskState(
        cash_usd=100_000.0 - position * 100.0 * (1 if held else 0),
        day=OPEN.date(),
        day_start_equity_usd=100_000.0,
        positions=held,
        trading_state=TradingState.ACTIVE if killed else TradingState.HALTED,
        kill_switch=killed,
    )
    intent = OrderIntent(SYMBOL, side, qty, 100.0, confidence, flatten)
    verdict = ENFORCER.check(intent, state, OPEN)
    before = state.position_qty(SYMBOL)
    after = before + (verdict.qty if side is Action.BUY else -verdict.qty)
    assert abs(after) <= abs(before) + 1e-9 and before * after >= 0.0
    if before * intent.side_sign < 0 and qty > 0 and min(qty, abs(before)) * 100.0 >= 5.0:
        assert verdict.approved  # a reduction above the minimum notional goes through


# --- the backtest kernel applies the same rule ------------------------------------------------


def _volatile_inputs(seed: int, n: int = 1200) -> BacktestInputs:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    score = np.clip(rng.normal(0.0, 0.6, n), -1.0, 1.0)
    return BacktestInputs(
        symbol="R/USDT",
        timestamps_ms=1_767_225_600_000 + 3_600_000 * np.arange(n, dtype=np.int64),
        open=np.concatenate(([100.0], close[:-1])),
        close=close,
        volume=rng.uniform(1e4, 1e6, n),
        atr=close * rng.uniform(0.005, 0.02, n),
        volatility_bps=rng.uniform(20.0, 150.0, n),
        half_spread_bps=rng.uniform(0.5, 3.0, n),
        regime=np.zeros(n, dtype=np.int8),
        action=np.where(np.abs(score) > 0.3, np.sign(score), 0).astype(np.int8),
        confidence=rng.uniform(0.7, 1.0, n),
        score=score,
        expected_return_bps=score * 300.0,
        data_valid=np.ones(n, dtype=np.bool_),
    )


@pytest.mark.parametrize("fill_at", ["close", "next_open"])
def test_backtest_closes_while_halted_exactly_like_decide_bar(
    fill_at: Literal["next_open", "close"],
) -> None:
    base = BacktestConfig.from_engine_config(EngineConfig(), timeframe="1h", fill_at=fill_at)
    tight = replace(base.decision.limits, daily_loss_limit_pct=0.3)  # HALTED most days
    config = replace(base, decision=replace(base.decision, limits=tight))
    inputs = _volatile_inputs(11)
    result = run_backtest(inputs, config)
    replay = replay_decisions(inputs, config)
    np.testing.assert_array_equal(result.order_qty, [d.signed_qty for d in replay.decisions])
    np.testing.assert_array_equal(result.equity, replay.equity)
    assert [REASON_BY_CODE[c].value for c in result.reason_code] == [
        d.reasons[0] for d in replay.decisions
    ]
    before = np.array([d.position_qty_before for d in replay.decisions])
    halted = result.trading_state_code == S_HALTED
    reduces = (result.order_qty != 0.0) & (result.order_qty * before < 0.0)
    assert np.any(halted & reduces), "no close went through while HALTED"
    after = before + result.order_qty
    assert not np.any(halted & (np.abs(after) > np.abs(before) + 1e-9))


# --- the UTC day roll: only a later day rolls -------------------------------------------------


def _halted_long() -> RiskState:
    state = ENFORCER.apply_fill(
        ENFORCER.initial_state(100_000.0, OPEN), Fill(SYMBOL, 10.0, 2_000.0, 0.0, OPEN)
    )
    state = ENFORCER.mark(state, OPEN + timedelta(minutes=5), {SYMBOL: 1_000.0})  # -5 %
    assert state.trading_state is TradingState.HALTED
    return state


def test_mark_from_an_earlier_day_keeps_the_halt() -> None:
    state = _halted_long()
    late_bar = OPEN - timedelta(days=1)
    marked = ENFORCER.mark(state, late_bar, {SYMBOL: 1_000.0})
    assert marked.trading_state is TradingState.HALTED
    assert (marked.day, marked.day_start_equity_usd) == (state.day, state.day_start_equity_usd)
    assert ENFORCER.mark(state, OPEN + timedelta(days=1), {SYMBOL: 1_000.0}).trading_state is (
        TradingState.ACTIVE
    )


def test_check_with_an_earlier_timestamp_keeps_the_halt() -> None:
    state = _halted_long()
    buy = OrderIntent("BTC/USDT", Action.BUY, 1.0, 100.0, 1.0)
    verdict = ENFORCER.check(buy, state, OPEN - timedelta(days=2))
    assert verdict.denial is DenialReason.DAILY_LOSS_HALT


marks = st.lists(
    st.tuples(st.integers(-3 * 86_400, 2 * 86_400), st.floats(-0.08, 0.08)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(steps=marks)
def test_halted_day_stays_halted_for_every_mark_on_or_before_it_property(
    steps: list[tuple[int, float]],
) -> None:
    state = ENFORCER.apply_fill(
        ENFORCER.initial_state(100_000.0, OPEN), Fill(SYMBOL, 40.0, 2_000.0, 0.0, OPEN)
    )
    price, now = 2_000.0, OPEN
    for offset_s, log_return in steps:
        now = OPEN + timedelta(seconds=offset_s)  # any order: late and replayed bars included
        price *= float(np.exp(log_return))
        marked = ENFORCER.mark(state, now, {SYMBOL: price})
        assert marked.day >= state.day  # the day never goes back
        if state.trading_state is TradingState.HALTED and now.date() <= state.day:
            assert marked.trading_state is TradingState.HALTED
            assert marked.day == state.day
        state = marked


# --- the kill switch's reason -----------------------------------------------------------------


def test_kill_switch_keeps_its_reason_until_released() -> None:
    killed = ENFORCER.set_kill_switch(_state(), on=True, reason="exchange incident")
    assert (killed.effective_state, killed.kill_reason) == (
        TradingState.HALTED,
        "exchange incident",
    )
    assert RiskState.from_dict(killed.to_dict()) == killed
    released = ENFORCER.set_kill_switch(killed, on=False)
    assert (released.kill_switch, released.kill_reason) == (False, "")
    legacy = {k: v for k, v in killed.to_dict().items() if k != "kill_reason"}
    assert RiskState.from_dict(legacy).kill_reason == ""
