"""Trading costs: venue fees, spread, square-root slippage, perp funding, safety margin."""

from trading_core.costs.model import (
    BookStatus,
    BookTop,
    CostBreakdown,
    CostInputs,
    CostParams,
    SpreadChoice,
    SpreadOrigin,
    edge_after_cost_bps,
    estimate_costs,
    passes_cost_check,
    resolve_spread_bps,
    resolve_spread_bps_array,
)
from trading_core.costs.realized import RealizedCost, cost_error_bps, realized_cost_bps

__all__ = [
    "BookStatus",
    "BookTop",
    "CostBreakdown",
    "CostInputs",
    "CostParams",
    "RealizedCost",
    "SpreadChoice",
    "SpreadOrigin",
    "cost_error_bps",
    "edge_after_cost_bps",
    "estimate_costs",
    "passes_cost_check",
    "realized_cost_bps",
    "resolve_spread_bps",
    "resolve_spread_bps_array",
]
