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
    fee = 2.0 * params[C_FEE_BPS]
    spread = 2.0 * half_spread_bps
    slippage_rt = 2.0 * slippage
    funding = params[C_FUNDING_BPS_PER_8H] * holding_hours / 8.0
    safety = params[C_SAFETY_BPS]
    return fee, spread, slippage_rt, funding, safety, fee + spread + slippage_rt + funding + safety


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
