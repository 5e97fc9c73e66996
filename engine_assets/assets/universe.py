"""coin_universe -> liquidity_ranking: which coins the day trains and trades."""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import polars as pl

from engine_assets.logging import bind_run
from engine_assets.partitions import (
    coin_partitions,
    daily_partitions,
    partition_days,
    single_run_backfill,
)
from engine_assets.resources import BrainLibraryResource, EngineConfigResource, MarketDataResource
from trading_core.market.parquet_store import universe_snapshot_with_quality
from trading_core.market.quality import DataQuality
from trading_core.market.ranking import liquidity_ranking as rank_universe
from trading_core.market.universe_store import (
    load_snapshot_quality,
    load_universe_snapshot,
    save_snapshot_quality,
    save_universe_snapshot,
)


def partition_end(partition_key: str) -> datetime:
    """The close of a daily partition: data strictly before this instant belongs to the day."""
    day = datetime.strptime(partition_key, "%Y-%m-%d").replace(tzinfo=UTC)
    return day + timedelta(days=1)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    group_name="selection",
    kinds={"polars"},
    description="Snapshot of every tradable pair on the venue at the partition's close: "
    "24h volume, top-of-book spread, listing age.",
)
def coin_universe(
    context: dg.AssetExecutionContext, market: MarketDataResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    bind_run(context, market.engine_config.load())
    source, root = market.source(), market.store().root
    metadata: dict[str, Any] = {}
    for key in partition_days(context):
        as_of = partition_end(key)
        snapshot, quality = universe_snapshot_with_quality(source, as_of)
        save_universe_snapshot(root, as_of.date() - timedelta(days=1), snapshot)
        save_snapshot_quality(root, as_of.date() - timedelta(days=1), quality)
        median = float(snapshot.select(pl.col("daily_volume_usd").median()).item() or 0.0)
        context.log.info(f"universe snapshot as of {as_of.isoformat()}: {snapshot.height} pairs")
        metadata = {
            "pairs": snapshot.height,
            "as_of": as_of.isoformat(),
            "median_daily_volume_usd": median,
            **_quality_metadata(quality),
        }
    return dg.MaterializeResult(metadata={**metadata, "days": len(partition_days(context))})


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    deps=["coin_universe"],
    group_name="selection",
    kinds={"polars", "sql"},
    description="Coins ranked by the configured ranking_method after the coin_selection filters; "
    "stored in the Brain Library. Adds the selected coins as dynamic 'coins' partitions.",
)
def liquidity_ranking(
    context: dg.AssetExecutionContext,
    engine_config: EngineConfigResource,
    brain: BrainLibraryResource,
    market: MarketDataResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    config = engine_config.load()
    bind_run(context, config)
    new_coins: list[str] = []
    for key in partition_days(context):
        day = partition_end(key).date() - timedelta(days=1)
        snapshot = load_universe_snapshot(market.store().root, day)
        quality = load_snapshot_quality(market.store().root, day)
        ranking = rank_universe(
            snapshot, config.coin_selection, quote=config.engine.quote, quality=quality
        )
        brain.open().save_ranking(day, ranking.ranked, selected_top=config.engine.active_coins)
        coins = [s.split("/")[0] for s in ranking.ranked["symbol"].to_list()]
        fresh = [
            c
            for c in coins
            if c not in new_coins and not context.instance.has_dynamic_partition("coins", c)
        ]
        if fresh:
            context.instance.add_dynamic_partitions(coin_partitions.name, fresh)
            new_coins.extend(fresh)
    active = ranking.top(config.engine.active_coins)
    return dg.MaterializeResult(
        metadata={
            "ranked_coins": ranking.ranked.height,
            "active_coins": active.height,
            "ranking_method": config.coin_selection.ranking_method,
            "removed_by_filter": dg.MetadataValue.json(dict(ranking.removed_by_filter)),
            "top_coins": dg.MetadataValue.md(ranking.to_markdown(25)),
            "new_coin_partitions": len(new_coins),
            **_quality_metadata(quality),
        }
    )


def _quality_metadata(quality: DataQuality) -> dict[str, Any]:
    """Candles rejected per reason and corrupt files skipped by the snapshot's reads."""
    return {
        "rejected_candles": dg.MetadataValue.json(dict(quality.rejected_candles)),
        "rejected_candles_total": sum(quality.rejected_candles.values()),
        "corrupt_files_skipped": dg.MetadataValue.json(list(quality.corrupt_files)),
    }
