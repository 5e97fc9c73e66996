"""The streaming feed's pure helpers: Binance payloads to candles and quotes, and its bars
judged by the candle validator's row checks with the same reason labels as clean_ohlcv."""

import math
from datetime import UTC, datetime

import polars as pl
import pytest

from hamilton_exec.market_data.stream_messages import (
    book_ticker_quote,
    kline_candle,
    number,
    rejected_bars,
)
from hamilton_exec.market_data.window import Candle
from trading_core.market.validation import clean_ohlcv

STEP_MS = 60_000
OPEN_MS = 1_796_490_000_000  # on the 1m grid
GOOD = {"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5, "volume": 10.0}
NOW = datetime(2030, 1, 1, tzinfo=UTC)

BAD = {
    "nan_value": {"close": math.nan},
    "infinite_value": {"volume": math.inf},
    "non_positive_price": {"low": 0.0},
    "negative_volume": {"volume": -1.0},
    "high_below_low": {"high": 98.0, "low": 99.0},
    "high_below_open_close": {"high": 100.2},
    "low_above_open_close": {"low": 100.2},
    "implausible_volume": {"volume": 1e15},
}


def _candle(open_ms: int = OPEN_MS, **values: float) -> Candle:
    row = {**GOOD, **values}
    return Candle(open_ms, row["open"], row["high"], row["low"], row["close"], row["volume"])


def _clean_reason(candle: Candle) -> str:
    frame = pl.DataFrame({"timestamp": [candle.open_ms], **{k: [getattr(candle, k)] for k in GOOD}})
    result = clean_ohlcv(frame, symbol="X/USDT", timeframe="1m", now=NOW)
    assert result.frame.height == 0
    (reason,) = result.rejected
    return reason


@pytest.mark.parametrize("reason", [*BAD, "off_grid_timestamp"])
def test_streamed_bad_bar_rejected_with_the_validators_reason(reason: str) -> None:
    off_grid = reason == "off_grid_timestamp"
    bad = _candle(OPEN_MS + 7_000) if off_grid else _candle(OPEN_MS, **BAD[reason])
    candles = {"BAD/USDT": bad, "GOOD/USDT": _candle()}
    assert rejected_bars(candles, STEP_MS) == {"BAD/USDT": reason}
    assert _clean_reason(bad) == reason


def test_clean_bars_are_not_rejected_and_no_bars_is_no_work() -> None:
    assert rejected_bars({"A/USDT": _candle(), "B/USDT": _candle(close=99.5)}, STEP_MS) == {}
    assert rejected_bars({}, STEP_MS) == {}


def test_kline_payload_becomes_the_candle_it_describes() -> None:
    kline = {"t": OPEN_MS, "o": "100", "h": "101", "l": "99", "c": "100.5", "v": "10", "x": True}
    assert kline_candle(kline) == _candle()


def test_book_ticker_payload_quote_and_crossed_or_empty_books_refused() -> None:
    quote = book_ticker_quote("X/USDT", {"b": "99.9", "B": "2", "a": "100.1", "A": "3"}, NOW)
    assert quote is not None
    assert (quote.best_bid, quote.best_ask, quote.bid_qty, quote.ask_qty) == (99.9, 100.1, 2, 3)
    assert quote.top.spread_bps == pytest.approx(20.0)
    assert book_ticker_quote("X/USDT", {"b": "100.2", "a": "100.1"}, NOW) is None
    assert book_ticker_quote("X/USDT", {"b": "", "a": "100.1"}, NOW) is None
    assert math.isnan(book_ticker_quote("X/USDT", {"b": "1", "a": "2"}, NOW).bid_qty)  # type: ignore[union-attr]
    assert number("nan") is None and number(None) is None and number("1.5") == 1.5
