"""The sequential part of the backtest, in numba: fills, funding, marks, the UTC-day roll and
one call of :func:`~trading_core.decision.kernel.decide_core` per bar.

Everything that can be computed ahead (consensus, forecasts, ATR, volatility, spreads) arrives
as arrays from the vectorized pre-pass; only the path-dependent state (position, cash, holding
clock, daily loss, order times) lives here. The order of operations per bar t mirrors what
:func:`trading_core.decision.decide_bar` does to a :class:`RiskState`:

1. ``next_open``: fill the previous decision at ``open[t]``
2. funding on the position held through bar t (perps), at ``close[t]``
3. mark at ``close[t]``; new UTC day -> day-start equity and ACTIVE; daily-loss state
4. decide at the bar's close (``decided_ms[t]``)
5. ``close``: fill the decision at ``close[t]``; ``next_open``: keep it for bar t + 1

Compiled with ``cache=True``. numba invalidates a cached function only when its own file
changes, not when a jitted function it calls (in ``trading_core.risk`` or ``trading_core.costs``)
does: after editing those kernels during development, delete the ``*.nbi``/``*.nbc`` files
under ``trading_core/*/__pycache__``.
"""

from typing import Final

import numba
import numpy as np
import numpy.typing as npt

from trading_core.costs.kernel import (
    C_FUNDING_BPS_PER_8H,
    K_TOTAL,
    fill_price_and_fee,
    funding_charge_usd,
)
from trading_core.decision.kernel import (
    D_BARS_HELD,
    D_COSTS,
    D_DENIAL,
    D_EDGE,
    D_FEE_BPS,
    D_ORDER_QTY,
    D_PRICE_ADJUST_BPS,
    D_REASON,
    N_DECISION,
    decide_core,
)
from trading_core.risk.kernel import (
    L_MAX_ORDERS_PER_MINUTE,
    ORDER_RATE_WINDOW_MS,
    loss_state_after_mark,
    orders_in_window,
)
from trading_core.risk.reasons import S_ACTIVE

MS_PER_DAY: Final = 86_400_000
FLAT_TOLERANCE: Final = 1e-12

# Columns of the float output matrix.
O_POSITION: Final = 0
O_CASH: Final = 1
O_EQUITY: Final = 2
O_ORDER_QTY: Final = 3
O_FILL_QTY: Final = 4
O_FILL_PRICE: Final = 5
O_FEE_USD: Final = 6
O_FUNDING_USD: Final = 7
O_EDGE_BPS: Final = 8
O_COST_BPS: Final = 9
O_FILL_ADJUST_BPS: Final = 10
N_FLOAT_OUT: Final = 11
# Columns of the integer output matrix.
I_REASON: Final = 0
I_DENIAL: Final = 1
I_STATE: Final = 2
N_INT_OUT: Final = 3


@numba.njit(cache=True, error_model="numpy")
def position_after_fill(position: float, fill_qty: float) -> float:
    """Net position after a fill; exactly 0 when the remainder is rounding noise (as in
    :meth:`RiskEnforcer.apply_fill`)."""
    new = position + fill_qty
    if abs(new) <= FLAT_TOLERANCE * max(abs(position), abs(fill_qty)):
        return 0.0
    return new


@numba.njit(cache=True, error_model="numpy")
def _apply_fill(
    t: int,
    qty: float,
    reference: float,
    adjust_bps: float,
    fee_bps: float,
    cash: float,
    position: float,
    bars_held: int,
    out_f: npt.NDArray[np.float64],
) -> tuple[float, float, int]:
    price, fee = fill_price_and_fee(qty, reference, adjust_bps, fee_bps)
    cash = cash - qty * price - fee
    new_position = position_after_fill(position, qty)
    if position == 0.0 or position * new_position < 0.0:
        bars_held = 0
    out_f[t, O_FILL_QTY] = qty
    out_f[t, O_FILL_PRICE] = price
    out_f[t, O_FEE_USD] = fee
    out_f[t, O_FILL_ADJUST_BPS] = adjust_bps
    return cash, new_position, bars_held


@numba.njit(cache=True, error_model="numpy")
def _orders_last_minute(
    ring: npt.NDArray[np.int64], n_recorded: int, last_order_ms: int, now_ms: int
) -> int:
    """Orders in the last minute; skips the scan when the latest order is older than that."""
    if n_recorded == 0 or last_order_ms <= now_ms - ORDER_RATE_WINDOW_MS:
        return 0
    return orders_in_window(ring, min(n_recorded, ring.shape[0]), now_ms)


@numba.njit(cache=True, error_model="numpy")
def simulate(
    decided_ms: npt.NDArray[np.int64],
    open_: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    volume: npt.NDArray[np.float64],
    atr: npt.NDArray[np.float64],
    volatility_bps: npt.NDArray[np.float64],
    half_spread_bps: npt.NDArray[np.float64],
    regime: npt.NDArray[np.int8],
    action: npt.NDArray[np.int8],
    confidence: npt.NDArray[np.float64],
    score: npt.NDArray[np.float64],
    expected_return_bps: npt.NDArray[np.float64],
    data_valid: npt.NDArray[np.bool_],
    initial_cash: float,
    fill_next_open: bool,
    holding_bars: int,
    holding_hours: float,
    bar_hours: float,
    allow_short: bool,
    accrue_funding: bool,
    costs: npt.NDArray[np.float64],
    limits: npt.NDArray[np.float64],
    out_f: npt.NDArray[np.float64],
    out_i: npt.NDArray[np.int64],
) -> None:
    """Run one coin over its per-bar arrays (see :class:`~trading_core.backtest.BacktestInputs`)."""
    n = close.shape[0]
    decision = np.zeros(N_DECISION)
    no_book = np.empty((0, 2))  # history has no order book: the square-root slippage law
    ring = np.zeros(int(limits[L_MAX_ORDERS_PER_MINUTE]), dtype=np.int64)
    n_recorded, last_order_ms = 0, 0
    cash, position, bars_held = initial_cash, 0.0, 0
    pending, pending_adjust, pending_fee = 0.0, 0.0, 0.0
    day, day_start, loss_state = decided_ms[0] // MS_PER_DAY, initial_cash, S_ACTIVE
    for t in range(n):
        if pending != 0.0:
            cash, position, bars_held = _apply_fill(
                t, pending, open_[t], pending_adjust, pending_fee, cash, position, bars_held, out_f
            )
            pending = 0.0
        if accrue_funding and position != 0.0:
            funding_rate = costs[C_FUNDING_BPS_PER_8H]
            funding = funding_charge_usd(position * close[t], funding_rate, bar_hours)
            cash = cash - funding
            out_f[t, O_FUNDING_USD] = funding
        equity = cash + position * close[t]
        if decided_ms[t] // MS_PER_DAY > day:  # only a LATER day rolls (as the enforcer)
            day, day_start, loss_state = decided_ms[t] // MS_PER_DAY, equity, S_ACTIVE
        loss_state = loss_state_after_mark(loss_state, equity, day_start, limits)
        decide_core(
            action[t],
            confidence[t],
            score[t],
            regime[t],
            data_valid[t],
            expected_return_bps[t],
            close[t],
            atr[t],
            volatility_bps[t],
            volume[t],
            half_spread_bps[t],
            position,
            bars_held,
            equity,
            0.0,
            0,
            _orders_last_minute(ring, n_recorded, last_order_ms, decided_ms[t]),
            loss_state,
            False,
            holding_bars,
            holding_hours,
            allow_short,
            costs,
            limits,
            decision,
            no_book,
            no_book,
        )
        if position != 0.0:
            bars_held = int(decision[D_BARS_HELD])
        order = decision[D_ORDER_QTY]
        if order != 0.0:
            ring[n_recorded % ring.shape[0]] = decided_ms[t]
            n_recorded += 1
            last_order_ms = decided_ms[t]
            if fill_next_open:
                pending = order
                pending_adjust = decision[D_PRICE_ADJUST_BPS]
                pending_fee = decision[D_FEE_BPS]
            else:
                cash, position, bars_held = _apply_fill(
                    t,
                    order,
                    close[t],
                    decision[D_PRICE_ADJUST_BPS],
                    decision[D_FEE_BPS],
                    cash,
                    position,
                    bars_held,
                    out_f,
                )
        out_f[t, O_POSITION] = position
        out_f[t, O_CASH] = cash
        out_f[t, O_EQUITY] = cash + position * close[t]
        out_f[t, O_ORDER_QTY] = order
        out_f[t, O_EDGE_BPS] = decision[D_EDGE]
        out_f[t, O_COST_BPS] = decision[D_COSTS + K_TOTAL]
        out_i[t, I_REASON] = int(decision[D_REASON])
        out_i[t, I_DENIAL] = int(decision[D_DENIAL])
        out_i[t, I_STATE] = loss_state
