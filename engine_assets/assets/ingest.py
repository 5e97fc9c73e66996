"""ohlcv: candles of the day's active coins into the parquet store the Dask workers read.

BTC/{quote}, the market reference (relative strength, the BTC features), is optional as it is in
training and in Hamilton: when the source does not list it, or fetching it fails, the asset
logs why, says so in its metadata (``btc_reference``) and goes on without it."""

from datetime import datetime, timedelta

import dagster as dg

from engine_assets.assets.universe import partition_end
from engine_assets.logging import bind_run
from engine_assets.partitions import daily_partitions, partition_days, single_run_backfill
from engine_assets.resources import BrainLibraryResource, EngineConfigResource, MarketDataResource
from trading_core.market.fetch import fetch_to_store
from trading_core.market.parquet_store import ParquetStore
from trading_core.market.source import MarketDataSource
from trading_core.observability.logging import get_logger
from trading_core.training.universe import active_symbols


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    deps=["liquidity_ranking"],
    group_name="data",
    kinds={"parquet"},
    description="Ingest/update history_days of candles for the active coins (and BTC, the "
    "optional relative-strength reference, where the source has it) for every configured "
    "timeframe into the parquet store.",
)
def ohlcv(
    context: dg.AssetExecutionContext,
    engine_config: EngineConfigResource,
    market: MarketDataResource,
    brain: BrainLibraryResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    config = engine_config.load()
    bind_run(context, config)
    source, store = market.source(), market.store()
    rows_added: dict[str, int] = dict.fromkeys(config.engine.timeframes, 0)
    symbols: list[str] = []
    btc = f"BTC/{config.engine.quote}"
    btc_reference = "fetched"
    for key in partition_days(context):
        as_of = partition_end(key)
        ranking = brain.open().load_ranking(as_of.date() - timedelta(days=1))
        symbols = active_symbols(ranking, config.engine.active_coins, quote=config.engine.quote)
        since = as_of - timedelta(days=config.data.history_days)
        for timeframe in config.engine.timeframes:
            summary = fetch_to_store(source, store, symbols, timeframe, since=since, until=as_of)
            rows_added[timeframe] += summary.rows_added
            if btc not in symbols:
                added, btc_reference = _fetch_reference(
                    source, store, btc, timeframe, since=since, until=as_of
                )
                rows_added[timeframe] += added
                if btc_reference != "fetched":
                    context.log.warning(f"ohlcv: BTC reference {btc_reference}")
            else:
                btc_reference = "fetched (an active coin)"
        for symbol in symbols:
            store.write_funding(symbol, source.funding_rates(symbol, start=since, end=as_of))
    context.log.info(f"ohlcv: {len(symbols)} active coins, rows added {rows_added}")
    return dg.MaterializeResult(
        metadata={
            "active_coins": dg.MetadataValue.json(symbols),
            "rows_added": dg.MetadataValue.json(rows_added),
            "btc_reference": btc_reference,
            "store": dg.MetadataValue.path(str(store.root)),
        }
    )


def _fetch_reference(
    source: MarketDataSource,
    store: ParquetStore,
    symbol: str,
    timeframe: str,
    *,
    since: datetime,
    until: datetime,
) -> tuple[int, str]:
    """Fetch the optional market reference: (rows added, what happened)."""
    if symbol not in source.list_symbols():
        reason = f"skipped: {symbol} is not listed by source {source.name!r}"
    else:
        summary = fetch_to_store(
            source, store, [symbol], timeframe, since=since, until=until, on_error="skip"
        )
        if not summary.failed:
            return summary.rows_added, "fetched"
        reason = f"skipped: {summary.failed[symbol]}"
    get_logger(__name__).warning(
        "btc_reference_skipped",
        symbol=symbol,
        timeframe=timeframe,
        reason=reason,
        effect="training and Hamilton run without the BTC features (they are optional)",
    )
    return 0, reason
