"""One exchange call with retries, by ccxt's error tree: the one retry loop of the project's
ccxt reads (market data and the live broker's reconcile reads).

Temporary: ``ccxt.OperationFailed`` (the ``NetworkError`` family: RequestTimeout,
ExchangeNotAvailable, DDoSProtection/RateLimitExceeded, InvalidNonce, ...; and Binance's -1001
"Internal error" with a 5xx) and our own :class:`ExchangeTemporaryError` (e.g. a clock sync
that failed). Retried with exponential backoff (``retry_backoff_s * 2**attempt``, capped at
``MAX_BACKOFF_S``), then :class:`ExchangeTemporaryError`. Every other ccxt error (the
``ExchangeError`` family: BadSymbol, BadRequest, AuthenticationError, InsufficientFunds, ...)
is :class:`ExchangePermanentError` at once. Error texts go through ``redact`` (ccxt quotes URLs
and bodies, which can carry the API key).

The ccxt exception is named in the message, not chained: its text may quote the request.

Order placement is NOT retried this way: a timed-out ``create_order`` may have been accepted,
so the live broker looks it up instead (:mod:`hamilton_exec.live_send`).
"""

import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

import ccxt

from trading_core.config.models import ExchangeSection
from trading_core.errors import ExchangePermanentError, ExchangeTemporaryError
from trading_core.observability.logging import get_logger

MAX_BACKOFF_S: Final = 60.0
T = TypeVar("T")


def _log() -> Any:
    return get_logger(__name__)


def _plain(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def call_with_retries(
    operation: str,
    fn: Callable[[], T],
    *,
    exchange: ExchangeSection,
    sleep: Callable[[float], None] = time.sleep,
    redact: Callable[[BaseException], str] = _plain,
    before_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """``fn()``, retried on temporary errors (module docstring); ``before_retry(exc)`` runs
    before each retry (the broker resynchronises its clock after an InvalidNonce)."""
    retries = exchange.max_retries
    for attempt in range(retries + 1):
        try:
            return fn()
        except (ccxt.OperationFailed, ExchangeTemporaryError) as exc:
            if attempt == retries:
                raise ExchangeTemporaryError(
                    f"{exchange.name} {operation} still failing after {retries} retries: "
                    f"{redact(exc)}"
                ) from None
            delay_s = min(exchange.retry_backoff_s * 2**attempt, MAX_BACKOFF_S)
            _log().warning(
                "exchange_retry",
                exchange=exchange.name,
                operation=operation,
                attempt=attempt + 1,
                max_retries=retries,
                delay_s=delay_s,
                error=type(exc).__name__,
                reason="temporary exchange error (ccxt OperationFailed/NetworkError family)",
            )
            if before_retry is not None:
                before_retry(exc)
            sleep(delay_s)
        except ccxt.BaseError as exc:
            raise ExchangePermanentError(
                f"{exchange.name} {operation} failed permanently: {redact(exc)}"
            ) from None
    raise AssertionError("unreachable: the retry loop returns or raises")  # pragma: no cover
