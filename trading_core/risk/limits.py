"""Risk limits of the active preset plus the account-wide risk settings, as one frozen object."""

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trading_core.config.models import RiskPresetsSection, RiskSection
from trading_core.risk import kernel

DEFAULT_MIN_ORDER_NOTIONAL_USD = 5.0  # Binance spot's usual MIN_NOTIONAL filter


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Every limit the enforcer applies. Percentages are 0..100 (``1.0`` means 1 %)."""

    preset: str
    per_trade_risk_pct: float
    daily_loss_limit_pct: float
    max_leverage: float
    min_confidence: float
    stop_atr_multiple: float
    max_position_pct: float
    max_notional_per_order_usd: float
    max_orders_per_minute: int
    max_concurrent_trades: int
    reducing_at_loss_fraction: float
    min_order_notional_usd: float = DEFAULT_MIN_ORDER_NOTIONAL_USD

    def __post_init__(self) -> None:
        positive = (
            "per_trade_risk_pct",
            "daily_loss_limit_pct",
            "max_leverage",
            "stop_atr_multiple",
            "max_position_pct",
            "max_notional_per_order_usd",
            "max_orders_per_minute",
            "max_concurrent_trades",
        )
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value!r} must be a finite number > 0")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence={self.min_confidence!r} must be in [0, 1]")
        if not 0.0 < self.reducing_at_loss_fraction <= 1.0:
            raise ValueError(
                f"reducing_at_loss_fraction={self.reducing_at_loss_fraction!r} must be in (0, 1]"
            )
        if not (math.isfinite(self.min_order_notional_usd) and self.min_order_notional_usd >= 0):
            raise ValueError(f"min_order_notional_usd={self.min_order_notional_usd!r} must be >= 0")

    @classmethod
    def from_config(
        cls,
        presets: RiskPresetsSection,
        risk: RiskSection,
        *,
        max_concurrent_trades: int,
        preset: str | None = None,
        min_order_notional_usd: float = DEFAULT_MIN_ORDER_NOTIONAL_USD,
    ) -> "RiskLimits":
        """Limits of ``preset`` (default ``risk.preset``); ``max_concurrent_trades`` comes from
        ``engine.max_concurrent_trades``."""
        name = preset or risk.preset
        chosen = presets.get(name)
        return cls(
            preset=name,
            per_trade_risk_pct=chosen.per_trade_risk_pct,
            daily_loss_limit_pct=chosen.daily_loss_limit_pct,
            max_leverage=chosen.max_leverage,
            min_confidence=chosen.min_confidence,
            stop_atr_multiple=risk.stop_atr_multiple,
            max_position_pct=risk.max_position_pct,
            max_notional_per_order_usd=risk.max_notional_per_order_usd,
            max_orders_per_minute=risk.max_orders_per_minute,
            max_concurrent_trades=max_concurrent_trades,
            reducing_at_loss_fraction=risk.reducing_at_loss_fraction,
            min_order_notional_usd=min_order_notional_usd,
        )

    def as_array(self) -> npt.NDArray[np.float64]:
        """The numba kernels' parameter layout (``kernel.L_*``)."""
        values = np.zeros(kernel.N_LIMITS, dtype=np.float64)
        values[kernel.L_RISK_PCT] = self.per_trade_risk_pct
        values[kernel.L_DAILY_LOSS_PCT] = self.daily_loss_limit_pct
        values[kernel.L_MAX_LEVERAGE] = self.max_leverage
        values[kernel.L_MIN_CONFIDENCE] = self.min_confidence
        values[kernel.L_STOP_ATR_MULTIPLE] = self.stop_atr_multiple
        values[kernel.L_MAX_POSITION_PCT] = self.max_position_pct
        values[kernel.L_MAX_NOTIONAL_USD] = self.max_notional_per_order_usd
        values[kernel.L_MAX_ORDERS_PER_MINUTE] = self.max_orders_per_minute
        values[kernel.L_MAX_CONCURRENT] = self.max_concurrent_trades
        values[kernel.L_REDUCING_FRACTION] = self.reducing_at_loss_fraction
        values[kernel.L_MIN_NOTIONAL_USD] = self.min_order_notional_usd
        return values
