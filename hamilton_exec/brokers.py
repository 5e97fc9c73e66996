"""Brokers: where an approved decision becomes an order.

* :class:`PaperBroker` fills an order at the NEXT bar's open with the cost model's half-spread,
  slippage and fee (``trading_core.costs.kernel.fill_price_and_fee``, the function the backtest
  and ``paper_fill`` use), so a paper run and the backtest fill alike.
* :class:`CcxtBroker` sends market orders through a ccxt exchange with a deterministic client
  order id (:func:`client_order_id`): a retried submission carries the same id, and before any
  retry after an uncertain failure (a timeout: the order may have been accepted) the broker
  looks the id up on the exchange, so one decision can never open two positions. Only
  temporary errors (ccxt's ``OperationFailed`` family) are retried; anything else is
  :class:`ExchangePermanentError` at once. On start it reconciles open orders and balances.
"""

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import ccxt

from trading_core.costs.kernel import fill_price_and_fee
from trading_core.decision import BarInputs, Decision
from trading_core.errors import (
    ExchangePermanentError,
    ExchangeTemporaryError,
    OrderSubmitUncertainError,
)
from trading_core.observability.logging import get_logger
from trading_core.risk import Fill
from trading_core.types import Action

OrderStatus = Literal["pending", "filled", "rejected"]
MAX_BACKOFF_S: Final = 30.0


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

    @property
    def side(self) -> Action:
        return Action.BUY if self.signed_qty > 0 else Action.SELL

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "decided_at": self.decided_at.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OrderRequest":
        return cls(**{**data, "decided_at": datetime.fromisoformat(data["decided_at"])})


def order_request(decision: Decision, inputs: BarInputs) -> OrderRequest:
    """The order of an approved (non-hold) decision on the bar ``inputs`` describes."""
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
    )


@dataclass(frozen=True, slots=True)
class OrderReport:
    """What happened to an order; ``fill`` when it executed (now or at the next bar)."""

    client_order_id: str
    status: OrderStatus
    fill: Fill | None = None
    exchange_order_id: str | None = None
    detail: str = ""


class PaperBroker:
    """Simulated fills at the next bar's open (the backtest's ``next_open`` fill rule)."""

    name = "paper"

    def __init__(self) -> None:
        self.pending: dict[str, OrderRequest] = {}

    def submit(self, order: OrderRequest) -> OrderReport:
        known = self.pending.get(order.symbol)
        if known is not None and known.client_order_id != order.client_order_id:
            raise ValueError(
                f"{order.symbol}: an order is already pending ({known.client_order_id})"
            )
        self.pending[order.symbol] = order
        return OrderReport(order.client_order_id, "pending")

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
        return OrderReport(order.client_order_id, "filled", fill)

    def to_dict(self) -> dict[str, Any]:
        return {"pending": [o.to_dict() for o in self.pending.values()]}

    def restore(self, data: dict[str, Any]) -> None:
        self.pending = {
            o.symbol: o for o in (OrderRequest.from_dict(d) for d in data.get("pending", []))
        }


class CcxtBroker:
    """Market orders through ccxt with deterministic client order ids (module docstring)."""

    name = "ccxt"

    def __init__(
        self,
        client: Any,
        *,
        max_retries: int = 5,
        retry_backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.max_retries = max_retries
        self.retry_backoff_s = retry_backoff_s
        self._sleep = sleep

    def submit(self, order: OrderRequest) -> OrderReport:
        """Send ``order`` once, whatever the network does (see the module docstring)."""
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.create_order(
                    order.symbol,
                    "market",
                    order.side.value,
                    abs(order.signed_qty),
                    None,
                    {"clientOrderId": order.client_order_id},
                )
                return self._report(order, response)
            except ccxt.InvalidOrder as exc:
                found = self.lookup(order)  # e.g. "duplicate order": it was accepted before
                if found is not None:
                    return found
                raise ExchangePermanentError(f"{order.symbol} order refused: {exc}") from exc
            except ccxt.OperationFailed as exc:
                found = self.lookup(order)
                if found is not None:
                    _log().warning(
                        "order_found_after_error",
                        client_order_id=order.client_order_id,
                        error=type(exc).__name__,
                    )
                    return found
                if attempt == self.max_retries:
                    raise OrderSubmitUncertainError(
                        f"{order.symbol} order {order.client_order_id} not confirmed after "
                        f"{self.max_retries} retries: {type(exc).__name__}: {exc}"
                    ) from exc
                self._backoff(order, attempt, exc)
            except ccxt.BaseError as exc:
                raise ExchangePermanentError(
                    f"{order.symbol} order failed permanently: {type(exc).__name__}: {exc}"
                ) from exc
        raise AssertionError("unreachable: the retry loop returns or raises")  # pragma: no cover

    def lookup(self, order: OrderRequest) -> OrderReport | None:
        """The exchange's record of ``order`` by its client id, or None if it never arrived."""
        try:
            response = self.client.fetch_order(
                None, order.symbol, {"clientOrderId": order.client_order_id}
            )
        except ccxt.OrderNotFound:
            return None
        except ccxt.OperationFailed as exc:
            raise ExchangeTemporaryError(
                f"cannot look up order {order.client_order_id}: {type(exc).__name__}: {exc}"
            ) from exc
        return self._report(order, response)

    def reconcile(self, symbols: Iterable[str]) -> dict[str, Any]:
        """Open orders and balances as the exchange sees them (logged; returned for the state)."""
        open_orders = {s: self._call(self.client.fetch_open_orders, s) for s in symbols}
        balance = self._call(self.client.fetch_balance)
        totals = {k: float(v) for k, v in (balance.get("total") or {}).items() if v}
        summary = {
            "open_orders": {
                s: [o.get("clientOrderId") for o in orders]
                for s, orders in open_orders.items()
                if orders
            },
            "balances": totals,
        }
        _log().info(
            "broker_reconciled",
            open_orders=sum(len(v) for v in open_orders.values()),
            assets=len(totals),
        )
        return summary

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        for attempt in range(self.max_retries + 1):
            try:
                return fn(*args)
            except ccxt.OperationFailed as exc:
                if attempt == self.max_retries:
                    raise ExchangeTemporaryError(f"{fn.__name__} failing: {exc}") from exc
                self._sleep(min(self.retry_backoff_s * 2**attempt, MAX_BACKOFF_S))
            except ccxt.BaseError as exc:
                raise ExchangePermanentError(f"{fn.__name__} failed: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, order: OrderRequest, attempt: int, exc: Exception) -> None:
        delay_s = min(self.retry_backoff_s * 2**attempt, MAX_BACKOFF_S)
        _log().warning(
            "order_retry",
            client_order_id=order.client_order_id,
            attempt=attempt + 1,
            delay_s=delay_s,
            error=type(exc).__name__,
        )
        self._sleep(delay_s)

    def _report(self, order: OrderRequest, response: dict[str, Any]) -> OrderReport:
        filled = float(response.get("filled") or 0.0)
        price = response.get("average") or response.get("price")
        status: OrderStatus = "filled" if filled > 0 and price else "pending"
        if response.get("status") in ("canceled", "rejected", "expired") and filled == 0:
            status = "rejected"
        fill = None
        if status == "filled" and price:
            fee = response.get("fee") or {}
            signed = filled if order.signed_qty > 0 else -filled
            fill = Fill(
                order.symbol,
                signed,
                float(price),
                float(fee.get("cost") or 0.0),
                _when(response.get("timestamp")),
            )
        return OrderReport(order.client_order_id, status, fill, str(response.get("id") or ""))


def _when(timestamp_ms: Any) -> datetime:
    if timestamp_ms is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(int(timestamp_ms) / 1000, tz=UTC)
