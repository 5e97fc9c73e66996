"""Realised PnL per trade, attributed to the engines that backed its entry.

When a fill reduces or closes a position, the realised PnL of the closed part (price move minus
the fill's fee) is split among the engines in proportion to their weighted support of the
entry's side on the entry bar (``weight x signal`` in the trade's direction, from the
consensus); engines against the trade get nothing. The closed part is linked to the decision
that opened the position (its event id) as a trade outcome.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hamilton_exec.accounting.event_store import Outcome
from trading_core.brain import decision_event_id
from trading_core.engines import ENGINE_NAMES
from trading_core.events import DecisionEvent
from trading_core.risk import Fill, Position

FloatArray = npt.NDArray[np.float64]


@dataclass
class OpenTrade:
    """The entry of a symbol's open position: its event id, regime and engine shares."""

    event_id: str
    regime: str
    shares: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "regime": self.regime, "shares": self.shares}


def engine_shares(weights: FloatArray, signals: FloatArray, side: float) -> dict[str, float]:
    """Each engine's share of the weighted support for ``side`` (+1 long, -1 short)."""
    support = np.clip(np.asarray(weights) * np.asarray(signals) * side, 0.0, None)
    total = float(support.sum())
    if total <= 0.0:
        return {}
    return {n: float(s / total) for n, s in zip(ENGINE_NAMES, support, strict=True) if s > 0}


@dataclass
class TradeLedger:
    """Open trades per symbol, entries waiting for their fill, and the cumulative attributed
    PnL per (engine, symbol, regime)."""

    open_trades: dict[str, OpenTrade] = field(default_factory=dict)
    pending_entries: dict[str, OpenTrade] = field(default_factory=dict)
    engine_pnl_usd: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def on_order(
        self, event: DecisionEvent, weights: FloatArray, signals: FloatArray, *, shadow: bool
    ) -> None:
        """Remember the decision behind an order: it becomes the trade's entry if the fill
        opens (or flips into) a position."""
        side = 1.0 if event.action == "buy" else -1.0
        self.pending_entries[event.symbol] = OpenTrade(
            decision_event_id(event, shadow=shadow),
            event.regime,
            engine_shares(weights, signals, side),
        )

    def cancel_entry(self, symbol: str, event_id: str) -> None:
        """The order of ``event_id`` ended without (more) fills: it opens nothing later."""
        entry = self.pending_entries.get(symbol)
        if entry is not None and entry.event_id == event_id:
            del self.pending_entries[symbol]

    def on_fill(
        self, fill: Fill, before: Position | None, after: Position | None
    ) -> Outcome | None:
        """Account for ``fill`` (positions before and after it); an outcome when it closed
        some of an open trade."""
        entry = self.pending_entries.pop(fill.symbol, None)
        trade = self.open_trades.get(fill.symbol)
        outcome = None
        if before is not None and trade is not None and before.qty * fill.qty < 0:
            outcome = self._close(fill, before, trade)
        if after is None:
            self.open_trades.pop(fill.symbol, None)
        elif entry is not None and (before is None or before.qty * after.qty < 0):
            self.open_trades[fill.symbol] = entry
        return outcome

    def _close(self, fill: Fill, before: Position, trade: OpenTrade) -> Outcome:
        closed = min(abs(before.qty), abs(fill.qty))
        pnl = closed * (fill.price - before.avg_entry_price) * float(np.sign(before.qty))
        fee = fill.fee_usd * closed / abs(fill.qty)
        pnl -= fee
        for engine, share in trade.shares.items():
            key = (engine, fill.symbol, trade.regime)
            self.engine_pnl_usd[key] = self.engine_pnl_usd.get(key, 0.0) + share * pnl
        return Outcome(
            trade.event_id,
            fill.price,
            pnl,
            fee,
            fill.filled_at,
            {"closed_qty": closed, "entry_price": before.avg_entry_price},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "open_trades": {s: t.to_dict() for s, t in self.open_trades.items()},
            "pending_entries": {s: t.to_dict() for s, t in self.pending_entries.items()},
            "engine_pnl_usd": [[*k, v] for k, v in sorted(self.engine_pnl_usd.items())],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TradeLedger":
        return cls(
            {s: OpenTrade(**t) for s, t in dict(data.get("open_trades") or {}).items()},
            {s: OpenTrade(**t) for s, t in dict(data.get("pending_entries") or {}).items()},
            {(e, s, r): float(v) for e, s, r, v in data.get("engine_pnl_usd") or []},
        )
