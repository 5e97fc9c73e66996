"""Jitted risk rules: position sizing, the daily-loss state machine and the order check.

The Python :class:`~trading_core.risk.enforcer.RiskEnforcer` and the backtest kernel both call
these functions, so a limit cannot be applied one way in simulation and another way live.
Limits travel as a float64 array in the ``L_*`` layout (:meth:`RiskLimits.as_array`).

Sizing is fixed-fractional risk with an ATR stop (Van Tharp, "Trade Your Way to Financial
Freedom", ch. 12): ``qty = equity x per_trade_risk_pct / 100 / (stop_atr_multiple x ATR)``.
"""

import math
from typing import Final

import numba
import numpy as np
import numpy.typing as npt

from trading_core.risk.reasons import (
    R_DAILY_LOSS_HALT,
    R_INVALID_PRICE,
    R_KILL_SWITCH,
    R_MAX_CONCURRENT,
    R_MAX_LEVERAGE,
    R_MAX_NOTIONAL,
    R_MAX_POSITION,
    R_MIN_CONFIDENCE,
    R_MIN_NOTIONAL,
    R_NONE,
    R_ORDER_RATE,
    R_REDUCING_ONLY,
    R_ZERO_SIZE,
    S_HALTED,
    S_REDUCING,
)

L_RISK_PCT: Final = 0
L_DAILY_LOSS_PCT: Final = 1
L_MAX_LEVERAGE: Final = 2
L_MIN_CONFIDENCE: Final = 3
L_STOP_ATR_MULTIPLE: Final = 4
L_MAX_POSITION_PCT: Final = 5
L_MAX_NOTIONAL_USD: Final = 6
L_MAX_ORDERS_PER_MINUTE: Final = 7
L_MAX_CONCURRENT: Final = 8
L_REDUCING_FRACTION: Final = 9
L_MIN_NOTIONAL_USD: Final = 10
N_LIMITS: Final = 11


ORDER_RATE_WINDOW_MS: Final = 60_000


@numba.njit(cache=True, error_model="numpy")
def size_position_qty(equity_usd: float, atr: float, limits: npt.NDArray[np.float64]) -> float:
    """Quantity risking ``per_trade_risk_pct`` of equity over a ``stop_atr_multiple`` ATR stop."""
    stop_distance = float(limits[L_STOP_ATR_MULTIPLE]) * atr
    if not (equity_usd > 0.0 and stop_distance > 0.0 and math.isfinite(stop_distance)):
        return 0.0
    return equity_usd * float(limits[L_RISK_PCT]) * 0.01 / stop_distance


@numba.njit(cache=True, error_model="numpy")
def loss_state_after_mark(
    loss_state: int,
    equity_usd: float,
    day_start_equity_usd: float,
    limits: npt.NDArray[np.float64],
) -> int:
    """The day's trading state from its loss so far. It only worsens within a UTC day
    (ACTIVE -> REDUCING -> HALTED); a new day starts ACTIVE again (the caller resets it)."""
    if not day_start_equity_usd > 0.0:
        return S_HALTED
    loss_pct = (day_start_equity_usd - equity_usd) / day_start_equity_usd * 100.0
    limit_pct = limits[L_DAILY_LOSS_PCT]
    if loss_pct >= limit_pct:
        return S_HALTED
    if loss_pct >= limits[L_REDUCING_FRACTION] * limit_pct:
        return max(loss_state, S_REDUCING)
    return loss_state


@numba.njit(cache=True, error_model="numpy")
def _opening_room_qty(
    base_qty: float,
    price: float,
    equity_usd: float,
    other_gross_usd: float,
    limits: npt.NDArray[np.float64],
) -> tuple[float, int]:
    """Largest extra same-side quantity the position and leverage caps allow, and which binds."""
    room_position = limits[L_MAX_POSITION_PCT] * 0.01 * equity_usd / price - base_qty
    room_leverage = (limits[L_MAX_LEVERAGE] * equity_usd - other_gross_usd) / price - base_qty
    if room_leverage <= room_position:
        return max(room_leverage, 0.0), R_MAX_LEVERAGE
    return max(room_position, 0.0), R_MAX_POSITION


@numba.njit(cache=True, error_model="numpy")
def _cut_opening(
    opening: float,
    base_qty: float,
    price: float,
    confidence: float,
    equity_usd: float,
    other_gross_usd: float,
    n_open_other: int,
    loss_state: int,
    limits: npt.NDArray[np.float64],
) -> tuple[float, int]:
    """The opening (risk-adding) part after the state, confidence, concurrency and size caps."""
    if loss_state == S_REDUCING:
        return 0.0, R_REDUCING_ONLY
    if confidence < limits[L_MIN_CONFIDENCE]:
        return 0.0, R_MIN_CONFIDENCE
    if base_qty == 0.0 and n_open_other + 1 > limits[L_MAX_CONCURRENT]:
        return 0.0, R_MAX_CONCURRENT
    room, binding = _opening_room_qty(base_qty, price, equity_usd, other_gross_usd, limits)
    if room < opening:
        return room, binding
    return opening, R_NONE


@numba.njit(cache=True, error_model="numpy")
def _gate(
    qty: float,
    price: float,
    closing: float,
    orders_last_minute: int,
    loss_state: int,
    kill_switch: bool,
    limits: npt.NDArray[np.float64],
) -> int:
    """The denial that stops the whole order before any sizing, or R_NONE. HALTED and the
    kill switch stop an order with nothing to reduce; its reducing part goes on."""
    if not (price > 0.0 and math.isfinite(price)):
        return R_INVALID_PRICE
    if not (qty > 0.0 and math.isfinite(qty)):
        return R_ZERO_SIZE
    if (kill_switch or loss_state == S_HALTED) and not closing > 0.0:
        return R_KILL_SWITCH if kill_switch else R_DAILY_LOSS_HALT
    if orders_last_minute >= limits[L_MAX_ORDERS_PER_MINUTE]:
        return R_ORDER_RATE
    return R_NONE


@numba.njit(cache=True, error_model="numpy")
def check_order(
    side: float,
    qty: float,
    price: float,
    position_qty: float,
    confidence: float,
    equity_usd: float,
    other_gross_usd: float,
    n_open_other: int,
    orders_last_minute: int,
    loss_state: int,
    kill_switch: bool,
    flatten: bool,
    limits: npt.NDArray[np.float64],
) -> tuple[float, int, int]:
    """Approve, cut or deny an order of ``qty`` (> 0) on ``side`` (+1 buy, -1 sell).

    The part of the order that reduces the current position (``closing``) is allowed in every
    state, HALTED and the kill switch included (a halt stops new risk, never a way out); the
    rest (``opening``) only in ACTIVE, above ``min_confidence``, within the concurrency,
    position, leverage (gross, all positions) and per-order notional caps. So an order never
    flips while REDUCING, HALTED or killed: it is cut to its closing part (``limited_by`` says
    why) or denied when it has none. ``flatten`` marks a reduce-only order (a close-out): its
    opening part is dropped in every state. Returns (approved qty >= 0, denial code: why 0 was
    approved, code of what cut a partly approved order).
    """
    position_abs = abs(position_qty)
    reducing = position_qty * side < 0.0
    closing = min(qty, position_abs) if reducing else 0.0
    opening = qty - closing
    gate = _gate(qty, price, closing, orders_last_minute, loss_state, kill_switch, limits)
    if gate != R_NONE:
        return 0.0, gate, R_NONE
    cut = R_NONE
    if opening > 0.0 and (kill_switch or loss_state == S_HALTED):
        opening, cut = 0.0, R_KILL_SWITCH if kill_switch else R_DAILY_LOSS_HALT
    elif opening > 0.0 and flatten:
        opening, cut = 0.0, R_REDUCING_ONLY
    if opening > 0.0:
        base_qty = position_abs if position_qty * side > 0.0 else 0.0
        opening, cut = _cut_opening(
            opening,
            base_qty,
            price,
            confidence,
            equity_usd,
            other_gross_usd,
            n_open_other,
            loss_state,
            limits,
        )
    total = closing + opening
    max_qty = limits[L_MAX_NOTIONAL_USD] / price
    if total > max_qty:
        total, cut = max_qty, R_MAX_NOTIONAL
    full_close = reducing and opening == 0.0 and total == position_abs
    if total <= 0.0:
        return 0.0, cut if cut != R_NONE else R_ZERO_SIZE, R_NONE
    if total * price < limits[L_MIN_NOTIONAL_USD] and not full_close:
        return 0.0, cut if cut != R_NONE else R_MIN_NOTIONAL, R_NONE
    return total, R_NONE, cut


@numba.njit(cache=True, error_model="numpy")
def orders_in_window(times_ms: npt.NDArray[np.int64], count: int, now_ms: int) -> int:
    """How many of the first ``count`` recorded order times lie in the last minute."""
    n = 0
    for i in range(count):
        if times_ms[i] > now_ms - ORDER_RATE_WINDOW_MS:
            n += 1
    return n
