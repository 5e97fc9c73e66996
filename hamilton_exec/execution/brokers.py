"""Brokers: where an approved decision becomes an order, behind one :class:`Broker` protocol.

The engine never blocks on a broker: :meth:`Broker.submit` only accepts (or refuses before
sending) and returns at once; what happens next (fills, partial fills, cancels, refusals by the
exchange) arrives as :class:`OrderReport` objects from :meth:`Broker.drain`, which the engine
reads at the start of every tick. A fill report carries the INCREMENT filled since the previous
report of that order.

* :class:`PaperBroker` fills an order at the NEXT bar's open with the cost model's half-spread,
  slippage and fee (``trading_core.costs.kernel.fill_price_and_fee``, the function the backtest
  and ``paper_fill`` use), so a paper run and the backtest fill alike.
* :class:`hamilton_exec.execution.live_broker.CcxtBroker` sends orders through ccxt off the tick
path.
"""

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from trading_core.costs.kernel import fill_price_and_fee
from trading_core.decision import BarInputs, Decision
from trading_core.observability.logging import get_logger
from trading_core.risk import Fill
from trading_core.types import Action

# pending: accepted, not final (may have partial fills); the other four are final
OrderStatus = Literal["pending", "filled", "canceled", "rejected", "expired"]
FINAL_STATUSES: frozenset[str] = frozenset({"filled", "canceled", "rejected", "expired"})
OrderType = Literal["market", "limit"]


def _log() -> Any:
    return get_logger(__name__)


def client_order_id(symbol: str, bar_open_ms: int, side: str, *, prefix: str = "ham") -> str:
    """The same decision always gets the same id (Binance allows 36 chars of [A-Za-z0-9_-])."""
    digest = hashlib.sha256(f"{symbol}|{bar_open_ms}|{side}".encode()).hexdigest()
    return f"{prefix}-{digest[:28]}"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An approved decision as an order: signed base quantity and how a paper fill is priced."""

    client_order_id: str
    symbol: str
    signed_qty: float
    reference_price: float
    price_adjust_bps: float
    fee_bps: float
    decided_at: datetime
    order_type: OrderType = "market"
    limit_price: float | None = None
    post_only: bool = False
    reduce_only: bool = False  # closes only (the kill switch's flatten orders)
    event_id: str = ""  # the DecisionEvent this order carries out ("" for a flatten)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.signed_qty) and self.signed_qty != 0.0):
            raise ValueError(f"order {self.client_order_id}: signed_qty {self.signed_qty!r}")
        price = self.limit_price
        if self.order_type == "limit" and not (
            price is not None and math.isfinite(price) and price > 0
        ):
            raise ValueError(
                f"order {self.client_order_id}: a limit order needs a limit_price > 0, "
                f"got {self.limit_price!r}"
            )
        if self.post_only and self.order_type != "limit":
            raise ValueError(f"order {self.client_order_id}: post_only needs order_type 'limit'")

    @property
    def side(self) -> Action:
        return Action.BUY if self.signed_qty > 0 else Action.SELL

    @property
    def expected_cost_bps(self) -> float:
        """What the cost model expected this order to cost (half-spread + slippage + fee)."""
        return self.price_adjust_bps + self.fee_bps

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "decided_at": self.decided_at.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OrderRequest":
        return cls(**{**data, "decided_at": datetime.fromisoformat(data["decided_at"])})


def order_request(
    decision: Decision,
    inputs: BarInputs,
    *,
    event_id: str = "",
    order_type: OrderType = "market",
    post_only: bool = False,
) -> OrderRequest:
    """The order of an approved (non-hold) decision on the bar ``inputs`` describes. A limit
    order rests at the decision's reference price (the bar's close): with ``post_only`` a
    maker order, priced by the cost model's maker fee."""
    return OrderRequest(
        client_order_id=client_order_id(
            decision.symbol, int(inputs.timestamp.timestamp() * 1000), decision.action.value
        ),
        symbol=decision.symbol,
        signed_qty=decision.signed_qty,
        reference_price=inputs.price,
        price_adjust_bps=decision.fill_price_adjust_bps,
        fee_bps=decision.fill_fee_bps,
        decided_at=inputs.decided_at,
        order_type=order_type,
        limit_price=inputs.price if order_type == "limit" else None,
        post_only=post_only,
        event_id=event_id,
    )


@dataclass(frozen=True, slots=True)
class OrderReport:
    """What happened to an order. ``fill`` is the increment filled since the order's previous
    report (None when nothing new filled); ``reason_code`` says why a final status other than
    ``filled`` was reached (``insufficient_balance``, ``filter_failure``, ``permission``,
    ``timeout``, ``kill_switch``, ...), for the DecisionEvent's outcome and the metrics."""

    client_order_id: str
    status: OrderStatus
    fill: Fill | None = None
    exchange_order_id: str | None = None
    detail: str = ""
    symbol: str = ""
    reason_code: str = ""
    event_id: str = ""
    expected_cost_bps: float | None = None
    reference_price: float | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True, slots=True)
class ExchangeSnapshot:
    """The venue's truth at ``taken_at``: quote cash, signed base positions per symbol (spot:
    the base balance; perps: the position), the open orders' client ids per symbol, and the
    measured exchange clock offset (exchange minus local, ms)."""

    cash_usd: float
    positions: Mapping[str, float]
    open_orders: Mapping[str, tuple[str, ...]]
    taken_at: datetime
    clock_offset_ms: int = 0
    prices: Mapping[str, float] = field(default_factory=dict)


class Broker(Protocol):
    """What the engine needs from a broker (paper or live); see the module docstring."""

    name: str

    def submit(self, order: OrderRequest) -> OrderReport:
        """Accept ``order`` (status ``pending``) or refuse it before sending (``rejected``
        with a reason code). Never blocks on the network, never raises for a refusal."""
        ...

    def on_bar_open(self, symbol: str, open_price: float, opened_at: datetime) -> None:
        """A new bar of ``symbol`` opened (the paper broker fills pending orders here)."""
        ...

    def drain(self) -> list[OrderReport]:
        """Reports produced since the previous call, in the order they happened."""
        ...

    def open_orders(self) -> tuple[OrderRequest, ...]:
        """Orders accepted and not yet final."""
        ...

    def cancel_all(self, reason: str) -> None:
        """Cancel every open order except reduce-only ones (a flatten in flight must finish:
        the kill switch sends them); reports follow through :meth:`drain`."""
        ...

    def snapshot(self, symbols: Sequence[str]) -> ExchangeSnapshot | None:
        """The venue's balances, positions and open orders (None: the broker's own books are
        the truth, as for paper)."""
        ...

    def to_dict(self) -> dict[str, Any]: ...

    def restore(self, data: Mapping[str, Any]) -> None: ...

    def close(self) -> None:
        """Stop background work (waits for orders in flight to reach a known state)."""
        ...


class PaperBroker:
    """Simulated fills at the next bar's open (the backtest's ``next_open`` fill rule)."""

    name = "paper"

    def __init__(self) -> None:
        self.pending: dict[str, OrderRequest] = {}
        self._reports: list[OrderReport] = []

    def submit(self, order: OrderRequest) -> OrderReport:
        known = self.pending.get(order.symbol)
        if known is not None and known.client_order_id != order.client_order_id:
            report = OrderReport(
                order.client_order_id,
                "rejected",
                symbol=order.symbol,
                reason_code="order_pending",
                detail=f"an order is already pending ({known.client_order_id})",
                event_id=order.event_id,
            )
            return report
        self.pending[order.symbol] = order
        return OrderReport(
            order.client_order_id, "pending", symbol=order.symbol, event_id=order.event_id
        )

    def on_bar_open(self, symbol: str, open_price: float, opened_at: datetime) -> None:
        report = self.fill_at_open(symbol, open_price, opened_at)
        if report is not None:
            self._reports.append(report)

    def fill_at_open(
        self, symbol: str, open_price: float, opened_at: datetime
    ) -> OrderReport | None:
        """Fill the symbol's pending order at this bar's open (None when nothing is pending)."""
        order = self.pending.pop(symbol, None)
        if order is None:
            return None
        price, fee = fill_price_and_fee(
            order.signed_qty, open_price, order.price_adjust_bps, order.fee_bps
        )
        fill = Fill(symbol, order.signed_qty, float(price), float(fee), opened_at)
        return OrderReport(
            order.client_order_id,
            "filled",
            fill,
            symbol=symbol,
            event_id=order.event_id,
            expected_cost_bps=order.expected_cost_bps,
            reference_price=order.reference_price,
        )

    def drain(self) -> list[OrderReport]:
        reports, self._reports = self._reports, []
        return reports

    def open_orders(self) -> tuple[OrderRequest, ...]:
        return tuple(self.pending[s] for s in sorted(self.pending))

    def cancel_all(self, reason: str) -> None:
        for symbol in sorted(self.pending):
            if self.pending[symbol].reduce_only:
                continue
            order = self.pending.pop(symbol)
            self._reports.append(
                OrderReport(
                    order.client_order_id,
                    "canceled",
                    symbol=symbol,
                    reason_code=reason,
                    event_id=order.event_id,
                )
            )

    def snapshot(self, symbols: Sequence[str]) -> ExchangeSnapshot | None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"pending": [o.to_dict() for o in self.pending.values()]}

    def restore(self, data: Mapping[str, Any]) -> None:
        self.pending = {
            o.symbol: o for o in (OrderRequest.from_dict(d) for d in data.get("pending", []))
        }

    def close(self) -> None:
        return None
