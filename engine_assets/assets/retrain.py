"""coin_retrain: rerun one coin (or one coin x regime x timeframe) outside the daily run.

Partitioned by the dynamic ``coins`` partitions the liquidity ranking adds. It trains, validates
and selects exactly like the daily run (same trading_core functions) as of ``as_of_date``; the
next ``brain_library_push`` releases the result.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field

from engine_assets.logging import bind_run
from engine_assets.partitions import coin_partitions
from engine_assets.resources import BrainLibraryResource, DaskResource, EngineConfigResource
from trading_core.reporting import markdown_table
from trading_core.training.orchestrate import (
    candidates_of_day,
    plan_jobs,
    record_validations,
    register_trained,
    select_best,
    train_all,
    validate_all,
)


class RetrainConfig(dg.Config):
    """Narrow the rerun; empty lists mean every configured regime / timeframe."""

    as_of_date: str = ""  # YYYY-MM-DD (the daily partition whose data to use); default yesterday
    regimes: list[str] = Field(default_factory=list)
    timeframes: list[str] = Field(default_factory=list)


@dg.asset(
    partitions_def=coin_partitions,
    group_name="training",
    kinds={"xgboost", "dask"},
    description="Retrain, validate and select one coin (optionally one regime/timeframe).",
)
def coin_retrain(
    context: dg.AssetExecutionContext,
    config: RetrainConfig,
    engine_config: EngineConfigResource,
    brain: BrainLibraryResource,
    dask: DaskResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    settings = engine_config.load()
    bind_run(context, settings)
    day = (
        datetime.strptime(config.as_of_date, "%Y-%m-%d").replace(tzinfo=UTC).date()
        if config.as_of_date
        else (datetime.now(UTC) - timedelta(days=1)).date()
    )
    as_of = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    symbol = f"{context.partition_key}/{settings.engine.quote}"
    library = brain.open()
    with dask.client() as (client, plan):
        jobs = plan_jobs(
            [symbol],
            settings,
            as_of=as_of,
            partition_date=str(day),
            store_root=settings.data.store_path,
            device=plan.device,
            regimes=config.regimes or None,
            timeframes=config.timeframes or None,
        )
        trained = train_all(client, jobs, settings, resources=plan.task_resources)
        register_trained(
            library,
            list(trained.results),
            partition_date=day,
            created_at=datetime.now(UTC).replace(microsecond=0),
        )
        versions = {
            slug: v
            for slug, v in candidates_of_day(library, day).items()
            if v.key.coin == context.partition_key
            and (not config.regimes or v.key.regime in config.regimes)
            and (not config.timeframes or v.key.timeframe in config.timeframes)
        }
        validated = validate_all(client, jobs, settings, resources=plan.task_resources)
    # judge each key on the version that now carries its validation (the one read above
    # predates it and would read as "not validated")
    recorded = record_validations(library, list(validated.results), versions)
    versions |= {v.key.slug: v for v in recorded}
    selections = select_best(library, versions, settings)
    rows = [
        {"key": s.key, "stage": s.stage.value, "reason": s.reason}
        for s in selections
        if s.key in versions
    ]
    failures = [*trained.failures, *validated.failures]
    if failures:
        raise dg.Failure(
            description=f"{len(failures)} keys failed",
            metadata={"errors": dg.MetadataValue.json({f.slug: f.error for f in failures})},
        )
    return dg.MaterializeResult(
        metadata={
            "as_of_date": str(day),
            "keys": dg.MetadataValue.md(markdown_table(rows, ["key", "stage", "reason"])),
        }
    )
