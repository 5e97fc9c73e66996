"""The one protocol every market-data source implements.

Sources: :class:`~trading_core.market.synthetic.SyntheticMarket` (the embedded default),
:class:`~trading_core.market.parquet_store.ParquetSource` (a local store) and
:class:`~trading_core.market.ccxt_source.CcxtSource` (Binance and other venues through ccxt).
They import this module; the factory that picks one by config, which imports them, is
:func:`trading_core.market.sources.make_source` (so there is no import circle).
"""

from datetime import datetime
from typing import Protocol, runtime_checkable

import polars as pl

from trading_core.errors import DataValidationError


@runtime_checkable
class MarketDataSource(Protocol):
    """Candles, the tradable universe and funding rates of one venue (or a simulation of one).

    Every frame returned follows :mod:`trading_core.market.schema`; datetimes are UTC-aware.
    """

    name: str

    def list_symbols(self) -> list[str]:
        """Tradable symbols in ``"BASE/QUOTE"`` form, in a stable order of the source's own
        (synthetic: BTC/USDT, ETH/USDT first; parquet and ccxt: sorted)."""
        ...

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, *, start: datetime, end: datetime
    ) -> pl.DataFrame:
        """Validated closed candles whose open time is in ``[start, end)``."""
        ...

    def universe_snapshot(self, as_of: datetime) -> pl.DataFrame:
        """One row per symbol listed at ``as_of`` with the columns of
        :data:`~trading_core.market.schema.UNIVERSE_SCHEMA`: symbol, base, quote, last_price,
        daily_volume_usd (24h quote volume), spread_bps ((ask - bid) / mid in bps),
        listing_date (Date), age_days (int)."""
        ...

    def funding_rates(self, symbol: str, *, start: datetime, end: datetime) -> pl.DataFrame:
        """``timestamp, funding_rate`` (fraction per 8h) in ``[start, end)``; empty if none."""
        ...


def require_utc_window(start: datetime, end: datetime) -> None:
    """Reject naive datetimes and empty windows with a message naming the values."""
    for label, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise DataValidationError(f"{label}={value!r} is naive; pass a UTC-aware datetime")
    if end <= start:
        raise DataValidationError(
            f"empty window: end={end.isoformat()} must be after start={start.isoformat()}"
        )
