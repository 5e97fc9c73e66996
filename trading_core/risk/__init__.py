"""Risk presets and the one enforcer shared by the backtest and Hamilton."""

from trading_core.risk.enforcer import Fill, OrderIntent, RiskEnforcer, RiskVerdict
from trading_core.risk.limits import RiskLimits
from trading_core.risk.reasons import DenialReason, TradingState
from trading_core.risk.state import Position, RiskState

__all__ = [
    "DenialReason",
    "Fill",
    "OrderIntent",
    "Position",
    "RiskEnforcer",
    "RiskLimits",
    "RiskState",
    "RiskVerdict",
    "TradingState",
]
