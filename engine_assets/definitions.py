"""The Dagster code location: ``dagster dev -m engine_assets.definitions``."""

import dagster as dg

from engine_assets.assets.ingest import ohlcv
from engine_assets.assets.leaderboard import engine_leaderboard
from engine_assets.assets.release import best_models, brain_library_push
from engine_assets.assets.retrain import coin_retrain
from engine_assets.assets.shadow import shadow_evaluation
from engine_assets.assets.training import trained_models, walk_forward_metrics
from engine_assets.assets.universe import coin_universe, liquidity_ranking
from engine_assets.checks import coin_universe_not_empty, features_causal, features_finite
from engine_assets.logging import engine_console_logger
from engine_assets.resources import (
    BrainLibraryResource,
    DaskResource,
    EngineConfigResource,
    MarketDataResource,
)
from engine_assets.schedules import (
    daily_training_job,
    daily_training_schedule,
    leaderboard_job,
    release_push_job,
    weekly_leaderboard_schedule,
)
from engine_assets.sensors import DAILY_SENSORS

DAILY_ASSETS = [
    coin_universe,
    liquidity_ranking,
    ohlcv,
    trained_models,
    walk_forward_metrics,
    best_models,
    shadow_evaluation,
    brain_library_push,
]


def build_resources(*, dask_processes: bool = True) -> dict[str, dg.ConfigurableResource]:  # type: ignore[type-arg]
    config = EngineConfigResource()
    return {
        "engine_config": config,
        "brain": BrainLibraryResource(engine_config=config),
        "market": MarketDataResource(engine_config=config),
        "dask": DaskResource(engine_config=config, processes=dask_processes),
    }


defs = dg.Definitions(
    assets=[*DAILY_ASSETS, engine_leaderboard, coin_retrain],
    asset_checks=[coin_universe_not_empty, features_causal, features_finite],
    jobs=[daily_training_job, release_push_job, leaderboard_job],
    schedules=[daily_training_schedule, weekly_leaderboard_schedule],
    sensors=[*DAILY_SENSORS],
    resources=build_resources(),
    loggers={"console": engine_console_logger},
)
