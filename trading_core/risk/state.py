"""The enforcer's immutable, serialisable state: cash, positions, the UTC day, order times.

Equity is ``cash + sum(qty x mark_price)`` (cash accounting: a buy spends cash, a short sale
receives it), which holds for spot and, as an approximation that ignores margin, for perps.
``trading_state`` is the day's loss state (it only worsens within a UTC day, and only a later
UTC day resets it); the kill switch (with the reason it was engaged for) is kept apart and
:attr:`RiskState.effective_state` combines the two.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from types import MappingProxyType
from typing import Any

from trading_core.risk.reasons import TradingState


@dataclass(frozen=True, slots=True)
class Position:
    """One coin's net position: ``qty`` > 0 long, < 0 short (base units)."""

    qty: float
    avg_entry_price: float
    mark_price: float
    bars_held: int = 0

    def __post_init__(self) -> None:
        if not math.isfinite(self.qty) or self.qty == 0.0:
            raise ValueError(f"position qty {self.qty!r} must be finite and non-zero")
        for name in ("avg_entry_price", "mark_price"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"position {name}={value!r} must be a finite price > 0")
        if self.bars_held < 0:
            raise ValueError(f"bars_held={self.bars_held!r} must be >= 0")

    @property
    def notional_usd(self) -> float:
        """Signed value at the mark price."""
        return self.qty * self.mark_price


@dataclass(frozen=True, slots=True)
class RiskState:
    """Everything the enforcer needs to remember between bars (Hamilton persists it)."""

    cash_usd: float
    day: date
    day_start_equity_usd: float
    positions: Mapping[str, Position] = field(default_factory=dict)
    recent_order_times_ms: tuple[int, ...] = ()
    trading_state: TradingState = TradingState.ACTIVE
    kill_switch: bool = False
    kill_reason: str = ""

    def __post_init__(self) -> None:
        if not math.isfinite(self.cash_usd):
            raise ValueError(f"cash_usd={self.cash_usd!r} must be finite")
        if not math.isfinite(self.day_start_equity_usd):
            raise ValueError(f"day_start_equity_usd={self.day_start_equity_usd!r} must be finite")
        if list(self.recent_order_times_ms) != sorted(self.recent_order_times_ms):
            raise ValueError("recent_order_times_ms must be ascending")
        object.__setattr__(self, "positions", MappingProxyType(dict(self.positions)))

    @property
    def equity_usd(self) -> float:
        return self.cash_usd + sum(p.notional_usd for p in self.positions.values())

    @property
    def effective_state(self) -> TradingState:
        return TradingState.HALTED if self.kill_switch else self.trading_state

    def position_qty(self, symbol: str) -> float:
        position = self.positions.get(symbol)
        return position.qty if position else 0.0

    def gross_notional_usd(self, *, excluding: str | None = None) -> float:
        return sum(abs(p.notional_usd) for s, p in self.positions.items() if s != excluding)

    def with_position(self, symbol: str, position: Position | None) -> "RiskState":
        """A copy with ``symbol``'s position replaced (``None`` removes it)."""
        positions = {s: p for s, p in self.positions.items() if s != symbol}
        if position is not None:
            positions[symbol] = position
        return replace(self, positions=positions)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; :meth:`from_dict` restores an equal state."""
        return {
            "cash_usd": self.cash_usd,
            "day": self.day.isoformat(),
            "day_start_equity_usd": self.day_start_equity_usd,
            "positions": {
                symbol: {
                    "qty": p.qty,
                    "avg_entry_price": p.avg_entry_price,
                    "mark_price": p.mark_price,
                    "bars_held": p.bars_held,
                }
                for symbol, p in sorted(self.positions.items())
            },
            "recent_order_times_ms": list(self.recent_order_times_ms),
            "trading_state": self.trading_state.value,
            "kill_switch": self.kill_switch,
            "kill_reason": self.kill_reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RiskState":
        """Inverse of :meth:`to_dict`; raises ValueError naming a missing or bad key."""
        required = ("cash_usd", "day", "day_start_equity_usd", "trading_state")
        missing = [key for key in required if key not in data]
        if missing:
            raise ValueError(f"risk state is missing keys {missing}; required: {list(required)}")
        try:
            state = TradingState(data["trading_state"])
        except ValueError:
            allowed = [s.value for s in TradingState]
            raise ValueError(
                f"trading_state {data['trading_state']!r}; allowed: {allowed}"
            ) from None
        return cls(
            cash_usd=float(data["cash_usd"]),
            day=date.fromisoformat(data["day"]),
            day_start_equity_usd=float(data["day_start_equity_usd"]),
            positions={
                str(symbol): Position(
                    qty=float(p["qty"]),
                    avg_entry_price=float(p["avg_entry_price"]),
                    mark_price=float(p["mark_price"]),
                    bars_held=int(p.get("bars_held", 0)),
                )
                for symbol, p in dict(data.get("positions") or {}).items()
            },
            recent_order_times_ms=tuple(int(t) for t in data.get("recent_order_times_ms", ())),
            trading_state=state,
            kill_switch=bool(data.get("kill_switch", False)),
            kill_reason=str(data.get("kill_reason") or ""),
        )
