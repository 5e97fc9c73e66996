"""The one risk enforcer used by the backtest and by Hamilton.

Pure: every method takes a :class:`RiskState` and returns a verdict or a new state. The rules
themselves are the numba functions of :mod:`trading_core.risk.kernel`, which the backtest kernel
calls too. Typical use per bar: ``mark`` (price, UTC day roll, daily-loss state) -> ``check`` ->
``record_order`` -> later ``apply_fill``.
"""

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from trading_core.risk import kernel
from trading_core.risk.limits import RiskLimits
from trading_core.risk.reasons import (
    STATE_BY_CODE,
    STATE_CODE,
    DenialReason,
    TradingState,
    denial_from_code,
)
from trading_core.risk.state import Position, RiskState
from trading_core.types import Action

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch of a UTC-aware datetime (ValueError otherwise)."""
    if moment.tzinfo is None or moment.utcoffset() != timedelta(0):
        raise ValueError(f"time {moment!r} must be timezone-aware UTC")
    return (moment - _EPOCH) // _ONE_MS


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order someone wants to send. ``flatten`` marks a reduce-only close-out: only its
    position-reducing part is ever approved (in every state; a reducing part is allowed while
    HALTED or under the kill switch with or without the flag)."""

    symbol: str
    side: Action
    qty: float
    price: float
    confidence: float = 1.0
    flatten: bool = False

    def __post_init__(self) -> None:
        if self.side not in (Action.BUY, Action.SELL):
            raise ValueError(f"order side {self.side!r}; allowed: buy, sell")
        if math.isnan(self.qty) or math.isnan(self.price) or math.isnan(self.confidence):
            raise ValueError(f"order {self.symbol!r}: qty, price and confidence must not be NaN")

    @property
    def side_sign(self) -> float:
        return 1.0 if self.side == Action.BUY else -1.0


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    """Approved quantity (0 when denied), the denial reason, and what cut a partial approval."""

    requested_qty: float
    qty: float
    denial: DenialReason | None = None
    limited_by: DenialReason | None = None

    @property
    def approved(self) -> bool:
        return self.qty > 0.0


@dataclass(frozen=True, slots=True)
class Fill:
    """An executed order: signed ``qty`` (> 0 bought), average price and fee paid."""

    symbol: str
    qty: float
    price: float
    fee_usd: float
    filled_at: datetime

    def __post_init__(self) -> None:
        if not math.isfinite(self.qty) or self.qty == 0.0:
            raise ValueError(f"fill qty {self.qty!r} must be finite and non-zero")
        if not (math.isfinite(self.price) and self.price > 0.0):
            raise ValueError(f"fill price {self.price!r} must be a finite price > 0")
        if not (math.isfinite(self.fee_usd) and self.fee_usd >= 0.0):
            raise ValueError(f"fill fee_usd {self.fee_usd!r} must be >= 0")


def _position_after_fill(position: Position | None, fill: Fill) -> Position | None:
    if position is None:
        return Position(fill.qty, fill.price, fill.price, 0)
    new_qty = position.qty + fill.qty
    if abs(new_qty) <= 1e-12 * max(abs(position.qty), abs(fill.qty)):
        return None
    if position.qty * new_qty < 0.0:
        return Position(new_qty, fill.price, fill.price, 0)
    if position.qty * fill.qty > 0.0:
        cost = position.qty * position.avg_entry_price + fill.qty * fill.price
        return Position(new_qty, cost / new_qty, fill.price, position.bars_held)
    return replace(position, qty=new_qty, mark_price=fill.price)


class RiskEnforcer:
    """Applies :class:`RiskLimits` to a :class:`RiskState`. Holds no mutable state."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self._limits_array = limits.as_array()
        self._limits_array.flags.writeable = False

    def initial_state(self, capital_usd: float, now: datetime) -> RiskState:
        if not (math.isfinite(capital_usd) and capital_usd > 0.0):
            raise ValueError(f"capital_usd={capital_usd!r} must be a finite amount > 0")
        epoch_ms(now)
        return RiskState(cash_usd=capital_usd, day=now.date(), day_start_equity_usd=capital_usd)

    def mark(self, state: RiskState, now: datetime, prices: dict[str, float]) -> RiskState:
        """New mark prices, the UTC day roll (day-start equity := equity at the day's first mark,
        state back to ACTIVE) and the daily-loss state; prunes order times older than a minute.
        Only a LATER UTC day rolls: a mark dated on an earlier day (a late or replayed bar) is
        judged against the current day and never resets its state."""
        positions = dict(state.positions)
        for symbol, price in prices.items():
            if not (math.isfinite(price) and price > 0.0):
                raise ValueError(f"mark price of {symbol!r} is {price!r}; must be finite and > 0")
            if symbol in positions:
                positions[symbol] = replace(positions[symbol], mark_price=price)
        marked = replace(state, positions=positions)
        return self._rolled(marked, now)

    def _rolled(self, state: RiskState, now: datetime) -> RiskState:
        now_ms = epoch_ms(now)
        day, day_start, loss_state = state.day, state.day_start_equity_usd, state.trading_state
        equity = state.equity_usd
        if now.date() > day:  # an earlier day (a late bar) must never lift a halt
            day, day_start, loss_state = now.date(), equity, TradingState.ACTIVE
        code = kernel.loss_state_after_mark(
            STATE_CODE[loss_state], equity, day_start, self._limits_array
        )
        window_start = now_ms - kernel.ORDER_RATE_WINDOW_MS
        recent = tuple(t for t in state.recent_order_times_ms if t > window_start)
        keep = int(self.limits.max_orders_per_minute)
        return replace(
            state,
            day=day,
            day_start_equity_usd=day_start,
            trading_state=STATE_BY_CODE[code],
            recent_order_times_ms=recent[-keep:],
        )

    def orders_last_minute(self, state: RiskState, now: datetime) -> int:
        window_start = epoch_ms(now) - kernel.ORDER_RATE_WINDOW_MS
        return sum(1 for t in state.recent_order_times_ms if t > window_start)

    def check(self, intent: OrderIntent, state: RiskState, now: datetime) -> RiskVerdict:
        """Approve (possibly cut) or deny ``intent`` against ``state`` as of ``now``."""
        rolled = self._rolled(state, now)
        qty, denial, limited_by = kernel.check_order(
            intent.side_sign,
            float(intent.qty),
            float(intent.price),
            rolled.position_qty(intent.symbol),
            float(intent.confidence),
            rolled.equity_usd,
            rolled.gross_notional_usd(excluding=intent.symbol),
            sum(1 for s in rolled.positions if s != intent.symbol),
            self.orders_last_minute(rolled, now),
            STATE_CODE[rolled.trading_state],
            rolled.kill_switch,
            intent.flatten,
            self._limits_array,
        )
        return RiskVerdict(
            requested_qty=float(intent.qty),
            qty=float(qty),
            denial=denial_from_code(int(denial)),
            limited_by=denial_from_code(int(limited_by)),
        )

    def record_order(self, state: RiskState, now: datetime) -> RiskState:
        """Remember that an order was sent at ``now`` (for the order-rate limit)."""
        times = (*state.recent_order_times_ms, epoch_ms(now))
        keep = int(self.limits.max_orders_per_minute)
        return replace(state, recent_order_times_ms=times[-keep:])

    def apply_fill(self, state: RiskState, fill: Fill) -> RiskState:
        """Cash and position after ``fill`` (a flip opens a fresh position at the fill price)."""
        cash = state.cash_usd - fill.qty * fill.price - fill.fee_usd
        position = _position_after_fill(state.positions.get(fill.symbol), fill)
        return replace(state.with_position(fill.symbol, position), cash_usd=cash)

    def charge(self, state: RiskState, amount_usd: float) -> RiskState:
        """Debit a cost paid outside fills (e.g. perp funding)."""
        if not (math.isfinite(amount_usd) and amount_usd >= 0.0):
            raise ValueError(f"charge amount_usd={amount_usd!r} must be >= 0")
        return replace(state, cash_usd=state.cash_usd - amount_usd)

    def set_kill_switch(self, state: RiskState, *, on: bool, reason: str = "") -> RiskState:
        """Engage (with the ``reason``, shown by the status) or release the kill switch: while
        on, the effective state is HALTED (reduce-only); the loss state is kept apart."""
        return replace(state, kill_switch=on, kill_reason=reason if on else "")

    def size_qty(self, equity_usd: float, atr: float) -> float:
        """Per-trade-risk position size for a ``stop_atr_multiple`` x ATR stop (before caps)."""
        return float(kernel.size_position_qty(equity_usd, atr, self._limits_array))
