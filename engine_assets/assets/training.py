"""trained_models -> walk_forward_metrics: the two Dask fan-outs of the daily run."""

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from engine_assets.assets.universe import partition_end
from engine_assets.logging import bind_run
from engine_assets.partitions import daily_partitions, partition_days, single_run_backfill
from engine_assets.resources import BrainLibraryResource, DaskResource, EngineConfigResource
from trading_core.reporting import equity_curves_png, markdown_table, sharpe_heatmap_png
from trading_core.training.evaluate import KeyValidation
from trading_core.training.orchestrate import (
    StepReport,
    candidates_of_day,
    merge_reports,
    plan_jobs,
    record_validations,
    register_trained,
    train_all,
    validate_all,
)
from trading_core.training.train import KeyTraining
from trading_core.training.universe import active_symbols
from trading_core.types import bars_per_year, timeframe_ms
from trading_core.validation.leakage import purge_covers_horizon, split_leakage_problems


def _png_md(png: bytes, alt: str) -> dg.MetadataValue:
    encoded = base64.b64encode(png).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    deps=["ohlcv"],
    group_name="training",
    kinds={"xgboost", "dask"},
    check_specs=[dg.AssetCheckSpec("no_failed_keys", asset="trained_models")],
    description="One XGBoost forward-return model per active coin x regime x timeframe, trained "
    "on Dask workers and registered in the Brain Library as a candidate.",
)
def trained_models(
    context: dg.AssetExecutionContext,
    engine_config: EngineConfigResource,
    brain: BrainLibraryResource,
    dask: DaskResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    config = engine_config.load()
    bind_run(context, config)
    library = brain.open()
    reports, registered = [], 0
    with dask.client() as (client, plan):
        for key in partition_days(context):
            as_of = partition_end(key)
            ranking = library.load_ranking(as_of.date() - timedelta(days=1))
            symbols = active_symbols(ranking, config.engine.active_coins, quote=config.engine.quote)
            jobs = plan_jobs(
                symbols,
                config,
                as_of=as_of,
                partition_date=key,
                store_root=config.data.store_path,
                device=plan.device,
            )
            reports.append(train_all(client, jobs, config, resources=plan.task_resources))
            registered += len(
                register_trained(
                    library,
                    list(reports[-1].results),
                    partition_date=as_of.date() - timedelta(days=1),
                    created_at=datetime.now(UTC).replace(microsecond=0),
                )
            )
    report = merge_reports(reports)
    trained: list[KeyTraining] = list(report.results)
    return dg.MaterializeResult(
        metadata=_training_metadata(trained, report, plan.device, registered),
        check_results=[_failure_check("trained_models", report)],
    )


def _training_metadata(
    trained: list[KeyTraining], report: StepReport, device: str, registered: int
) -> dict[str, Any]:
    fits = [t for t in trained if t.status == "trained"]
    fit_s = sum(t.fit_s for t in fits)
    rows = [
        {"key": t.slug, "status": t.status, "rows": t.n_rows, "fit_s": t.fit_s, "reason": t.reason}
        for t in trained
    ] + [{"key": f.slug, "status": f.status, "reason": f.error} for f in report.failures]
    return {
        "models_trained": len(fits),
        "models_skipped": sum(1 for t in trained if t.status == "skipped"),
        "models_failed": len(report.failures),
        "models_registered": registered,
        "device": device,
        "wall_seconds": round(report.wall_s, 3),
        "sum_fit_seconds": round(fit_s, 3),
        "fits_per_second": round(len(fits) / report.wall_s, 3) if report.wall_s else 0.0,
        "keys": dg.MetadataValue.md(
            markdown_table(rows, ["key", "status", "rows", "fit_s", "reason"])
        ),
    }


def _failure_check(asset: str, report: StepReport) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name="no_failed_keys",
        passed=not report.failures,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "failed": len(report.failures),
            "errors": dg.MetadataValue.json({f.slug: f.error for f in report.failures}),
        },
    )


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    deps=["trained_models"],
    group_name="training",
    kinds={"xgboost", "dask"},
    check_specs=[
        dg.AssetCheckSpec("no_failed_keys", asset="walk_forward_metrics"),
        dg.AssetCheckSpec("no_train_test_overlap", asset="walk_forward_metrics", blocking=True),
        dg.AssetCheckSpec(
            "label_horizon_within_purge", asset="walk_forward_metrics", blocking=True
        ),
        dg.AssetCheckSpec("min_windows", asset="walk_forward_metrics"),
    ],
    description="Purged walk-forward validation of the day's candidates: each test window "
    "simulated with the cost- and risk-aware backtest; metrics stored with the models.",
)
def walk_forward_metrics(
    context: dg.AssetExecutionContext,
    engine_config: EngineConfigResource,
    brain: BrainLibraryResource,
    dask: DaskResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    config = engine_config.load()
    bind_run(context, config)
    library = brain.open()
    reports = []
    with dask.client() as (client, plan):
        for key in partition_days(context):
            as_of = partition_end(key)
            versions = candidates_of_day(library, as_of.date() - timedelta(days=1))
            jobs = _validation_jobs(versions, config, as_of=as_of, day=key, device=plan.device)
            reports.append(validate_all(client, jobs, config, resources=plan.task_resources))
            record_validations(library, list(reports[-1].results), versions)
    report = merge_reports(reports)
    validations: list[KeyValidation] = list(report.results)
    return dg.MaterializeResult(
        metadata=_validation_metadata(validations, report),
        check_results=[
            _failure_check("walk_forward_metrics", report),
            *_leakage_checks(validations, config),
        ],
    )


def _validation_jobs(
    versions: dict[str, Any], config: Any, *, as_of: datetime, day: str, device: Any
) -> list[Any]:
    """One job per coin x timeframe with the regimes that have a candidate that day."""
    by_coin: dict[tuple[str, str], list[str]] = {}
    for version in versions.values():
        by_coin.setdefault((version.key.coin, version.key.timeframe), []).append(version.key.regime)
    return [
        job
        for (coin, tf), regimes in sorted(by_coin.items())
        for job in plan_jobs(
            [f"{coin}/{config.engine.quote}"],
            config,
            as_of=as_of,
            partition_date=day,
            store_root=config.data.store_path,
            device=device,
            regimes=sorted(regimes),
            timeframes=[tf],
        )
    ]


def _validation_metadata(validations: list[KeyValidation], report: StepReport) -> dict[str, Any]:
    rows = [
        {
            "key": v.slug,
            "eligible": v.eligible,
            "windows": v.metrics().get("oos_windows"),
            **{
                k: v.overall.get(k)
                for k in ("sharpe", "max_drawdown", "hit_rate", "edge_after_cost_bps", "n_trades")
            },
            "reason": v.reason,
        }
        for v in validations
    ]
    curves = {v.slug: (v.equity_ms, v.equity_usd) for v in validations if v.equity_usd}
    sharpe = {
        (v.coin, v.regime): v.overall["sharpe"]
        for v in validations
        if v.overall and v.timeframe == "1h"
    }
    columns = [
        "key",
        "eligible",
        "windows",
        "sharpe",
        "max_drawdown",
        "hit_rate",
        "edge_after_cost_bps",
        "n_trades",
        "reason",
    ]
    return {
        "keys_validated": sum(1 for v in validations if v.status == "validated"),
        "keys_eligible": sum(1 for v in validations if v.eligible),
        "keys_failed": len(report.failures),
        "wall_seconds": round(report.wall_s, 3),
        "walk_forward_summary": dg.MetadataValue.md(markdown_table(rows, columns)),
        "oos_equity": _png_md(
            equity_curves_png(curves, title="Out-of-sample equity (walk-forward test spans)"),
            "out-of-sample equity",
        ),
        "sharpe_heatmap": _png_md(
            sharpe_heatmap_png(sharpe, title="OOS Sharpe, 1h, coin x regime"), "Sharpe heatmap"
        ),
    }


def _leakage_checks(validations: list[KeyValidation], config: Any) -> list[dg.AssetCheckResult]:
    horizon = config.training.model.label_horizon_bars
    overlap: list[str] = []
    for v in validations:
        if v.timestamps_ms is None or v.label_end_ms is None:
            continue
        # the labels' real end times (gaps included), not an assumed t + horizon
        overlap.extend(
            f"{v.slug}: {p}"
            for p in split_leakage_problems(v.splits, v.timestamps_ms, label_end_ms=v.label_end_ms)
        )
    purge = [
        f"{tf}: {problem}"
        for tf in config.engine.timeframes
        if (
            problem := purge_covers_horizon(
                config.validation.walk_forward, bar_ms=timeframe_ms(tf), label_horizon_bars=horizon
            )
        )
    ]
    short = [v.slug for v in validations if not v.eligible]
    asset = "walk_forward_metrics"
    return [
        dg.AssetCheckResult(
            asset_key=asset,
            check_name="no_train_test_overlap",
            passed=not overlap,
            metadata={"problems": dg.MetadataValue.json(overlap[:50])},
        ),
        dg.AssetCheckResult(
            asset_key=asset,
            check_name="label_horizon_within_purge",
            passed=not purge and not overlap,
            metadata={"problems": dg.MetadataValue.json(purge)},
        ),
        dg.AssetCheckResult(
            asset_key=asset,
            check_name="min_windows",
            passed=not short,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "not_eligible": dg.MetadataValue.json(short[:100]),
                "bars_per_year_1h": bars_per_year("1h"),
            },
        ),
    ]
