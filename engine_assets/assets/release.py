"""best_models -> (shadow_evaluation) -> brain_library_push: stage decisions and the day's
release."""

from collections import Counter
from datetime import timedelta
from typing import Any

import dagster as dg

from engine_assets.assets.universe import partition_end
from engine_assets.logging import bind_run
from engine_assets.partitions import daily_partitions, partition_days, single_run_backfill
from engine_assets.resources import BrainLibraryResource, EngineConfigResource
from engine_assets.sensors import training_day_verdict
from trading_core.reporting import markdown_table
from trading_core.training.orchestrate import candidates_of_day, push_release, select_best
from trading_core.types import Stage

SHADOW_ASSET = dg.AssetKey("shadow_evaluation")


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    deps=["walk_forward_metrics"],
    group_name="release",
    kinds={"sql"},
    description="Per key: the promotion gate (out-of-sample Sharpe after costs, PSR, "
    "Benjamini-Hochberg over the day's trials, DSR); first model through the gate -> "
    "production, a challenger significantly better on the same days -> shadow.",
)
def best_models(
    context: dg.AssetExecutionContext,
    engine_config: EngineConfigResource,
    brain: BrainLibraryResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    config = engine_config.load()
    bind_run(context, config)
    library = brain.open()
    selections = [
        selection
        for key in partition_days(context)
        for selection in select_best(
            library,
            candidates_of_day(library, partition_end(key).date() - timedelta(days=1)),
            config,
        )
    ]
    counts = Counter(s.stage.value for s in selections)
    gated = [s.gate for s in selections if s.gate is not None]
    rows = [
        {"key": s.key, "model": s.model, "stage": s.stage.value, "reason": s.reason}
        for s in selections
    ]
    best = sorted(
        (m for m in library.list_models(stage=Stage.PRODUCTION)),
        key=lambda m: -float(m.metrics.get("oos_sharpe", float("-inf"))),
    )[:10]
    return dg.MaterializeResult(
        metadata={
            "stages": dg.MetadataValue.json(dict(counts)),
            "production_models": len(library.list_models(stage=Stage.PRODUCTION)),
            "shadow_models": len(library.list_models(stage=Stage.SHADOW)),
            "decisions": dg.MetadataValue.md(
                markdown_table(rows, ["key", "model", "stage", "reason"])
            ),
            "best_production": dg.MetadataValue.md(
                markdown_table(
                    [
                        {
                            "model": m.name,
                            "oos_sharpe": m.metrics.get("oos_sharpe"),
                            "oos_sharpe_se": m.metrics.get("oos_sharpe_se"),
                            "oos_edge_after_cost_bps": m.metrics.get("oos_edge_after_cost_bps"),
                            "oos_n_trades": m.metrics.get("oos_n_trades"),
                            "p_adjusted": m.metrics.get("oos_p_adjusted"),
                            "dsr": m.metrics.get("oos_dsr"),
                        }
                        for m in best
                    ],
                    [
                        "model",
                        "oos_sharpe",
                        "oos_sharpe_se",
                        "oos_edge_after_cost_bps",
                        "oos_n_trades",
                        "p_adjusted",
                        "dsr",
                    ],
                )
            ),
            "gate_passed": sum(g.passed for g in gated),
            "gate_failed": sum(not g.passed for g in gated),
            "gate_trials": max((g.n_trials for g in gated), default=0),
            "gate_method": config.validation.promotion_gate.method,
            "gate_alpha": config.validation.promotion_gate.alpha,
        }
    )


def _refuse_failed_days(context: dg.AssetExecutionContext, days: list[str]) -> None:
    """Fail loudly unless each day's training succeeded: the day's newest ``daily_training``
    run ended SUCCESS with no failed ERROR check, or (no such run: the demo and ad-hoc runs
    materialize asset by asset) the day's ``shadow_evaluation`` was materialized. Upstream in
    this same run is enough: Dagster runs the push only after it succeeded."""
    if SHADOW_ASSET in (context.run.asset_selection or set()):
        return
    for day in days:
        found = training_day_verdict(context.instance, day)
        if found is not None:
            run_id, verdict = found
            if verdict.status == "success":
                continue
            raise dg.Failure(
                f"refusing to push partition {day}: its newest daily_training run {run_id} "
                f"ended {verdict.status} ({verdict.failed_step or 'run'}: {verdict.error}); "
                "rerun daily_training for the day, the push follows it"
            )
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=SHADOW_ASSET, asset_partitions=[day]), limit=1
        ).records
        if not records:
            raise dg.Failure(
                f"refusing to push partition {day}: no daily_training run and no "
                "shadow_evaluation materialization for it (the day was never trained)"
            )


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    deps=["shadow_evaluation"],
    group_name="release",
    kinds={"sql"},
    description="The day's release (every production and shadow model plus the regime-gate "
    "overrides), written atomically; the set Hamilton follows. Runs after a successful "
    "daily_training (chained by a sensor) and refuses a day whose training failed. Content equal "
    "to the latest release writes nothing (outcome unchanged); a day older than the latest "
    "release is refused (refused_older_day).",
)
def brain_library_push(
    context: dg.AssetExecutionContext,
    engine_config: EngineConfigResource,
    brain: BrainLibraryResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    config = engine_config.load()
    bind_run(context, config)
    days = partition_days(context)
    _refuse_failed_days(context, days)
    if not config.training.model_versioning.daily_push_enabled:
        context.log.warning("daily_push_enabled is false: no release written")
        return dg.MaterializeResult(
            metadata={"release_id": None, "skipped": True, "outcome": "nothing_to_release"}
        )
    outcomes = [
        push_release(
            brain.open(),
            partition_end(key).date() - timedelta(days=1),
            note=f"daily push for partition {key}",
        )
        for key in days
    ]
    outcome = outcomes[-1]
    release = outcome.release
    metadata: dict[str, Any] = {
        "outcome": outcome.status,
        "outcomes": dg.MetadataValue.json(
            {k: o.status for k, o in zip(days, outcomes, strict=True)}
        ),
        "release_id": None if release is None else release.id,
    }
    if outcome.status == "nothing_to_release" or release is None:
        context.log.warning("no production or shadow model yet: nothing to release")
        return dg.MaterializeResult(metadata={**metadata, "skipped": True})
    if outcome.status == "refused_older_day":
        context.log.warning(
            f"release of {outcome.release_date} refused: the latest release is of "
            f"{release.release_date} (a newer day); nothing written"
        )
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "release_date": str(release.release_date),
            "production": len(release.production),
            "shadow": len(release.shadow),
            "content_sha256": release.content_sha256,
            "gate_overrides": dg.MetadataValue.json(dict(release.gates or {})),
        }
    )
