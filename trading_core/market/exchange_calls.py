"""The project's one ccxt call-and-retry helper: how a ccxt error is read, the backoff
schedule, and one exchange call with retries. Used by the market-data source
(:mod:`trading_core.market.ccxt_source`, and through it :mod:`trading_core.market.fetch`), the
live broker's reads (:mod:`hamilton_exec.execution.live_snapshot`), its order-send backoff
(:mod:`hamilton_exec.execution.live_send`) and the websocket feed's reconnects
(:mod:`hamilton_exec.market_data.stream_feed`).

Temporary (:func:`is_temporary`): ``ccxt.OperationFailed`` (the ``NetworkError`` family:
RequestTimeout, ExchangeNotAvailable, DDoSProtection/RateLimitExceeded, InvalidNonce, ...; and
Binance's -1001 "Internal error" with a 5xx) and our own :class:`ExchangeTemporaryError` (e.g. a
clock sync that failed). Retried with exponential backoff (:func:`backoff_delay`:
``retry_backoff_s * 2**attempt``, capped at ``MAX_BACKOFF_S``), then
:class:`ExchangeTemporaryError`. Every other ccxt error (the ``ExchangeError`` family: BadSymbol,
BadRequest, AuthenticationError, InsufficientFunds, InvalidOrder, ...) is
:class:`ExchangePermanentError` at once (:func:`as_exchange_error`). Error texts go through
``redact`` (ccxt quotes URLs and bodies, which can carry the API key).

The ccxt exception is named in the message, not chained: its text may quote the request.

Order placement is NOT retried this way: a timed-out ``create_order`` may have been accepted,
so the live broker looks it up by its client order id instead (its finer reading of a send's
error is :func:`hamilton_exec.execution.live_client.classify_send_error`;
:mod:`hamilton_exec.execution.live_send`).
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


def backoff_delay(base_s: float, attempt: int, *, cap_s: float = MAX_BACKOFF_S) -> float:
    """The wait before retry number ``attempt + 1``: ``base_s * 2**attempt``, at most
    ``cap_s`` (``attempt`` counts from 0: the first retry waits ``base_s``)."""
    return float(min(base_s * 2**attempt, cap_s))


def is_temporary(exc: BaseException) -> bool:
    """Whether the same exchange call may succeed later (module docstring)."""
    return isinstance(exc, ccxt.OperationFailed | ExchangeTemporaryError)


def as_exchange_error(
    exc: BaseException,
    message: str,
    *,
    redact: Callable[[BaseException], str] = _plain,
) -> ExchangeTemporaryError | ExchangePermanentError:
    """The project error of a failed exchange call: ``"<message>: <redacted ccxt error>"``,
    temporary or permanent by :func:`is_temporary`."""
    kind = ExchangeTemporaryError if is_temporary(exc) else ExchangePermanentError
    return kind(f"{message}: {redact(exc)}")


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
        except ccxt.BaseError as exc:
            if not is_temporary(exc):
                raise as_exchange_error(
                    exc, f"{exchange.name} {operation} failed permanently", redact=redact
                ) from None
            failure: BaseException = exc
        except ExchangeTemporaryError as exc:
            failure = exc
        if attempt == retries:
            raise as_exchange_error(
                failure,
                f"{exchange.name} {operation} still failing after {retries} retries",
                redact=redact,
            ) from None
        delay_s = backoff_delay(exchange.retry_backoff_s, attempt)
        _log().warning(
            "exchange_retry",
            exchange=exchange.name,
            operation=operation,
            attempt=attempt + 1,
            max_retries=retries,
            delay_s=delay_s,
            error=type(failure).__name__,
            reason="temporary exchange error (ccxt OperationFailed/NetworkError family)",
        )
        if before_retry is not None:
            before_retry(failure)
        sleep(delay_s)
    raise AssertionError("unreachable: the retry loop returns or raises")  # pragma: no cover
