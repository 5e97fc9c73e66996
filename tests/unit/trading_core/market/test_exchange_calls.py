"""The one ccxt call-and-retry helper: how ccxt's errors are read, the backoff schedule, and
the retry loop (temporary errors retried with backoff, permanent ones at once, redacted)."""

from collections.abc import Callable
from typing import Any

import ccxt
import pytest

from hamilton_exec.execution.live_client import classify_send_error
from trading_core.config.models import ExchangeSection
from trading_core.errors import ExchangePermanentError, ExchangeTemporaryError
from trading_core.market.exchange_calls import (
    MAX_BACKOFF_S,
    as_exchange_error,
    backoff_delay,
    call_with_retries,
    is_temporary,
)

EXCHANGE = ExchangeSection(max_retries=3, retry_backoff_s=0.5)


def _failing(errors: list[BaseException], answer: Any = "ok") -> Callable[[], Any]:
    pending = list(errors)

    def call() -> Any:
        if pending:
            raise pending.pop(0)
        return answer

    return call


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    assert [backoff_delay(0.5, n) for n in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff_delay(0.5, 20) == MAX_BACKOFF_S
    assert backoff_delay(0.1, 5, cap_s=0.5) == 0.5


@pytest.mark.parametrize(
    ("error", "temporary"),
    [
        (ccxt.NetworkError("reset"), True),
        (ccxt.RequestTimeout("slow"), True),
        (ccxt.RateLimitExceeded("429"), True),
        (ccxt.DDoSProtection("418"), True),
        (ccxt.ExchangeNotAvailable("503"), True),
        (ccxt.OperationFailed("-1001"), True),
        (ExchangeTemporaryError("clock sync"), True),
        (ccxt.AuthenticationError("key"), False),
        (ccxt.InsufficientFunds("balance"), False),
        (ccxt.InvalidOrder("filter"), False),
        (ccxt.BadSymbol("NOPE/USDT"), False),
        (ValueError("not an exchange error"), False),
    ],
)
def test_ccxt_error_mapped_once_to_temporary_or_permanent(
    error: BaseException, temporary: bool
) -> None:
    assert is_temporary(error) is temporary
    mapped = as_exchange_error(error, "binance fetch_ohlcv")
    assert isinstance(mapped, ExchangeTemporaryError if temporary else ExchangePermanentError)
    assert str(mapped).startswith(f"binance fetch_ohlcv: {type(error).__name__}: ")


def test_temporary_errors_retried_with_backoff_then_answer() -> None:
    sleeps: list[float] = []
    errors = [ccxt.RequestTimeout("t"), ccxt.RateLimitExceeded("r")]
    answer = call_with_retries(
        "load_markets", _failing(errors), exchange=EXCHANGE, sleep=sleeps.append
    )
    assert answer == "ok" and sleeps == [0.5, 1.0]


def test_temporary_errors_past_max_retries_become_exchange_temporary_error() -> None:
    sleeps: list[float] = []
    errors: list[BaseException] = [ccxt.NetworkError("down")] * 4
    with pytest.raises(ExchangeTemporaryError, match="still failing after 3 retries"):
        call_with_retries("fetch_tickers", _failing(errors), exchange=EXCHANGE, sleep=sleeps.append)
    assert sleeps == [0.5, 1.0, 2.0]


def test_permanent_error_not_retried_and_redacted() -> None:
    sleeps: list[float] = []
    secret_error = ccxt.AuthenticationError("bad key SECRET123")
    with pytest.raises(ExchangePermanentError, match="failed permanently: <redacted>") as raised:
        call_with_retries(
            "fetch_balance",
            _failing([secret_error]),
            exchange=EXCHANGE,
            sleep=sleeps.append,
            redact=lambda exc: "<redacted>",
        )
    assert sleeps == [] and raised.value.__cause__ is None


def test_before_retry_runs_before_each_retry() -> None:
    seen: list[str] = []
    errors = [ccxt.InvalidNonce("-1021")]
    call_with_retries(
        "fetch_open_orders",
        _failing(errors),
        exchange=EXCHANGE,
        sleep=lambda s: None,
        before_retry=lambda exc: seen.append(type(exc).__name__),
    )
    assert seen == ["InvalidNonce"]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ccxt.RequestTimeout("t"), "uncertain"),
        (ccxt.OperationFailed("-1001"), "uncertain"),
        (RuntimeError("parse error after the answer"), "uncertain"),
        (ccxt.RateLimitExceeded("429"), "throttled"),
        (ccxt.InvalidNonce("-1021"), "nonce"),
        (ccxt.DuplicateOrderId("dup"), "duplicate"),
        (ccxt.InsufficientFunds("balance"), "rejected"),
    ],
)
def test_order_send_temporary_error_is_uncertain_never_blindly_resent(
    error: BaseException, kind: str
) -> None:
    assert classify_send_error(error) == kind
