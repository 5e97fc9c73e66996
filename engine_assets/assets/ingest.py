"""ohlcv: candles of the day's active coins into the parquet store the Dask workers read."""

from datetime import timedelta

import dagster as dg

from engine_assets.assets.universe import partition_end
from engine_assets.logging import bind_run
from engine_assets.partitions import daily_partitions, partition_days, single_run_backfill
from engine_assets.resources import BrainLibraryResource, EngineConfigResource, MarketDataResource
from trading_core.market.fetch import fetch_to_store
from trading_core.training.universe import active_symbols


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    deps=["liquidity_ranking"],
    group_name="data",
    kinds={"parquet"},
    description="Ingest/update history_days of candles for the active coins (and BTC, the "
    "relative-strength reference) for every configured timeframe into the parquet store.",
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
    for key in partition_days(context):
        as_of = partition_end(key)
        ranking = brain.open().load_ranking(as_of.date() - timedelta(days=1))
        symbols = active_symbols(ranking, config.engine.active_coins, quote=config.engine.quote)
        since = as_of - timedelta(days=config.data.history_days)
        for timeframe in config.engine.timeframes:
            summary = fetch_to_store(
                source,
                store,
                [*symbols, f"BTC/{config.engine.quote}"],
                timeframe,
                since=since,
                until=as_of,
            )
            rows_added[timeframe] += summary.rows_added
        for symbol in symbols:
            store.write_funding(symbol, source.funding_rates(symbol, start=since, end=as_of))
    context.log.info(f"ohlcv: {len(symbols)} active coins, rows added {rows_added}")
    return dg.MaterializeResult(
        metadata={
            "active_coins": dg.MetadataValue.json(symbols),
            "rows_added": dg.MetadataValue.json(rows_added),
            "store": dg.MetadataValue.path(str(store.root)),
        }
    )
