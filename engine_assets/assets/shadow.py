"""shadow_evaluation: best_models -> shadow_evaluation -> brain_library_push.

Each day, before the push: production models whose live performance breached the
``shadow_testing.auto_rollback`` floor are rolled back, then every challenger in shadow is
promoted, kept waiting or rejected from the shadow periods Hamilton recorded
(``trading_core.shadow.evaluation`` holds the rules; this asset only wires and reports). The
push that follows releases the resulting production and shadow set. The partition fixes the end
of the auto-rollback window; the challengers are judged on all evidence recorded so far.
"""

import dagster as dg

from engine_assets.assets.universe import partition_end
from engine_assets.logging import bind_run
from engine_assets.partitions import daily_partitions, partition_days, single_run_backfill
from engine_assets.resources import BrainLibraryResource, EngineConfigResource
from trading_core.reporting import markdown_table
from trading_core.shadow.evaluation import (
    RollbackReview,
    ShadowReview,
    auto_rollback_production,
    evaluate_shadow_models,
)

VERDICT_COLUMNS = (
    "key",
    "challenger",
    "decision",
    "bars",
    "trades (champion/challenger)",
    "sharpe champion",
    "sharpe challenger",
    "p mean diff",
    "p sharpe",
    "reasons",
)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    deps=["best_models"],
    group_name="release",
    kinds={"sql", "scipy"},
    description="Auto-rollback of production models that breached the live drawdown/Sharpe "
    "floor, then per challenger in shadow: promote / keep waiting / reject from the paired "
    "Hamilton shadow returns (HAC mean-difference and Sharpe-difference tests); every decision "
    "with its statistics in the stage history.",
)
def shadow_evaluation(
    context: dg.AssetExecutionContext,
    engine_config: EngineConfigResource,
    brain: BrainLibraryResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    config = engine_config.load()
    bind_run(context, config)
    library = brain.open()
    rollbacks = auto_rollback_production(
        library, config, as_of=partition_end(partition_days(context)[-1])
    )
    reviews = evaluate_shadow_models(library, config) if config.shadow_testing.enabled else []
    if not config.shadow_testing.enabled:
        context.log.info("shadow_testing.enabled is false: challengers are not evaluated")
    counts = {d: sum(r.decision == d for r in reviews) for d in ("promote", "wait", "reject")}
    return dg.MaterializeResult(
        metadata={
            "challengers": len(reviews),
            **{f"decisions_{d}": n for d, n in counts.items()},
            "rolled_back": sum(r.restored is not None for r in rollbacks),
            "verdicts": dg.MetadataValue.md(
                markdown_table([verdict_row(r) for r in reviews], VERDICT_COLUMNS)
            ),
            "auto_rollback": dg.MetadataValue.md(
                markdown_table(
                    [rollback_row(r) for r in rollbacks],
                    ["key", "model", "breached", "restored", "max_dd_pct", "sharpe", "reasons"],
                )
            ),
        }
    )


def verdict_row(review: ShadowReview) -> dict[str, object]:
    """One line of the verdict table (the asset's metadata and the demo's printout)."""
    stats = review.statistics
    return {
        "key": review.key,
        "challenger": review.challenger,
        "decision": review.decision,
        "bars": stats.get("n_periods"),
        "trades (champion/challenger)": (
            f"{_int(stats.get('n_trades_champion'))}/{_int(stats.get('n_trades_challenger'))}"
        ),
        "sharpe champion": stats.get("sharpe_champion_annualized"),
        "sharpe challenger": stats.get("sharpe_challenger_annualized"),
        "p mean diff": stats.get("p_value_mean_difference"),
        "p sharpe": stats.get("p_value_sharpe"),
        "reasons": "; ".join(review.reasons),
    }


def rollback_row(review: RollbackReview) -> dict[str, object]:
    return {
        "key": review.key,
        "model": review.model,
        "breached": review.breached,
        "restored": review.restored or "",
        "max_dd_pct": review.max_drawdown_pct,
        "sharpe": review.sharpe_annualized,
        "reasons": "; ".join(review.reasons),
    }


def _int(value: object) -> str:
    return "-" if value is None else str(int(float(value)))  # type: ignore[arg-type]
