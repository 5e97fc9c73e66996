"""coin_universe -> liquidity_ranking through real Dagster materializations."""

from pathlib import Path

import dagster as dg
import pytest

from engine_assets.definitions import defs
from trading_core.brain import BrainLibrary
from trading_core.config import load_config

PARTITION = "2026-10-31"


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.instance_for_test() as inst:
        yield inst


def test_liquidity_ranking_materializes_and_stores_ranking(
    isolated_engine_env: Path, instance: dg.DagsterInstance
) -> None:
    result = dg.materialize(
        [defs.get_assets_def("coin_universe"), defs.get_assets_def("liquidity_ranking")],
        partition_key=PARTITION,
        resources=defs.resources,
        instance=instance,
    )
    assert result.success
    mats = result.asset_materializations_for_node("liquidity_ranking")
    meta = mats[0].metadata
    removed = meta["removed_by_filter"].value
    assert removed["min_daily_volume_usd"] > 0 and removed["max_spread_bps"] > 0
    assert removed["min_age_days"] > 0
    assert "BTC/USDT" in meta["top_coins"].value
    config = load_config()
    library = BrainLibrary.from_config(config)
    ranking = library.load_ranking(__import__("datetime").date(2026, 10, 31))
    assert ranking.height == meta["ranked_coins"].value > config.engine.active_coins
    coins = instance.get_dynamic_partitions("coins")
    assert "BTC" in coins and len(coins) == ranking.height


def test_rerun_same_partition_is_idempotent(
    isolated_engine_env: Path, instance: dg.DagsterInstance
) -> None:
    assets = [defs.get_assets_def("coin_universe"), defs.get_assets_def("liquidity_ranking")]
    for _ in range(2):
        assert dg.materialize(
            assets, partition_key=PARTITION, resources=defs.resources, instance=instance
        ).success
    library = BrainLibrary.from_config(load_config())
    ranking = library.load_ranking(__import__("datetime").date(2026, 10, 31))
    assert ranking["symbol"].n_unique() == ranking.height
