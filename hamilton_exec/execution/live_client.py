"""What the live broker needs from a ccxt exchange, how it reads ccxt's errors, and its metrics.

Error classes (ccxt's tree, checked most specific first):

* **uncertain** - the request may have reached the exchange: ``RequestTimeout``,
  ``NetworkError`` (connection reset), ``ExchangeNotAvailable``/``OnMaintenance`` (5xx),
  ``BadResponse``, ``OperationFailed`` (Binance -1001 with a 5xx) and any non-ccxt exception
  raised by the call (a parse error after the answer arrived). The order must be looked up.
* **throttled** - ``DDoSProtection``/``RateLimitExceeded`` (418/429, -1003): refused, safe to
  send again after a backoff.
* **nonce** - ``InvalidNonce`` (-1021, timestamp outside recvWindow): refused; resync the clock.
* **duplicate** - ``DuplicateOrderId`` or Binance's "Duplicate order sent." (the client id is
  OPEN on the exchange): the order exists, look it up.
* **rejected** - the rest of ``ExchangeError`` with a reason code (:func:`rejection_reason`).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import ccxt

from trading_core.market.exchange_calls import is_temporary

# reason codes of the reports (besides the engine's own, e.g. kill_switch)
INSUFFICIENT_BALANCE = "insufficient_balance"
FILTER_FAILURE = "filter_failure"
POST_ONLY_WOULD_TAKE = "post_only_would_take"
PERMISSION = "permission"
BAD_SYMBOL = "bad_symbol"
REFUSED = "refused"
CLOCK_SKEW = "clock_skew"
TIMEOUT = "timeout"
RATE_LIMITED = "rate_limited"
ORDER_PENDING = "order_pending"
DUPLICATE_DECISION = "duplicate_decision"
NOTHING_TO_REDUCE = "nothing_to_reduce"
MARKET_INACTIVE = "market_inactive"
EXCHANGE_CANCELED = "exchange_canceled"
EXPIRED = "expired"
BROKER_CLOSED = "broker_closed"

ErrorKind = Literal["uncertain", "throttled", "nonce", "duplicate", "rejected"]


class ExchangeClient(Protocol):
    """The ccxt calls the live broker makes (a ccxt ``binance`` object satisfies it)."""

    id: str
    options: dict[str, Any]
    markets: dict[str, Any] | None

    def load_markets(self, reload: bool = ..., params: dict[str, Any] = ...) -> dict[str, Any]: ...

    def market(self, symbol: str) -> dict[str, Any]: ...

    def amount_to_precision(self, symbol: str, amount: float) -> str: ...

    def price_to_precision(self, symbol: str, price: float) -> str: ...

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = ...,
        params: dict[str, Any] = ...,
    ) -> dict[str, Any]: ...

    def fetch_order(
        self, id: str, symbol: str | None = ..., params: dict[str, Any] = ...
    ) -> dict[str, Any]: ...

    def cancel_order(
        self, id: str, symbol: str | None = ..., params: dict[str, Any] = ...
    ) -> dict[str, Any]: ...

    def fetch_open_orders(
        self,
        symbol: str | None = ...,
        since: int | None = ...,
        limit: int | None = ...,
        params: dict[str, Any] = ...,
    ) -> list[dict[str, Any]]: ...

    def fetch_balance(self, params: dict[str, Any] = ...) -> dict[str, Any]: ...

    def fetch_positions(
        self, symbols: list[str] | None = ..., params: dict[str, Any] = ...
    ) -> list[dict[str, Any]]: ...

    def fetch_time(self, params: dict[str, Any] = ...) -> int | None: ...

    def load_time_difference(self, params: dict[str, Any] = ...) -> int: ...


MetricName = Literal[
    "order_report",  # every report (submit's and drained): symbol, side, status, reason
    "clock_skew_refusal",  # a new order refused while the clock skew is beyond the bound
    "order_state_unknown",  # lookups of an uncertain send kept failing past the bound
    "order_resend",  # a send repeated (reason: not_found / invalid_nonce / throttled)
    "exchange_error",  # a failed exchange call (reason: the ccxt error class, status: the call)
]


@dataclass(frozen=True, slots=True)
class BrokerMetric:
    """One counter increment for the integrator's Prometheus wiring (labels by name)."""

    name: MetricName
    symbol: str = ""
    side: str = ""
    status: str = ""
    reason: str = ""


MetricCallback = Callable[[BrokerMetric], None]


def classify_send_error(exc: BaseException) -> ErrorKind:
    """How a ``create_order`` failure is handled (see the module docstring): the send's
    refinement of :func:`trading_core.market.exchange_calls.is_temporary` (a temporary error
    of a send is uncertain: the order may exist, so it is looked up, never blindly resent)."""
    if isinstance(exc, ccxt.InvalidNonce):
        return "nonce"
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        return "throttled"
    if is_temporary(exc):
        return "uncertain"
    if isinstance(exc, ccxt.DuplicateOrderId) or (
        isinstance(exc, ccxt.ExchangeError) and "duplicate order" in str(exc).lower()
    ):
        return "duplicate"
    if isinstance(exc, ccxt.ExchangeError):
        return "rejected"
    return "uncertain"  # anything else: we cannot tell whether it reached the exchange


_REJECTIONS: tuple[tuple[type[BaseException], str], ...] = (
    (ccxt.InsufficientFunds, INSUFFICIENT_BALANCE),
    (ccxt.OrderImmediatelyFillable, POST_ONLY_WOULD_TAKE),
    (ccxt.BadSymbol, BAD_SYMBOL),
    (ccxt.AuthenticationError, PERMISSION),  # PermissionDenied, AccountSuspended too
)


def rejection_reason(exc: BaseException, *, post_only: bool) -> str:
    """The reason code of an order the exchange refused."""
    for error, reason in _REJECTIONS:
        if isinstance(exc, error):
            return reason
    if isinstance(exc, ccxt.OrderNotFillable):  # Binance USD-M -5022: a GTX order would take
        return POST_ONLY_WOULD_TAKE if post_only else FILTER_FAILURE
    filter_failure = isinstance(exc, ccxt.BadRequest) and "filter failure" in str(exc).lower()
    if isinstance(exc, ccxt.InvalidOrder) or filter_failure:
        return FILTER_FAILURE
    return REFUSED


class Redactor:
    """Removes the API key and secret from any text (error messages quote URLs and bodies)."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._secrets = tuple(s for s in secrets if s)

    def __call__(self, text: str, *, limit: int = 300) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text[:limit]

    def error(self, exc: BaseException) -> str:
        return self(f"{type(exc).__name__}: {exc}")
