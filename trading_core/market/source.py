"""The one protocol every market-data source implements, and the factory that picks one.

Sources: :class:`~trading_core.market.synthetic.SyntheticMarket` (the embedded default),
:class:`~trading_core.market.parquet_store.ParquetSource` (a local store) and
:class:`~trading_core.market.ccxt_source.CcxtSource` (Binance and other venues through ccxt).
"""

from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import polars as pl

from trading_core.config.models import EngineConfig


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
            raise ValueError(f"{label}={value!r} is naive; pass a UTC-aware datetime")
    if end <= start:
        raise ValueError(
            f"empty window: end={end.isoformat()} must be after start={start.isoformat()}"
        )


def make_source(
    config: EngineConfig,
    *,
    store_root: str | Path | None = None,
    ccxt_client: Any | None = None,
) -> MarketDataSource:
    """The source named by ``config.data.source``.

    ``store_root`` overrides ``config.data.store_path`` for the parquet source; ``ccxt_client``
    injects a ready ccxt exchange object (tests point one at a local server).
    """
    choice = config.data.source
    quote = config.engine.quote
    if choice == "synthetic":
        from trading_core.market.synthetic import SyntheticMarket

        return SyntheticMarket(config.data.synthetic, quote=quote)
    if choice == "parquet":
        from trading_core.market.parquet_store import ParquetSource, ParquetStore

        return ParquetSource(
            ParquetStore(
                store_root or config.data.store_path, endpoint_url=config.storage.endpoint_url
            ),
            quote=quote,
            spread_estimator=config.data.spread_estimator,
        )
    if choice == "ccxt":
        from trading_core.market.ccxt_source import CcxtSource

        return CcxtSource(config.data.exchange, client=ccxt_client, quote=quote)
    raise ValueError(f"data.source {choice!r} is unknown; allowed: synthetic, parquet, ccxt")
