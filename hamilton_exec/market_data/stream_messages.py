"""Pure helpers of the streaming feed: Binance stream payloads to candles and quotes, and the
candle validator's row checks over one tick's bars.

Payloads (Binance's documented stream dialect): a kline event carries ``k`` with ``t`` (open
time), ``o h l c v`` (strings), ``i`` (interval) and ``x`` (final); a bookTicker event carries
``s``, ``b``/``B`` (best bid, size) and ``a``/``A`` (best ask, size).
"""

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import polars as pl

from hamilton_exec.market_data.market_books import BookQuote, quote_from_levels
from hamilton_exec.market_data.window import Candle
from trading_core.market.validation import row_checks

VALUE_FIELDS: Final = ("open", "high", "low", "close", "volume")


def number(value: Any) -> float | None:
    """A finite float from a payload field, or None."""
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        return None
    return parsed if math.isfinite(parsed) else None


def kline_candle(kline: Mapping[str, Any]) -> Candle:
    """The candle of a kline payload's ``k`` object (values as sent: the validator judges)."""
    return Candle(
        int(kline["t"]),
        float(kline["o"]),
        float(kline["h"]),
        float(kline["l"]),
        float(kline["c"]),
        float(kline["v"]),
    )


def cached_candle(row: Sequence[float]) -> Candle:
    """A candle from ccxt's OHLCV cache row ``[t, o, h, l, c, v]``."""
    return Candle(int(row[0]), *(float(x) for x in row[1:6]))


def book_ticker_quote(symbol: str, item: Mapping[str, Any], now: datetime) -> BookQuote | None:
    """The quote of a bookTicker payload (None when a side is empty or the book is crossed)."""
    return quote_from_levels(
        symbol,
        number(item.get("b")),
        number(item.get("a")),
        number(item.get("B")),
        number(item.get("A")),
        now,
    )


def rejected_bars(candles: Mapping[str, Candle], step_ms: int) -> dict[str, str]:
    """The coins whose bar fails the candle validator's row checks, with the first failing
    reason label (the same checks and labels as every other reader of candles)."""
    if not candles:
        return {}
    symbols = list(candles)
    frame = pl.DataFrame(
        {
            "timestamp": [candles[s].open_ms for s in symbols],
            **{k: [float(getattr(candles[s], k)) for s in symbols] for k in VALUE_FIELDS},
        }
    ).with_columns(pl.from_epoch("timestamp", time_unit="ms").dt.replace_time_zone("UTC"))
    first_failing = pl.coalesce(
        [pl.when(fails).then(pl.lit(reason)) for reason, fails in row_checks(step_ms)]
    )
    reasons = frame.select(first_failing.alias("reason"))["reason"].to_list()
    return {s: r for s, r in zip(symbols, reasons, strict=True) if r is not None}
