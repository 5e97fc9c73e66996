"""Asset checks of the daily DAG. Blocking checks stop the downstream assets of the run.

The checks declare no ``partitions_def`` (a partitioned ``AssetCheckSpec`` is a Dagster preview
feature and printed a ``PreviewWarning`` on every ``dagster`` command): each runs in the run of
its asset and reads that run's partition keys (one day, or every day of a single-run backfill)
through :func:`~engine_assets.partitions.partition_days`, as before."""

from datetime import timedelta

import dagster as dg
import numpy as np
import polars as pl

from engine_assets.assets.universe import partition_end
from engine_assets.partitions import partition_days
from engine_assets.resources import BrainLibraryResource, EngineConfigResource, MarketDataResource
from trading_core.features import FEATURE_COLUMNS, compute_features, warmup_bars
from trading_core.market.parquet_store import ParquetStore
from trading_core.market.universe_store import load_universe_snapshot
from trading_core.training.universe import active_symbols
from trading_core.validation.leakage import feature_causality_problems

CAUSALITY_CUTS = 3


@dg.asset_check(
    asset="coin_universe",
    blocking=True,
    description="The universe snapshot has pairs with volume and spread.",
)
def coin_universe_not_empty(
    context: dg.AssetCheckExecutionContext, market: MarketDataResource
) -> dg.AssetCheckResult:
    usable: dict[str, int] = {}
    for key in partition_days(context):
        day = partition_end(key).date() - timedelta(days=1)
        snapshot = load_universe_snapshot(market.store().root, day)
        usable[key] = snapshot.filter(pl.col("daily_volume_usd") > 0).height
    return dg.AssetCheckResult(
        passed=all(n > 0 for n in usable.values()),
        metadata={"pairs_with_volume": dg.MetadataValue.json(usable)},
    )


def _sample_bars(
    context: dg.AssetCheckExecutionContext,
    engine_config: EngineConfigResource,
    brain: BrainLibraryResource,
) -> tuple[str, pl.DataFrame]:
    config = engine_config.load()
    as_of = partition_end(partition_days(context)[-1])
    ranking = brain.open().load_ranking(as_of.date() - timedelta(days=1))
    symbol = active_symbols(ranking, 1, quote=config.engine.quote)[0]
    store = ParquetStore(config.data.store_path, endpoint_url=config.storage.endpoint_url)
    timeframe = config.engine.timeframes[0]
    start = as_of - timedelta(days=config.data.history_days)
    return symbol, store.read_clean(symbol, timeframe, start=start, end=as_of).frame


@dg.asset_check(
    asset="trained_models",
    blocking=True,
    description="Every feature recomputed on data truncated at t equals the "
    "original at t (the top coin, several cut points).",
)
def features_causal(
    context: dg.AssetCheckExecutionContext,
    engine_config: EngineConfigResource,
    brain: BrainLibraryResource,
) -> dg.AssetCheckResult:
    symbol, bars = _sample_bars(context, engine_config, brain)
    start = min(warmup_bars() + 1, bars.height - 1)
    cuts = np.linspace(start, bars.height - 1, CAUSALITY_CUTS).astype(int).tolist()
    problems = feature_causality_problems(
        bars, compute_features, columns=FEATURE_COLUMNS, cut_points=cuts
    )
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={
            "symbol": symbol,
            "cut_points": dg.MetadataValue.json(cuts),
            "problems": dg.MetadataValue.json(problems[:20]),
        },
    )


@dg.asset_check(
    asset="trained_models",
    blocking=True,
    description="No NaN/inf in the features after their warm-up.",
)
def features_finite(
    context: dg.AssetCheckExecutionContext,
    engine_config: EngineConfigResource,
    brain: BrainLibraryResource,
) -> dg.AssetCheckResult:
    symbol, bars = _sample_bars(context, engine_config, brain)
    warm = compute_features(bars).slice(warmup_bars())
    bad = {
        c: int(n)
        for c in FEATURE_COLUMNS
        if (n := warm.select(pl.col(c).is_null() | ~pl.col(c).is_finite()).sum().item())
    }
    return dg.AssetCheckResult(
        passed=not bad, metadata={"symbol": symbol, "non_finite": dg.MetadataValue.json(bad)}
    )
