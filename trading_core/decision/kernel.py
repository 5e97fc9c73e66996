"""The per-bar decision in numba: position logic, cost gate, sizing and the risk check.

:func:`trading_core.decision.decide_bar` (Hamilton) and the backtest kernel both call
:func:`decide_core`, so the two can never decide differently. It lives in the risk package
because it is the pre-trade gate built on the risk kernel; the semantics are documented in
:mod:`trading_core.decision`.
"""

import math
from enum import StrEnum
from typing import Final

import numba
import numpy as np
import numpy.typing as npt

from trading_core.costs.kernel import (
    C_FEE_BPS,
    C_MIN_EDGE_BPS,
    K_TOTAL,
    N_COST_COMPONENTS,
    round_trip_costs_at,
    slippage_bps,
)
from trading_core.risk.kernel import (
    L_MAX_NOTIONAL_USD,
    L_MAX_POSITION_PCT,
    check_order,
    size_position_qty,
)
from trading_core.risk.reasons import R_MAX_NOTIONAL, R_MAX_POSITION, R_NONE
from trading_core.types import REGIME_CODES, Regime


class DecisionReason(StrEnum):
    """The main reason of a decision (the first entry of ``Decision.reasons``). Order matters:
    the members from OPENED on are the ones that send an order (before the risk check)."""

    DATA_INVALID = "data_invalid"
    ILLIQUID = "illiquid"
    CONSENSUS_HOLD = "consensus_hold"
    POSITION_HELD = "position_held"
    POSITION_RENEWED = "position_renewed"
    SHORT_NOT_ALLOWED = "short_not_allowed"
    COST_UNAVAILABLE = "cost_unavailable"
    EDGE_BELOW_COST = "edge_below_cost"
    RISK_DENIED = "risk_denied"
    OPENED = "opened"
    FLIPPED = "flipped"
    CLOSED_OPPOSITE_SIGNAL = "closed_opposite_signal"
    CLOSED_HOLDING_ELAPSED = "closed_holding_elapsed"


REASON_BY_CODE: Final[tuple[DecisionReason, ...]] = tuple(DecisionReason)
_CODE: Final[dict[DecisionReason, int]] = {r: i for i, r in enumerate(REASON_BY_CODE)}
DR_DATA_INVALID: Final = _CODE[DecisionReason.DATA_INVALID]
DR_ILLIQUID: Final = _CODE[DecisionReason.ILLIQUID]
DR_CONSENSUS_HOLD: Final = _CODE[DecisionReason.CONSENSUS_HOLD]
DR_POSITION_HELD: Final = _CODE[DecisionReason.POSITION_HELD]
DR_POSITION_RENEWED: Final = _CODE[DecisionReason.POSITION_RENEWED]
DR_SHORT_NOT_ALLOWED: Final = _CODE[DecisionReason.SHORT_NOT_ALLOWED]
DR_COST_UNAVAILABLE: Final = _CODE[DecisionReason.COST_UNAVAILABLE]
DR_EDGE_BELOW_COST: Final = _CODE[DecisionReason.EDGE_BELOW_COST]
DR_RISK_DENIED: Final = _CODE[DecisionReason.RISK_DENIED]
DR_OPENED: Final = _CODE[DecisionReason.OPENED]
DR_FLIPPED: Final = _CODE[DecisionReason.FLIPPED]
DR_CLOSED_OPPOSITE: Final = _CODE[DecisionReason.CLOSED_OPPOSITE_SIGNAL]
DR_CLOSED_HOLDING: Final = _CODE[DecisionReason.CLOSED_HOLDING_ELAPSED]

ILLIQUID_CODE: Final = REGIME_CODES[Regime.ILLIQUID]

# Layout of decide_core's output.
D_ORDER_QTY: Final = 0
D_REASON: Final = 1
D_DENIAL: Final = 2
D_LIMITED_BY: Final = 3
D_EDGE: Final = 4
D_BARS_HELD: Final = 5
D_PRICE_ADJUST_BPS: Final = 6
D_FEE_BPS: Final = 7
D_COSTS: Final = 8
# 1.0 when the live book's levels priced the slippage (of the order, else of the estimate)
D_SLIPPAGE_FROM_BOOK: Final = D_COSTS + N_COST_COMPONENTS
N_DECISION: Final = D_SLIPPAGE_FROM_BOOK + 1


def reason_from_code(code: int) -> DecisionReason:
    if not 0 <= code < len(REASON_BY_CODE):
        raise ValueError(f"decision reason code {code!r}; allowed: 0..{len(REASON_BY_CODE) - 1}")
    return REASON_BY_CODE[code]


@numba.njit(cache=True, error_model="numpy")
def _sign(x: float) -> int:
    return 1 if x > 0.0 else (-1 if x < 0.0 else 0)


@numba.njit(cache=True, error_model="numpy")
def _hold_or_close(position_qty: float, elapsed: bool, illiquid: bool) -> tuple[float, int]:
    if elapsed:
        return -position_qty, DR_CLOSED_HOLDING
    if position_qty != 0.0:
        return 0.0, DR_POSITION_HELD
    return 0.0, DR_ILLIQUID if illiquid else DR_CONSENSUS_HOLD


@numba.njit(cache=True, error_model="numpy")
def _open_from_flat(
    want: int, worth_opening: bool, cost_known: bool, can_open: bool, open_qty: float
) -> tuple[float, int]:
    if not can_open:
        return 0.0, DR_SHORT_NOT_ALLOWED
    if not cost_known:
        return 0.0, DR_COST_UNAVAILABLE
    if not worth_opening:
        return 0.0, DR_EDGE_BELOW_COST
    return want * open_qty, DR_OPENED


@numba.njit(cache=True, error_model="numpy")
def _intent(
    want: int,
    position_qty: float,
    held: int,
    holding_bars: int,
    worth_opening: bool,
    cost_known: bool,
    can_open: bool,
    open_qty: float,
    illiquid: bool,
) -> tuple[float, int, bool]:
    """(signed order qty before risk, reason code, renew) from the position rules."""
    side = _sign(position_qty)
    if want == 0 or (want == side and not worth_opening):
        order, reason = _hold_or_close(position_qty, side != 0 and held >= holding_bars, illiquid)
    elif want == side:
        order, reason = 0.0, DR_POSITION_RENEWED
    elif side != 0:
        flip = worth_opening and can_open
        order = -position_qty + want * open_qty if flip else -position_qty
        reason = DR_FLIPPED if flip else DR_CLOSED_OPPOSITE
    else:
        order, reason = _open_from_flat(want, worth_opening, cost_known, can_open, open_qty)
    return order, reason, reason == DR_POSITION_RENEWED


@numba.njit(cache=True, error_model="numpy")
def decide_core(
    action: int,
    confidence: float,
    score: float,
    regime: int,
    data_valid: bool,
    expected_return_bps: float,
    price: float,
    atr: float,
    volatility_bps: float,
    bar_volume: float,
    half_spread_bps: float,
    position_qty: float,
    bars_held: int,
    equity_usd: float,
    other_gross_usd: float,
    n_open_other: int,
    orders_last_minute: int,
    loss_state: int,
    kill_switch: bool,
    holding_bars: int,
    holding_hours: float,
    allow_short: bool,
    costs: npt.NDArray[np.float64],
    limits: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
    asks: npt.NDArray[np.float64],
    bids: npt.NDArray[np.float64],
) -> None:
    """One decision; writes the ``D_*`` layout of ``out`` (see :mod:`trading_core.decision`).

    ``asks``/``bids``: the live book's levels (rows of price, size; best first), zero rows
    when there is no book: slippage is then the square-root law (``costs.kernel``)."""
    out[:] = 0.0
    out[D_BARS_HELD] = bars_held + 1 if position_qty != 0.0 else 0
    out[D_FEE_BPS] = costs[C_FEE_BPS]
    if not data_valid:
        out[D_REASON] = DR_DATA_INVALID
        return
    illiquid = regime == ILLIQUID_CODE
    want = 0 if illiquid else action
    direction = want if want != 0 else _sign(score)
    out[D_EDGE] = expected_return_bps * direction
    open_qty = size_position_qty(equity_usd, atr, limits)
    sized_by = R_NONE
    if price > 0.0:
        position_cap = limits[L_MAX_POSITION_PCT] * 0.01 * equity_usd / price
        notional_cap = limits[L_MAX_NOTIONAL_USD] / price
        if open_qty > min(position_cap, notional_cap):
            sized_by = R_MAX_POSITION if position_cap <= notional_cap else R_MAX_NOTIONAL
            open_qty = max(min(position_cap, notional_cap), 0.0)
    mid = 0.5 * (asks[0, 0] + bids[0, 0]) if asks.shape[0] > 0 and bids.shape[0] > 0 else price
    slip_open, from_book = slippage_bps(
        open_qty, bar_volume, volatility_bps, costs, asks if direction >= 0 else bids, mid
    )
    out[D_SLIPPAGE_FROM_BOOK] = 1.0 if from_book else 0.0
    costs_rt = round_trip_costs_at(slip_open, half_spread_bps, holding_hours, costs)
    for k in range(N_COST_COMPONENTS):
        out[D_COSTS + k] = costs_rt[k]
    total = costs_rt[K_TOTAL]
    worth = out[D_EDGE] - total >= costs[C_MIN_EDGE_BPS]
    order, reason, renew = _intent(
        want,
        position_qty,
        int(out[D_BARS_HELD]),
        holding_bars,
        worth,
        not math.isnan(total),
        allow_short or want > 0,
        open_qty,
        illiquid,
    )
    out[D_REASON] = reason
    if renew:
        out[D_BARS_HELD] = 0
    if reason < DR_OPENED:  # the reasons from OPENED on send an order
        return
    approved, denial, limited_by = check_order(
        float(_sign(order)),
        abs(order),
        price,
        position_qty,
        confidence,
        equity_usd,
        other_gross_usd,
        n_open_other,
        orders_last_minute,
        loss_state,
        kill_switch,
        False,  # not a flatten: the state alone decides (HALTED/killed: the reducing part)
        limits,
    )
    out[D_DENIAL] = denial
    out[D_LIMITED_BY] = limited_by
    if approved <= 0.0:
        out[D_REASON] = DR_RISK_DENIED
        return
    if reason == DR_FLIPPED and approved <= abs(position_qty):
        out[D_REASON] = DR_CLOSED_OPPOSITE
    opens = approved > abs(position_qty) or position_qty * order > 0.0
    if out[D_LIMITED_BY] == R_NONE and opens:
        out[D_LIMITED_BY] = sized_by
    slippage, from_book = slippage_bps(
        approved, bar_volume, volatility_bps, costs, asks if order > 0.0 else bids, mid
    )
    out[D_SLIPPAGE_FROM_BOOK] = 1.0 if from_book else 0.0
    if not math.isfinite(slippage):
        # a bar that traded nothing (real candles have zero-volume hours) cannot price or fill
        # an order, closing ones included: it waits for a bar with volume instead of filling
        # at an infinite price (which turned a key's equity into NaN)
        out[D_REASON] = DR_COST_UNAVAILABLE
        return
    out[D_ORDER_QTY] = _sign(order) * approved
    out[D_PRICE_ADJUST_BPS] = half_spread_bps + slippage
