"""The factory that picks a market-data source by config (``data.source``).

It imports the concrete sources (lazily: ccxt and the parquet store load only when chosen);
they import only :mod:`trading_core.market.source`, so the graph has no circle.
"""

from pathlib import Path
from typing import Any

from trading_core.config.models import EngineConfig
from trading_core.errors import ConfigError
from trading_core.market.source import MarketDataSource


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
    raise ConfigError(f"data.source {choice!r} is unknown; allowed: synthetic, parquet, ccxt")
