"""One live order's book-keeping: what was asked, what the exchange says, what was reported.

:class:`LiveOrder` is the registry entry of :class:`hamilton_exec.execution.live_broker.CcxtBroker`.
Its ``phase`` is the broker's knowledge of the order on the exchange:

* ``new`` - known NOT to be on the exchange (never sent, or refused): sending is safe;
* ``unknown`` - may be on the exchange (a send whose answer was lost, a restart): only a
  lookup by client id may move it on; it is never sent again from here except through
  ``new`` after a definitive "not found";
* ``open`` - on the exchange, not final (polled);
* ``final`` - reported with a final status.

Fills are cumulative on the exchange (``filled``, ``cost``) and reported as increments: each
report carries what filled since the previous one (qty delta, its average price from the cost
delta, its fee delta). Fees: the exchange's own where the answer has them (quote currency, or
base currency at the increment's price), else the cost model's ``fee_bps`` of the cost
(Binance's order lookups carry no commission).
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import ccxt

from hamilton_exec.execution.brokers import OrderReport, OrderRequest, OrderStatus
from hamilton_exec.execution.live_client import (
    BAD_SYMBOL,
    EXCHANGE_CANCELED,
    EXPIRED,
    FILTER_FAILURE,
    MARKET_INACTIVE,
    POST_ONLY_WOULD_TAKE,
    REFUSED,
    ExchangeClient,
)
from trading_core.risk import Fill

Phase = Literal["new", "unknown", "open", "final"]
_SAVED_FIELDS = (
    *("market_symbol", "created_at", "amount", "price", "contract_size", "prepared", "clamped"),
    *("phase", "sent_at", "sends", "nonce_resends", "exchange_order_id", "filled", "cost"),
    *("fee", "reported_filled", "reported_cost", "reported_fee", "cancel_reason"),
)
_EPS = 1e-12


@dataclass(slots=True)
class LiveOrder:
    """A registry entry. Times are local wall-clock seconds."""

    request: OrderRequest
    market_symbol: str  # the exchange's symbol (``BTC/USDT:USDT`` for a linear perp)
    created_at: float  # the order's timeout counts from here
    amount: float = 0.0  # what is sent: base units (contracts on a perp), rounded
    price: float | None = None  # the rounded limit price
    contract_size: float = 1.0
    prepared: bool = False  # amount/price rounded and checked against the market's limits
    clamped: bool = False  # spot reduce-only: amount capped by the held base balance
    phase: Phase = "new"
    sent_at: float | None = None  # latest send (or an upper bound of it, after a restart)
    sends: int = 0
    nonce_resends: int = 0
    exchange_order_id: str | None = None
    filled: float = 0.0  # cumulative base units
    cost: float = 0.0  # cumulative quote
    fee: float = 0.0  # cumulative fee, quote
    reported_filled: float = 0.0
    reported_cost: float = 0.0
    reported_fee: float = 0.0
    cancel_reason: str = ""
    attempts: int = 0  # consecutive failures of the current action (backoff exponent)
    failed_lookups: int = 0  # lookups that failed (not "not found") since the last answer
    resend_reason: str = ""  # why the last send did not place it (not_found, throttled, ...)
    unknown_flagged: bool = False
    due_at: float = 0.0

    @property
    def client_id(self) -> str:
        return self.request.client_order_id

    @property
    def symbol(self) -> str:
        return self.request.symbol

    @property
    def side(self) -> str:
        return self.request.side.value

    @property
    def final(self) -> bool:
        return self.phase == "final"

    # --- exchange answers -----------------------------------------------------------------

    def absorb(self, answer: dict[str, Any], *, quote: str, base: str) -> str | None:
        """Take a ccxt order structure in (cumulative numbers only grow: a stale replica
        answer never takes back a fill). Returns ccxt's status ('open', 'closed', ...)."""
        if answer.get("id") is not None:
            self.exchange_order_id = str(answer["id"])
        filled = _num(answer.get("filled")) * self.contract_size
        if filled > self.filled + _EPS:
            cost = _num(answer.get("cost"))
            if cost <= 0.0:
                average = _num(answer.get("average")) or _num(answer.get("price"))
                cost = filled * average if average > 0 else 0.0
            fee = exchange_fee(answer, quote=quote, base=base, price=cost / filled if cost else 0)
            self.filled = filled
            self.cost = max(cost, self.cost)
            estimated = self.cost * self.request.fee_bps / 10_000.0
            self.fee = max(self.fee, fee if fee is not None else estimated)
        status = answer.get("status")
        return str(status) if status is not None else None

    def take_increment(self, filled_at: datetime) -> Fill | None:
        """The fill since the previous report (None when nothing new filled)."""
        qty = self.filled - self.reported_filled
        if qty <= _EPS * max(1.0, self.filled):
            return None
        cost = self.cost - self.reported_cost
        price = cost / qty if cost > 0.0 else (self.price or self.request.reference_price)
        fee = max(self.fee - self.reported_fee, 0.0)
        self.reported_filled, self.reported_cost = self.filled, max(self.cost, self.reported_cost)
        self.reported_fee = max(self.fee, self.reported_fee)
        sign = 1.0 if self.request.signed_qty > 0 else -1.0
        return Fill(self.symbol, sign * qty, price, fee, filled_at)

    def report(
        self,
        status: OrderStatus,
        fill: Fill | None = None,
        *,
        reason: str = "",
        detail: str = "",
    ) -> OrderReport:
        return OrderReport(
            self.client_id,
            status,
            fill,
            exchange_order_id=self.exchange_order_id,
            detail=detail,
            symbol=self.symbol,
            reason_code=reason,
            event_id=self.request.event_id,
            expected_cost_bps=self.request.expected_cost_bps,
            reference_price=self.request.reference_price,
        )

    def final_status(self, ccxt_status: str) -> tuple[OrderStatus, str]:
        """A final ccxt status as the report's status and reason code."""
        if ccxt_status == "closed":
            return ("filled", "") if self.filled > _EPS else ("expired", EXPIRED)
        if ccxt_status == "canceled":
            return "canceled", self.cancel_reason or EXCHANGE_CANCELED
        if ccxt_status == "expired":
            would_take = self.request.post_only and self.filled <= _EPS
            return "expired", POST_ONLY_WOULD_TAKE if would_take else EXPIRED
        return "rejected", REFUSED

    # --- persistence ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request.to_dict(),
            **{name: getattr(self, name) for name in _SAVED_FIELDS},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LiveOrder":
        fields = {k: v for k, v in data.items() if k != "request"}
        return cls(request=OrderRequest.from_dict(dict(data["request"])), **fields)


def exchange_fee(answer: dict[str, Any], *, quote: str, base: str, price: float) -> float | None:
    """The order's cumulative fee in the quote currency (None when the answer has none, or
    one in a third currency such as BNB that cannot be priced here)."""
    fees = [f for f in (answer.get("fees") or []) if isinstance(f, dict)]
    if not fees and isinstance(answer.get("fee"), dict):
        fees = [answer["fee"]]
    fees = [f for f in fees if f.get("cost") is not None]
    if not fees:
        return None
    total = 0.0
    for fee in fees:
        cost, currency = _num(fee.get("cost")), fee.get("currency")
        if currency == quote:
            total += cost
        elif currency == base and price > 0:
            total += cost * price
        else:
            return None
    return total


# --- pre-send checks ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """An order refused before it was sent."""

    reason: str
    detail: str


def prepare(
    client: ExchangeClient, order: LiveOrder, *, base_qty: float | None = None
) -> Refusal | None:
    """Round the amount (and limit price) with the market's precision and check them against
    its limits (min/max amount, min/max notional, price range). Sets ``order.amount``,
    ``order.price``, ``order.contract_size``; a :class:`Refusal` when the order cannot go."""
    request = order.request
    try:
        market = client.market(order.market_symbol)
    except ccxt.BaseError as exc:
        return Refusal(BAD_SYMBOL, f"{order.market_symbol}: {type(exc).__name__}")
    if market.get("active") is False:
        return Refusal(MARKET_INACTIVE, f"{order.market_symbol} is not trading")
    size = _num(market.get("contractSize")) if market.get("contract") else 1.0
    size = size if size > 0 else 1.0
    wanted = abs(request.signed_qty) if base_qty is None else base_qty
    try:
        amount = float(client.amount_to_precision(order.market_symbol, wanted / size))
        price = (
            float(client.price_to_precision(order.market_symbol, request.limit_price))
            if request.order_type == "limit" and request.limit_price is not None
            else None
        )
    except ccxt.BaseError as exc:  # ccxt: "amount must be greater than minimum precision"
        return Refusal(FILTER_FAILURE, f"{wanted} {order.market_symbol}: {type(exc).__name__}")
    limits = market.get("limits") or {}
    refusal = _check_limits(limits, request, amount, price, size)
    if refusal is not None:
        return refusal
    order.amount, order.price, order.contract_size, order.prepared = amount, price, size, True
    return None


def _check_limits(
    limits: dict[str, Any], request: OrderRequest, amount: float, price: float | None, size: float
) -> Refusal | None:
    amount_limits = dict(limits.get("amount") or {})
    if request.order_type == "market" and limits.get("market"):
        market_lot = limits["market"]
        amount_limits = {k: market_lot.get(k) or amount_limits.get(k) for k in ("min", "max")}
    price_limits = limits.get("price") or {}
    cost_limits = limits.get("cost") or {}
    notional = amount * size * (price if price is not None else request.reference_price)
    checks = (
        ("amount", amount, amount_limits),
        ("price", price, price_limits),
        ("notional", notional, cost_limits),
    )
    if amount <= 0.0:
        return Refusal(FILTER_FAILURE, f"amount {amount} rounds to nothing")
    for what, value, bounds in checks:
        low, high = bounds.get("min"), bounds.get("max")
        if value is not None and low is not None and value < float(low):
            return Refusal(FILTER_FAILURE, f"{what} {value:.10g} below the minimum {low}")
        if value is not None and high is not None and value > float(high):
            return Refusal(FILTER_FAILURE, f"{what} {value:.10g} above the maximum {high}")
    return None


# --- reports on disk ----------------------------------------------------------------------


def report_to_dict(report: OrderReport) -> dict[str, Any]:
    fill = report.fill
    return {
        "client_order_id": report.client_order_id,
        "status": report.status,
        "fill": None
        if fill is None
        else {
            "symbol": fill.symbol,
            "qty": fill.qty,
            "price": fill.price,
            "fee_usd": fill.fee_usd,
            "filled_at": fill.filled_at.isoformat(),
        },
        "exchange_order_id": report.exchange_order_id,
        "detail": report.detail,
        "symbol": report.symbol,
        "reason_code": report.reason_code,
        "event_id": report.event_id,
        "expected_cost_bps": report.expected_cost_bps,
        "reference_price": report.reference_price,
    }


def report_from_dict(data: dict[str, Any]) -> OrderReport:
    raw = data.get("fill")
    fill = (
        None
        if raw is None
        else Fill(
            raw["symbol"],
            float(raw["qty"]),
            float(raw["price"]),
            float(raw["fee_usd"]),
            datetime.fromisoformat(raw["filled_at"]),
        )
    )
    return OrderReport(**{**data, "fill": fill})


def exchange_time(answer: dict[str, Any], default: datetime) -> datetime:
    """When the answer says the order last traded (else ``default``)."""
    stamp = answer.get("lastTradeTimestamp") or answer.get("timestamp")
    if isinstance(stamp, int | float) and stamp > 0:
        return datetime.fromtimestamp(float(stamp) / 1000.0, tz=UTC)
    return default


def _num(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0
