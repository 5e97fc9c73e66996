"""What one fill actually cost, in the cost model's units (bps of the filled notional).

The cost model (:mod:`trading_core.costs.model`) charges each simulated fill one leg: a fee of
``one_way_fee_bps`` of the filled notional, and a price ``one_way_price_bps`` (half-spread +
slippage) worse than the reference price (``kernel.fill_price_and_fee``). A real or paper fill
is measured the same way, against the decision's reference price (the bar close):

    price_impact_bps = side_sign x (avg_fill_price - reference_price) / reference_price x 1e4
    fee_bps          = fee_usd / (filled_qty x avg_fill_price) x 1e4
    total_bps        = price_impact_bps + fee_bps

so a fill made by ``fill_price_and_fee(q, p, adjust_bps, fee_bps)`` at reference ``p`` realizes
exactly ``adjust_bps + fee_bps``. A positive impact is a cost (a buy filled above, a sell below
the reference); a negative one is price improvement. A negative fee is a maker rebate.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RealizedCost:
    """One fill's cost in bps of its notional: fee plus price impact (spread + slippage)."""

    total_bps: float
    fee_bps: float
    price_impact_bps: float


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}={value!r} must be a finite number > 0")
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name}={value!r} must be a finite number > 0")
    return float(value)


def realized_cost_bps(
    *,
    side_sign: float,
    reference_price: float,
    avg_fill_price: float,
    filled_qty: float,
    fee_usd: float,
) -> RealizedCost:
    """The realized cost of a fill (see the module docstring).

    ``side_sign`` is +1 for a buy and -1 for a sell; prices and ``filled_qty`` (base units,
    unsigned) must be finite and > 0; ``fee_usd`` finite (negative: a rebate). A ValueError
    quotes the bad value.
    """
    if side_sign not in (1.0, -1.0) or isinstance(side_sign, bool):
        raise ValueError(f"side_sign={side_sign!r} must be +1 (buy) or -1 (sell)")
    reference = _positive("reference_price", reference_price)
    price = _positive("avg_fill_price", avg_fill_price)
    qty = _positive("filled_qty", filled_qty)
    if isinstance(fee_usd, bool) or not isinstance(fee_usd, int | float):
        raise ValueError(f"fee_usd={fee_usd!r} must be a finite number")
    if not math.isfinite(fee_usd):
        raise ValueError(f"fee_usd={fee_usd!r} must be a finite number")
    notional = qty * price
    if not (math.isfinite(notional) and notional > 0.0):
        raise ValueError(
            f"filled notional {qty!r} x {price!r} = {notional!r} must be finite and > 0"
        )
    impact = float(side_sign) * (price - reference) / reference * 1e4
    fee = float(fee_usd) / notional * 1e4
    return RealizedCost(total_bps=impact + fee, fee_bps=fee, price_impact_bps=impact)


def cost_error_bps(expected_bps: float, realized: RealizedCost) -> float:
    """How much more the fill cost than the model expected (negative: it cost less)."""
    if isinstance(expected_bps, bool) or not isinstance(expected_bps, int | float):
        raise ValueError(f"expected_bps={expected_bps!r} must be a finite number")
    if not math.isfinite(expected_bps):
        raise ValueError(f"expected_bps={expected_bps!r} must be a finite number")
    return realized.total_bps - float(expected_bps)
