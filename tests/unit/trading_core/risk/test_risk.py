"""Risk enforcer: sizing, caps, trading states, kill switch, order rate, serialisation."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from trading_core.config.models import EngineConfig, RiskPresetsSection, RiskSection
from trading_core.risk import (
    DenialReason,
    Fill,
    OrderIntent,
    Position,
    RiskEnforcer,
    RiskLimits,
    RiskState,
    TradingState,
)
from trading_core.types import Action

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SYMBOL = "BTC/USDT"


def _limits(**overrides: object) -> RiskLimits:
    base = RiskLimits.from_config(RiskPresetsSection(), RiskSection(), max_concurrent_trades=3)
    return replace(base, **overrides)  # type: ignore[arg-type]


def _state(positions: dict[str, Position] | None = None, **overrides: object) -> RiskState:
    held = positions or {}
    cash = 100_000.0 - sum(p.qty * p.mark_price for p in held.values())
    state = RiskState(cash_usd=cash, day=NOW.date(), day_start_equity_usd=100_000.0, positions=held)
    return replace(state, **overrides)  # type: ignore[arg-type]


def _long(qty: float, price: float = 100.0) -> Position:
    return Position(qty=qty, avg_entry_price=price, mark_price=price)


def _intent(side: Action, qty: float, confidence: float = 0.9, **kw: object) -> OrderIntent:
    return OrderIntent(SYMBOL, side, qty, 100.0, confidence, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "positions", "state_overrides", "intent", "qty", "denial", "limited_by"),
    [
        ("open_within_limits", {}, {}, _intent(Action.BUY, 100), 100, None, None),
        ("low_confidence", {}, {}, _intent(Action.BUY, 100, 0.5), 0, "min_confidence", None),
        ("position_cap", {}, {}, _intent(Action.BUY, 1000), 250, None, "max_position"),
        (
            "leverage_cap_counts_other_positions",
            {"ETH/USDT": _long(995, 100.0), "SOL/USDT": _long(-995, 100.0)},
            {},
            _intent(Action.BUY, 100),
            10,
            None,
            "max_leverage",
        ),
        (
            "no_leverage_room",
            {"ETH/USDT": _long(2000, 100.0)},
            {},
            _intent(Action.BUY, 100),
            0,
            "max_leverage",
            None,
        ),
        (
            "reducing_state_blocks_opening",
            {},
            {"trading_state": TradingState.REDUCING},
            _intent(Action.BUY, 10),
            0,
            "reducing_only",
            None,
        ),
        (
            "reducing_state_allows_reduction",
            {SYMBOL: _long(50)},
            {"trading_state": TradingState.REDUCING},
            _intent(Action.SELL, 50),
            50,
            None,
            None,
        ),
        (
            "halted_allows_reduction",
            {SYMBOL: _long(50)},
            {"trading_state": TradingState.HALTED},
            _intent(Action.SELL, 50),
            50,
            None,
            None,
        ),
        (
            "halted_cuts_a_flip_to_its_close",
            {SYMBOL: _long(50)},
            {"trading_state": TradingState.HALTED},
            _intent(Action.SELL, 80),
            50,
            None,
            "daily_loss_halt",
        ),
        (
            "halted_blocks_new_risk",
            {SYMBOL: _long(50)},
            {"trading_state": TradingState.HALTED},
            _intent(Action.BUY, 10),
            0,
            "daily_loss_halt",
            None,
        ),
        (
            "halted_allows_explicit_flatten",
            {SYMBOL: _long(50)},
            {"trading_state": TradingState.HALTED},
            _intent(Action.SELL, 80, flatten=True),
            50,
            None,
            "daily_loss_halt",
        ),
        (
            "kill_switch_blocks_new_risk",
            {},
            {"kill_switch": True},
            _intent(Action.BUY, 10),
            0,
            "kill_switch",
            None,
        ),
        (
            "kill_switch_allows_reduction",
            {SYMBOL: _long(50)},
            {"kill_switch": True},
            _intent(Action.SELL, 50),
            50,
            None,
            None,
        ),
        (
            "flatten_never_opens",
            {SYMBOL: _long(50)},
            {},
            _intent(Action.SELL, 80, flatten=True),
            50,
            None,
            "reducing_only",
        ),
        (
            "kill_switch_allows_flatten",
            {SYMBOL: _long(50)},
            {"kill_switch": True},
            _intent(Action.SELL, 50, flatten=True),
            50,
            None,
            None,
        ),
        (
            "flatten_when_flat_is_denied",
            {},
            {"kill_switch": True},
            _intent(Action.SELL, 50, flatten=True),
            0,
            "kill_switch",
            None,
        ),
        (
            "order_rate",
            {},
            {
                "recent_order_times_ms": tuple(
                    range(1772452800000 - 59_000, 1772452800000 + 1000, 1000)
                )
            },
            _intent(Action.BUY, 10),
            0,
            "order_rate",
            None,
        ),
        (
            "max_concurrent_trades_blocks_new_symbol",
            {"A/USDT": _long(1), "B/USDT": _long(1), "C/USDT": _long(1)},
            {},
            _intent(Action.BUY, 10),
            0,
            "max_concurrent_trades",
            None,
        ),
        ("zero_qty", {}, {}, _intent(Action.BUY, 0.0), 0, "zero_size", None),
        ("dust_order", {}, {}, _intent(Action.BUY, 0.01), 0, "min_notional", None),
        (
            "flip_long_to_short",
            {SYMBOL: _long(100)},
            {},
            _intent(Action.SELL, 300),
            300,
            None,
            None,
        ),
        (
            "flip_with_low_confidence_only_closes",
            {SYMBOL: _long(100)},
            {},
            _intent(Action.SELL, 300, 0.1),
            100,
            None,
            "min_confidence",
        ),
    ],
)
def test_check_table_gives_expected_verdict(
    name: str,
    positions: dict[str, Position],
    state_overrides: dict[str, object],
    intent: OrderIntent,
    qty: float,
    denial: str | None,
    limited_by: str | None,
) -> None:
    enforcer = RiskEnforcer(_limits())
    verdict = enforcer.check(intent, _state(positions, **state_overrides), NOW)
    assert verdict.qty == pytest.approx(qty), name
    assert verdict.denial == (DenialReason(denial) if denial else None), name
    assert verdict.limited_by == (DenialReason(limited_by) if limited_by else None), name
    assert verdict.approved == (qty > 0)


def test_per_order_notional_cap_applies_to_large_orders() -> None:
    enforcer = RiskEnforcer(_limits(max_position_pct=500.0, max_leverage=5.0))
    verdict = enforcer.check(_intent(Action.BUY, 2_000), _state(), NOW)
    assert verdict.qty == pytest.approx(500.0)  # 50,000 USD / 100
    assert verdict.limited_by is DenialReason.MAX_NOTIONAL


@pytest.mark.parametrize(
    ("equity", "atr", "expected_qty"),
    [(100_000.0, 2.0, 250.0), (50_000.0, 10.0, 25.0), (100_000.0, 0.0, 0.0), (-5.0, 2.0, 0.0)],
)
def test_sizing_risks_the_per_trade_fraction_over_the_atr_stop(
    equity: float, atr: float, expected_qty: float
) -> None:
    assert RiskEnforcer(_limits()).size_qty(equity, atr) == pytest.approx(expected_qty)


def test_daily_loss_moves_active_reducing_halted_and_resets_next_day() -> None:
    enforcer = RiskEnforcer(_limits())  # 2.5 % limit, REDUCING from 2.0 %
    state = enforcer.apply_fill(
        enforcer.initial_state(100_000.0, NOW), Fill(SYMBOL, 100.0, 100.0, 0.0, NOW)
    )
    prices_and_states = [
        (99.0, TradingState.ACTIVE),  # -1.0 %
        (80.0, TradingState.REDUCING),  # -2.0 %
        (90.0, TradingState.REDUCING),  # recovered, but the day's state only worsens
        (75.0, TradingState.HALTED),  # -2.5 %
        (100.0, TradingState.HALTED),
    ]
    for step, (price, expected) in enumerate(prices_and_states):
        state = enforcer.mark(state, NOW + timedelta(minutes=step), {SYMBOL: price})
        assert state.trading_state is expected, price
    next_day = datetime(2026, 3, 3, 0, 5, tzinfo=UTC)
    state = enforcer.mark(state, next_day, {SYMBOL: 100.0})
    assert state.trading_state is TradingState.ACTIVE
    assert state.day_start_equity_usd == pytest.approx(state.equity_usd)


def test_check_rolls_the_day_before_judging() -> None:
    enforcer = RiskEnforcer(_limits())
    halted = _state(trading_state=TradingState.HALTED)
    tomorrow = NOW + timedelta(days=1)
    assert not enforcer.check(_intent(Action.BUY, 10), halted, NOW).approved
    assert enforcer.check(_intent(Action.BUY, 10), halted, tomorrow).approved


def test_kill_switch_is_separate_from_the_loss_state() -> None:
    enforcer = RiskEnforcer(_limits())
    state = enforcer.set_kill_switch(_state(), on=True)
    assert state.effective_state is TradingState.HALTED
    assert state.trading_state is TradingState.ACTIVE
    released = enforcer.set_kill_switch(state, on=False)
    assert enforcer.check(_intent(Action.BUY, 10), released, NOW).approved


def test_order_rate_window_slides() -> None:
    enforcer = RiskEnforcer(_limits(max_orders_per_minute=2))
    state = _state()
    for seconds in (0, 10):
        state = enforcer.record_order(state, NOW + timedelta(seconds=seconds))
    assert not enforcer.check(_intent(Action.BUY, 10), state, NOW + timedelta(seconds=30)).approved
    assert enforcer.check(_intent(Action.BUY, 10), state, NOW + timedelta(seconds=61)).approved


def test_fills_update_cash_position_and_average_price() -> None:
    enforcer = RiskEnforcer(_limits())
    state = enforcer.initial_state(10_000.0, NOW)
    state = enforcer.apply_fill(state, Fill(SYMBOL, 2.0, 100.0, 1.0, NOW))
    state = enforcer.apply_fill(state, Fill(SYMBOL, 2.0, 110.0, 1.0, NOW))
    assert state.positions[SYMBOL].avg_entry_price == pytest.approx(105.0)
    assert state.cash_usd == pytest.approx(10_000.0 - 200.0 - 220.0 - 2.0)
    state = enforcer.apply_fill(state, Fill(SYMBOL, -5.0, 120.0, 0.0, NOW))
    assert state.positions[SYMBOL].qty == pytest.approx(-1.0)
    assert state.positions[SYMBOL].avg_entry_price == pytest.approx(120.0)
    state = enforcer.apply_fill(state, Fill(SYMBOL, 1.0, 120.0, 0.0, NOW))
    assert SYMBOL not in state.positions


def test_state_round_trips_through_json() -> None:
    enforcer = RiskEnforcer(_limits())
    state = enforcer.record_order(
        _state({SYMBOL: _long(3.0)}, trading_state=TradingState.REDUCING, kill_switch=True), NOW
    )
    restored = RiskState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state


def test_state_from_dict_names_bad_values() -> None:
    data = _state().to_dict()
    with pytest.raises(ValueError, match="trading_state"):
        RiskState.from_dict({**data, "trading_state": "panic"})
    with pytest.raises(ValueError, match="missing keys"):
        RiskState.from_dict({"cash_usd": 1.0})


def test_limits_come_from_the_active_preset() -> None:
    config = EngineConfig()
    limits = RiskLimits.from_config(
        config.risk_presets, config.risk, max_concurrent_trades=10, preset="conservative"
    )
    assert (limits.per_trade_risk_pct, limits.max_leverage, limits.min_confidence) == (
        0.5,
        1.5,
        0.65,
    )
    with pytest.raises(KeyError, match="allowed"):
        RiskLimits.from_config(
            config.risk_presets, config.risk, max_concurrent_trades=1, preset="yolo"
        )


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValueError, match="UTC"):
        RiskEnforcer(_limits()).check(_intent(Action.BUY, 1), _state(), datetime(2026, 1, 1))  # noqa: DTZ001
