"""The one OHLCV schema every source returns.

``timestamp`` is the candle's *open* time, UTC, millisecond precision; prices and volume are
float64 (volume in base currency). Multi-coin frames add a ``symbol`` column ("BTC/USDT").
"""

from typing import Final

import polars as pl

from trading_core.errors import DataValidationError

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
    """``"BTC/USDT"`` -> ``("BTC", "USDT")``; DataValidationError naming the expected form."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote:
        raise DataValidationError(f"symbol {symbol!r} must look like 'BASE/QUOTE', e.g. 'BTC/USDT'")
    return base, quote


FUNDING_SCHEMA: Final[dict[str, pl.DataType]] = {
    "timestamp": TIMESTAMP_DTYPE,
    "funding_rate": pl.Float64(),  # fraction per 8h funding interval
}
UNIVERSE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "symbol": pl.String(),
    "base": pl.String(),
    "quote": pl.String(),
    "last_price": pl.Float64(),
    "daily_volume_usd": pl.Float64(),  # trailing 24h quote volume
    "spread_bps": pl.Float64(),  # top-of-book (ask - bid) / mid, or an estimate of it
    "listing_date": pl.Date(),
    "age_days": pl.Int64(),
}


def empty_funding() -> pl.DataFrame:
    """A zero-row funding-rate frame (timestamp, funding_rate)."""
    return pl.DataFrame(schema=FUNDING_SCHEMA)


def universe_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    """Universe-snapshot rows -> a frame with :data:`UNIVERSE_SCHEMA`, sorted by symbol."""
    return pl.DataFrame(rows, schema=UNIVERSE_SCHEMA).sort("symbol")
