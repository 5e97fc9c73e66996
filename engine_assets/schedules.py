"""Jobs and schedules: training at 02:00 UTC, the weekly leaderboard.

The push has no schedule: ``release_push_after_training`` (engine_assets/sensors.py) requests
``release_push`` when a ``daily_training`` run succeeds, so a failed day is never released.
"""

import dagster as dg

from engine_assets.assets.leaderboard import engine_leaderboard
from engine_assets.logging import JSON_LOGS_RUN_CONFIG

TRAINING_ASSETS = (
    "coin_universe",
    "liquidity_ranking",
    "ohlcv",
    "trained_models",
    "walk_forward_metrics",
    "best_models",
    "shadow_evaluation",
)

daily_training_job = dg.define_asset_job(
    "daily_training",
    selection=dg.AssetSelection.assets(*TRAINING_ASSETS),
    description="Rank, ingest, train (Dask fan-out), validate, select and evaluate the shadow "
    "challengers: one run per day.",
    config=JSON_LOGS_RUN_CONFIG,
)
release_push_job = dg.define_asset_job(
    "release_push",
    selection=dg.AssetSelection.assets("brain_library_push"),
    description="Write the day's release that Hamilton follows (requested by the sensor "
    "release_push_after_training once the day's daily_training run succeeded).",
    config=JSON_LOGS_RUN_CONFIG,
)
leaderboard_job = dg.define_asset_job(
    "weekly_leaderboard",
    selection=dg.AssetSelection.assets(engine_leaderboard),
    config=JSON_LOGS_RUN_CONFIG,
)

# Each schedule run targets the previous (complete) UTC day's partition.
daily_training_schedule = dg.build_schedule_from_partitioned_job(
    daily_training_job,
    hour_of_day=2,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
weekly_leaderboard_schedule = dg.build_schedule_from_partitioned_job(
    leaderboard_job,
    day_of_week=0,
    hour_of_day=1,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
