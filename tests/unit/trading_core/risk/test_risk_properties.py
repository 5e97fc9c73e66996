"""Property: over random price paths and signal sequences fed through the enforcer and fills,
no limit is ever exceeded."""

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trading_core.config.models import RiskPresetsSection, RiskSection
from trading_core.risk import Fill, OrderIntent, RiskEnforcer, RiskLimits, RiskState
from trading_core.types import Action

SYMBOLS = ("A/USDT", "B/USDT", "C/USDT")
START = datetime(2026, 1, 5, 22, 0, tzinfo=UTC)
FEE_RATE = 0.0004
EPS = 1e-9

step = st.tuples(
    st.floats(-0.08, 0.08),  # log return of every symbol's price this step (shared shock)
    st.integers(0, 2),  # which symbol trades
    st.sampled_from([Action.BUY, Action.SELL]),
    st.floats(0.0, 3.0),  # order size as a multiple of equity / price
    st.floats(0.0, 1.0),  # confidence
    st.integers(1, 7200),  # seconds to the next step
    st.booleans(),  # flatten flag
)


def _limits(preset: str, max_orders: int) -> RiskLimits:
    base = RiskLimits.from_config(
        RiskPresetsSection(),
        RiskSection(max_orders_per_minute=max_orders, max_notional_per_order_usd=30_000.0),
        max_concurrent_trades=2,
        preset=preset,
    )
    return base


def _is_reducing(before: float, after: float) -> bool:
    return abs(after) <= abs(before) + EPS and before * after >= 0.0


class _Checker:
    """Tracks what the limits promise and asserts it after every approved order."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self.order_times: list[datetime] = []
        self.halted_day: object = None

    def on_mark(self, state: RiskState, now: datetime) -> None:
        loss_pct = (1.0 - state.equity_usd / state.day_start_equity_usd) * 100.0
        if state.day == now.date() and loss_pct >= self.limits.daily_loss_limit_pct:
            self.halted_day = now.date()

    def on_order(
        self,
        before: RiskState,
        after: RiskState,
        symbol: str,
        qty: float,
        price: float,
        now: datetime,
    ) -> None:
        assert abs(qty) * price <= self.limits.max_notional_per_order_usd * (1 + EPS)
        pos_before, pos_after = before.position_qty(symbol), after.position_qty(symbol)
        adds_risk = not _is_reducing(pos_before, pos_after)
        if adds_risk:
            gross_after = before.gross_notional_usd(excluding=symbol) + abs(pos_after) * price
            assert gross_after <= self.limits.max_leverage * before.equity_usd * (1 + EPS) + EPS
            assert self.halted_day != now.date(), "new risk after the daily loss limit"
            assert len(after.positions) <= self.limits.max_concurrent_trades
        self.order_times.append(now)
        window = [t for t in self.order_times if t > now - timedelta(seconds=60)]
        assert len(window) <= self.limits.max_orders_per_minute


def _walk(
    steps: list[tuple[float, int, Action, float, float, int, bool]],
    enforcer: RiskEnforcer,
    checker: _Checker,
) -> None:
    now = START
    state = enforcer.initial_state(100_000.0, now)
    prices = dict.fromkeys(SYMBOLS, 100.0)
    for log_return, which, side, size, confidence, gap_s, flatten in steps:
        prices = {s: p * math.exp(log_return * (1 + i)) for i, (s, p) in enumerate(prices.items())}
        state = enforcer.mark(state, now, prices)
        checker.on_mark(state, now)
        symbol = SYMBOLS[which]
        qty = size * state.equity_usd / prices[symbol] if state.equity_usd > 0 else 0.0
        intent = OrderIntent(symbol, side, qty, prices[symbol], confidence, flatten)
        verdict = enforcer.check(intent, state, now)
        if verdict.approved:
            signed = verdict.qty if side is Action.BUY else -verdict.qty
            fee = abs(signed) * prices[symbol] * FEE_RATE
            after = enforcer.apply_fill(
                enforcer.record_order(state, now),
                Fill(symbol, signed, prices[symbol], fee, now),
            )
            checker.on_order(state, after, symbol, signed, prices[symbol], now)
            state = after
        now += timedelta(seconds=gap_s)


paths = st.lists(step, min_size=5, max_size=60)
presets = st.sampled_from(["conservative", "balanced", "aggressive"])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(steps=paths, preset=presets, max_orders=st.integers(1, 5))
def test_random_paths_never_exceed_a_limit(
    steps: list[tuple[float, int, Action, float, float, int, bool]], preset: str, max_orders: int
) -> None:
    limits = _limits(preset, max_orders)
    _walk(steps, RiskEnforcer(limits), _Checker(limits))


@pytest.mark.slow
@settings(
    max_examples=3000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps=paths, preset=presets, max_orders=st.integers(1, 5))
def test_thousands_of_random_paths_never_exceed_a_limit(
    steps: list[tuple[float, int, Action, float, float, int, bool]], preset: str, max_orders: int
) -> None:
    limits = _limits(preset, max_orders)
    _walk(steps, RiskEnforcer(limits), _Checker(limits))


def test_the_checker_catches_a_looser_enforcer() -> None:
    """Guards the property test itself: limits looser than promised must be caught."""
    promised = _limits("conservative", 5)
    loose = replace(promised, max_leverage=10.0, max_position_pct=1000.0)
    buys = [(0.0, i % 2, Action.BUY, 3.0, 1.0, 61, False) for i in range(8)]
    with pytest.raises(AssertionError):
        _walk(buys, RiskEnforcer(loose), _Checker(promised))


def test_backtest_kernel_respects_the_same_limits_on_random_paths() -> None:
    """The numba path: thousands of random bars through the backtest never breach a cap."""
    from trading_core.backtest import BacktestConfig, BacktestInputs, run_backtest
    from trading_core.config.models import EngineConfig

    rng = np.random.default_rng(20260105)
    config = BacktestConfig.from_engine_config(EngineConfig(), timeframe="1h", fill_at="close")
    limits = config.decision.limits
    for _ in range(200):
        n = 400
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, n)))
        score = rng.uniform(-1.0, 1.0, n)
        inputs = BacktestInputs(
            symbol="R/USDT",
            timestamps_ms=1_767_225_600_000 + 3_600_000 * np.arange(n, dtype=np.int64),
            open=close * np.exp(rng.normal(0.0, 0.01, n)),
            close=close,
            volume=rng.uniform(1e3, 1e6, n),
            atr=close * rng.uniform(0.001, 0.05, n),
            volatility_bps=rng.uniform(10.0, 300.0, n),
            half_spread_bps=rng.uniform(0.5, 5.0, n),
            regime=rng.integers(0, 4, n).astype(np.int8),
            action=np.sign(score).astype(np.int8),
            confidence=rng.uniform(0.0, 1.0, n),
            score=score,
            expected_return_bps=score * rng.uniform(0.0, 500.0, n),
            data_valid=rng.uniform(size=n) > 0.05,
        )
        result = run_backtest(inputs, config)
        # fill_at="close": every order is checked and filled against close[t]
        traded = np.abs(result.fill_qty) * inputs.close
        assert np.all(traded <= limits.max_notional_per_order_usd * (1 + 1e-9))
        cash_before = np.concatenate(([config.initial_capital_usd], result.cash[:-1]))
        position_before = np.concatenate(([0.0], result.position[:-1]))
        marked_equity = cash_before - result.funding_usd + position_before * inputs.close
        exposure = np.abs(result.position) * inputs.close
        grew = np.abs(result.position) > np.abs(position_before)
        assert np.all(exposure[grew] <= limits.max_leverage * marked_equity[grew] * (1 + 1e-9))
        halted = result.trading_state_code == 2
        assert not np.any(grew & halted)
        assert grew.sum() > 10  # the paths do trade
