"""Trading costs: venue fees, spread, square-root slippage, perp funding, safety margin."""

from trading_core.costs.model import (
    BookTop,
    CostBreakdown,
    CostInputs,
    CostParams,
    SpreadOrigin,
    edge_after_cost_bps,
    estimate_costs,
    passes_cost_check,
    resolve_spread_bps,
    resolve_spread_bps_array,
)

__all__ = [
    "BookTop",
    "CostBreakdown",
    "CostInputs",
    "CostParams",
    "SpreadOrigin",
    "edge_after_cost_bps",
    "estimate_costs",
    "passes_cost_check",
    "resolve_spread_bps",
    "resolve_spread_bps_array",
]
