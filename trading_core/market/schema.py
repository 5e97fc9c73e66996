"""The one OHLCV schema every source returns.

``timestamp`` is the candle's *open* time, UTC, millisecond precision; prices and volume are
float64 (volume in base currency). Multi-coin frames add a ``symbol`` column ("BTC/USDT").
"""

from typing import Final

import polars as pl

TIMESTAMP: Final = "timestamp"
OHLCV_COLUMNS: Final[tuple[str, ...]] = ("timestamp", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: Final[tuple[str, ...]] = ("open", "high", "low", "close")
TIMESTAMP_DTYPE: Final = pl.Datetime("ms", "UTC")
OHLCV_SCHEMA: Final[dict[str, pl.DataType]] = {
    "timestamp": TIMESTAMP_DTYPE,
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}


def empty_ohlcv() -> pl.DataFrame:
    """A zero-row frame with the OHLCV schema."""
    return pl.DataFrame(schema=OHLCV_SCHEMA)


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"BTC/USDT"`` -> ``("BTC", "USDT")``; raises ValueError naming the expected form."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"symbol {symbol!r} must look like 'BASE/QUOTE', e.g. 'BTC/USDT'")
    return base, quote
