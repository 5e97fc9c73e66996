"""What the engine does around its broker: the book of orders it sent, the kill switch's
flatten orders, and the reconcile that makes the exchange the truth of the risk state.

Pure functions and small records; the engine (:mod:`hamilton_exec.tick.hamilton_engine`) only wires
them.

* :class:`OrderBook` remembers every order sent until its final report, adds up its fills
  (the broker reports increments) and then yields an :class:`Execution`: what was asked, what
  filled at what average price and fee, why it ended (the reason code), and the cost the model
  expected against the cost realized (:func:`trading_core.costs.realized.realized_cost_bps`).
* :func:`flatten_orders`: one reduce-only market order per open position, for the kill switch.
* :func:`reconcile_state`: the exchange's cash and positions replace the risk state's; the
  difference (exchange minus expected) is the drift, per symbol and for cash.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from hamilton_exec.execution.brokers import (
    ExchangeSnapshot,
    OrderReport,
    OrderRequest,
    client_order_id,
)
from trading_core.costs import CostParams
from trading_core.costs.realized import realized_cost_bps
from trading_core.risk import Position, RiskState
from trading_core.risk.enforcer import epoch_ms

# below these the exchange and the books agree (float dust, cents)
QTY_TOLERANCE = 1e-9
CASH_TOLERANCE_USD = 0.01


@dataclass(frozen=True, slots=True)
class Execution:
    """One order from acceptance to its final status (a row of the Brain Library's
    ``order_executions``)."""

    client_order_id: str
    event_id: str
    symbol: str
    side: str
    order_type: str
    status: str
    reason_code: str
    requested_qty: float
    filled_qty: float
    avg_fill_price: float | None
    fee_usd: float
    reference_price: float
    expected_cost_bps: float
    realized_cost_bps: float | None
    realized_fee_bps: float | None
    realized_price_impact_bps: float | None
    updated_at: datetime
    detail: str = ""

    @property
    def cost_error_bps(self) -> float | None:
        if self.realized_cost_bps is None:
            return None
        return self.realized_cost_bps - self.expected_cost_bps

    def to_dict(self) -> dict[str, Any]:
        return {
            "client_order_id": self.client_order_id,
            "event_id": self.event_id,
            "symbol": self.symbol,
            "side": self.side,
            "order_type": self.order_type,
            "status": self.status,
            "reason_code": self.reason_code,
            "requested_qty": self.requested_qty,
            "filled_qty": self.filled_qty,
            "avg_fill_price": self.avg_fill_price,
            "fee_usd": self.fee_usd,
            "reference_price": self.reference_price,
            "expected_cost_bps": self.expected_cost_bps,
            "realized_cost_bps": self.realized_cost_bps,
            "realized_fee_bps": self.realized_fee_bps,
            "realized_price_impact_bps": self.realized_price_impact_bps,
            "updated_at": self.updated_at.isoformat(),
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Execution":
        return cls(**{**data, "updated_at": datetime.fromisoformat(str(data["updated_at"]))})


@dataclass
class _Sent:
    order: OrderRequest
    filled_qty: float = 0.0
    filled_value_usd: float = 0.0
    fee_usd: float = 0.0


@dataclass
class OrderBook:
    """Orders sent and not yet final, with their fills so far (see the module docstring)."""

    sent: dict[str, _Sent] = field(default_factory=dict)

    def add(self, order: OrderRequest) -> None:
        self.sent.setdefault(order.client_order_id, _Sent(order))

    def get(self, client_order_id: str) -> OrderRequest | None:
        known = self.sent.get(client_order_id)
        return known.order if known is not None else None

    def on_report(self, report: OrderReport) -> Execution | None:
        """Account for ``report``; the order's :class:`Execution` once it is final (None for
        an order this book never sent: the caller logs it, its fill still counts)."""
        known = self.sent.get(report.client_order_id)
        if known is None:
            return None
        if report.fill is not None:
            known.filled_qty += abs(report.fill.qty)
            known.filled_value_usd += abs(report.fill.qty) * report.fill.price
            known.fee_usd += report.fill.fee_usd
        if not report.final:
            return None
        del self.sent[report.client_order_id]
        return _execution(known, report)

    def to_dict(self) -> dict[str, Any]:
        return {
            cid: {
                "order": s.order.to_dict(),
                "filled_qty": s.filled_qty,
                "filled_value_usd": s.filled_value_usd,
                "fee_usd": s.fee_usd,
            }
            for cid, s in sorted(self.sent.items())
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "OrderBook":
        return cls(
            {
                str(cid): _Sent(
                    OrderRequest.from_dict(dict(s["order"])),
                    float(s["filled_qty"]),
                    float(s["filled_value_usd"]),
                    float(s["fee_usd"]),
                )
                for cid, s in data.items()
            }
        )


def _execution(known: _Sent, report: OrderReport) -> Execution:
    fill = report.fill
    when = fill.filled_at if fill is not None else datetime.now(UTC)
    order = known.order
    avg = known.filled_value_usd / known.filled_qty if known.filled_qty > 0.0 else None
    realized = None
    if avg is not None and order.reference_price > 0.0:
        realized = realized_cost_bps(
            side_sign=1.0 if order.signed_qty > 0 else -1.0,
            reference_price=order.reference_price,
            avg_fill_price=avg,
            filled_qty=known.filled_qty,
            fee_usd=known.fee_usd,
        )
    return Execution(
        client_order_id=order.client_order_id,
        event_id=order.event_id,
        symbol=order.symbol,
        side=order.side.value,
        order_type=order.order_type,
        status=report.status,
        reason_code=report.reason_code,
        requested_qty=abs(order.signed_qty),
        filled_qty=known.filled_qty,
        avg_fill_price=avg,
        fee_usd=known.fee_usd,
        reference_price=order.reference_price,
        expected_cost_bps=order.expected_cost_bps,
        realized_cost_bps=realized.total_bps if realized else None,
        realized_fee_bps=realized.fee_bps if realized else None,
        realized_price_impact_bps=realized.price_impact_bps if realized else None,
        updated_at=when,
        detail=report.detail,
    )


def flatten_orders(
    state: RiskState,
    now: datetime,
    cost_params: CostParams,
    *,
    skip: set[str] | frozenset[str] = frozenset(),
) -> list[OrderRequest]:
    """One reduce-only market order per open position (except ``skip``: a flatten already in
    flight), priced for a paper fill like any taker order (half the static spread + fee)."""
    moment_ms = epoch_ms(now)
    orders = []
    for symbol, position in sorted(state.positions.items()):
        if symbol in skip:
            continue
        orders.append(
            OrderRequest(
                client_order_id=client_order_id(symbol, moment_ms, "flatten", prefix="kil"),
                symbol=symbol,
                signed_qty=-position.qty,
                reference_price=position.mark_price,
                price_adjust_bps=cost_params.static_spread_bps / 2.0,
                fee_bps=cost_params.fee_bps,
                decided_at=now,
                reduce_only=True,
            )
        )
    return orders


@dataclass(frozen=True)
class ReconcileResult:
    state: RiskState
    drift: dict[str, float]  # exchange minus expected: base units per symbol, USD for "cash"
    drifted: bool


def reconcile_state(
    state: RiskState,
    snapshot: ExchangeSnapshot,
    symbols: Sequence[str],
    marks: Mapping[str, float],
    *,
    fresh_start: bool = False,
) -> ReconcileResult:
    """The exchange's cash and the positions of ``symbols`` become the state's; a position
    keeps its entry price when its side is unchanged, else it enters at the mark. On a
    ``fresh_start`` (no saved state) the day's starting equity is the reconciled equity, so
    the daily loss limit does not read the difference from the configured capital as a loss."""
    positions = dict(state.positions)
    drift: dict[str, float] = {}
    drifted = False
    for symbol in sorted(set(symbols) | set(state.positions)):
        expected = state.position_qty(symbol)
        actual = float(snapshot.positions.get(symbol, 0.0)) if symbol in symbols else expected
        drift[symbol] = actual - expected
        if abs(actual - expected) > QTY_TOLERANCE * max(1.0, abs(expected)):
            drifted = True
        if abs(actual) <= QTY_TOLERANCE:
            positions.pop(symbol, None)
            continue
        known = positions.get(symbol)
        mark = _mark(symbol, marks, snapshot, known)
        if mark is None:
            continue  # no price to value it: left as it was (logged by the caller's drift)
        if known is not None and known.qty * actual > 0.0:
            positions[symbol] = replace(known, qty=actual, mark_price=mark)
        else:
            positions[symbol] = Position(actual, mark, mark, 0)
    drift["cash"] = snapshot.cash_usd - state.cash_usd
    if abs(drift["cash"]) > CASH_TOLERANCE_USD:
        drifted = True
    new_state = replace(state, cash_usd=float(snapshot.cash_usd), positions=positions)
    if fresh_start:
        new_state = replace(new_state, day_start_equity_usd=new_state.equity_usd)
    return ReconcileResult(new_state, drift, drifted)


def _mark(
    symbol: str,
    marks: Mapping[str, float],
    snapshot: ExchangeSnapshot,
    known: Position | None,
) -> float | None:
    for candidate in (marks.get(symbol), snapshot.prices.get(symbol)):
        if candidate is not None and math.isfinite(candidate) and candidate > 0.0:
            return float(candidate)
    return known.mark_price if known is not None else None


__all__ = [
    "Execution",
    "OrderBook",
    "ReconcileResult",
    "flatten_orders",
    "reconcile_state",
]
