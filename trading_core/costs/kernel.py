"""Jitted scalar cost formulas shared by the Python API, the decision step and the backtest kernel.

One implementation, compiled once by numba (``cache=True``), so the cost a backtest charges is
bit-for-bit the cost the execution service estimates. Parameters travel as a float64 array in
the layout named by the ``C_*`` indices (built by :meth:`CostParams.as_array`).

Slippage is the square-root market-impact law (Almgren, Thum, Hauptmann and Li 2005, "Direct
Estimation of Equity Market Impact"; Kyle and Obizhaeva 2016, "Market Microstructure
Invariance"): impact grows with volatility times the square root of the order's share of
traded volume. Here the order is worked at ``participation_rate`` of the bar's volume, so it
needs ``T = qty / (participation_rate x bar_volume)`` bars, and the one-way slippage is

    slippage_bps = impact_factor x volatility_bps x sqrt(qty / (participation_rate x bar_volume))

with ``volatility_bps`` the standard deviation of one bar's return and qty, volume both in base
units. An order of exactly one bar's worth at the target participation costs
``impact_factor x volatility_bps``.

Where a live order book's levels are known (Hamilton with a streaming feed), an order the
visible levels can fill is priced by walking them instead (:func:`book_walk_bps`: the
volume-weighted price of taking ``qty`` beyond the touch, in bps of mid); an order larger than
the visible depth, or one with no book (history, the backtest), keeps the square-root law.
"""

import math
from typing import Final

import numba
import numpy as np
import numpy.typing as npt

C_FEE_BPS: Final = 0
C_FUNDING_BPS_PER_8H: Final = 1
C_IMPACT_FACTOR: Final = 2
C_PARTICIPATION_RATE: Final = 3
C_SAFETY_BPS: Final = 4
C_MIN_EDGE_BPS: Final = 5
N_COST_PARAMS: Final = 6

# Order of the components returned by round_trip_costs.
K_FEE: Final = 0
K_SPREAD: Final = 1
K_SLIPPAGE: Final = 2
K_FUNDING: Final = 3
K_SAFETY: Final = 4
K_TOTAL: Final = 5
N_COST_COMPONENTS: Final = 6


@numba.njit(cache=True, error_model="numpy")
def sqrt_impact_bps(
    order_qty: float,
    bar_volume: float,
    volatility_bps: float,
    impact_factor: float,
    participation_rate: float,
) -> float:
    """One-way square-root slippage in bps; 0 for no order, +inf when the bar traded nothing."""
    if order_qty <= 0.0:
        return 0.0
    if not bar_volume > 0.0:
        return math.inf
    return impact_factor * volatility_bps * math.sqrt(order_qty / (participation_rate * bar_volume))


@numba.njit(cache=True, error_model="numpy")
def book_walk_bps(
    order_qty: float, prices: npt.NDArray[np.float64], sizes: npt.NDArray[np.float64], mid: float
) -> float:
    """One-way slippage beyond the touch of taking ``order_qty`` through the levels of one side
    (best first): (average fill price - best price) / mid in bps, >= 0; NaN when the levels
    cannot fill the order (or there are none)."""
    if order_qty <= 0.0:
        return 0.0
    if prices.size == 0 or not mid > 0.0:
        return math.nan
    left = order_qty
    paid = 0.0
    for i in range(prices.size):
        take = min(left, float(sizes[i]))
        if take > 0.0:
            paid += take * float(prices[i])
            left -= take
        if left <= 0.0:
            break
    if left > 1e-12 * order_qty:
        return math.nan
    return abs(paid / order_qty - float(prices[0])) / mid * 1e4


@numba.njit(cache=True, error_model="numpy")
def slippage_bps(
    order_qty: float,
    bar_volume: float,
    volatility_bps: float,
    params: npt.NDArray[np.float64],
    levels: npt.NDArray[np.float64],
    mid: float,
) -> tuple[float, bool]:
    """One-way slippage of ``order_qty`` and whether the book priced it: the walk of
    ``levels`` (rows of price, size; best first; zero rows: no book) where they can fill it,
    else the square-root law."""
    walk = book_walk_bps(order_qty, levels[:, 0], levels[:, 1], mid)
    if math.isfinite(walk):
        return walk, True
    impact = sqrt_impact_bps(
        order_qty, bar_volume, volatility_bps, params[C_IMPACT_FACTOR], params[C_PARTICIPATION_RATE]
    )
    return impact, False


@numba.njit(cache=True, error_model="numpy")
def round_trip_costs_at(
    slippage_one_way_bps: float,
    half_spread_bps: float,
    holding_hours: float,
    params: npt.NDArray[np.float64],
) -> tuple[float, float, float, float, float, float]:
    """:func:`round_trip_costs` with the one-way slippage already known."""
    fee = 2.0 * params[C_FEE_BPS]
    spread = 2.0 * half_spread_bps
    slippage_rt = 2.0 * slippage_one_way_bps
    funding = params[C_FUNDING_BPS_PER_8H] * holding_hours / 8.0
    safety = params[C_SAFETY_BPS]
    return fee, spread, slippage_rt, funding, safety, fee + spread + slippage_rt + funding + safety


@numba.njit(cache=True, error_model="numpy")
def round_trip_costs(
    order_qty: float,
    bar_volume: float,
    volatility_bps: float,
    half_spread_bps: float,
    holding_hours: float,
    params: npt.NDArray[np.float64],
) -> tuple[float, float, float, float, float, float]:
    """Round-trip (entry + exit) cost of a position of ``order_qty`` in bps of notional, as
    (fee, spread, slippage, funding, safety, total) - the ``K_*`` order.

    Fees, half-spread and slippage are paid on both legs; funding once over the holding time;
    the safety margin once per trade.
    """
    slippage = sqrt_impact_bps(
        order_qty,
        bar_volume,
        volatility_bps,
        params[C_IMPACT_FACTOR],
        params[C_PARTICIPATION_RATE],
    )
    return round_trip_costs_at(slippage, half_spread_bps, holding_hours, params)


@numba.njit(cache=True, error_model="numpy")
def funding_charge_usd(notional_usd: float, funding_bps_per_8h: float, hours: float) -> float:
    """Funding paid on ``|notional_usd|`` held for ``hours`` (always a cost: conservative)."""
    return abs(notional_usd) * funding_bps_per_8h * 1e-4 * hours / 8.0


@numba.njit(cache=True, error_model="numpy")
def fill_price_and_fee(
    order_qty: float, reference_price: float, price_adjust_bps: float, fee_bps: float
) -> tuple[float, float]:
    """Simulated fill: buys pay ``price_adjust_bps`` above the reference, sells receive below it;
    the fee is charged on the filled notional (vectorbt's convention: fee on the adjusted price).
    """
    side = 1.0 if order_qty > 0.0 else -1.0
    price = reference_price * (1.0 + side * price_adjust_bps * 1e-4)
    return price, abs(order_qty) * price * fee_bps * 1e-4
