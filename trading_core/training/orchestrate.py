"""The daily training run as plain functions (Dagster only wires them): plan the coin jobs, fan
them out on Dask, register what was trained, record validations, pick the best model per key and
write the day's release.
"""

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from trading_core.brain import BrainLibrary, ModelKey, ModelVersion
from trading_core.brain.push import push_current_stages
from trading_core.brain.releases import PushOutcome
from trading_core.config.models import EngineConfig
from trading_core.observability.logging import get_logger
from trading_core.training.distributed import JobOutcome, run_jobs
from trading_core.training.evaluate import KeyValidation, validate_coin
from trading_core.training.gate import GateVerdict, KeyEvidence, judge_keys
from trading_core.training.jobs import CoinJob
from trading_core.training.selection import choose_stage, compare_with_champion
from trading_core.training.significance import SharpeEvidence
from trading_core.training.train import KeyTraining, train_coin
from trading_core.types import Stage, bars_per_year

if TYPE_CHECKING:  # distributed is imported where a cluster is opened or waited on: at module
    # level it costs every process importing the training package (each Dagster step) ~0.6 s
    from distributed import Client

log = get_logger(__name__)
ACTOR = "training-dag"


@dataclass(frozen=True)
class KeyFailure:
    slug: str
    status: Literal["failed", "timeout"]
    error: str


@dataclass(frozen=True)
class StepReport:
    """What one fan-out produced: per-key results and failures (never silently dropped)."""

    results: tuple[Any, ...]
    failures: tuple[KeyFailure, ...]
    wall_s: float
    task_s: tuple[float, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def merge_reports(reports: Sequence[StepReport]) -> StepReport:
    """One report for several days of a single-run backfill."""
    return StepReport(
        results=tuple(r for report in reports for r in report.results),
        failures=tuple(f for report in reports for f in report.failures),
        wall_s=sum(report.wall_s for report in reports),
        task_s=tuple(t for report in reports for t in report.task_s),
    )


def plan_jobs(
    symbols: Sequence[str],
    config: EngineConfig,
    *,
    as_of: datetime,
    partition_date: str,
    store_root: str,
    device: Literal["cpu", "cuda"],
    regimes: Sequence[str] | None = None,
    timeframes: Sequence[str] | None = None,
) -> list[CoinJob]:
    """One job per coin x timeframe, biggest coins first (they take longest)."""
    wanted_regimes = tuple(regimes or config.training.regimes)
    return [
        CoinJob(
            symbol=symbol,
            timeframe=tf,
            as_of=as_of,
            partition_date=partition_date,
            store_root=store_root,
            config=config,
            regimes=wanted_regimes,
            device=device,
        )
        for symbol in symbols
        for tf in (timeframes or config.engine.timeframes)
    ]


def fan_out(
    client: "Client",
    jobs: Sequence[CoinJob],
    fn: Callable[[CoinJob], list[Any]],
    config: EngineConfig,
    *,
    on_done: Callable[[JobOutcome[list[Any]]], None] | None = None,
    resources: Mapping[str, float] | None = None,
) -> StepReport:
    """Run ``fn`` per job on Dask; a failed job becomes a failure of each of its keys.
    ``resources`` (the plan's ``task_resources``) keeps GPU jobs on GPU workers."""
    section = config.training.distributed
    started = time.monotonic()
    outcomes = run_jobs(
        client,
        jobs,
        fn,
        key_of=lambda job: job.key,
        max_in_flight=section.max_concurrent_training_jobs,
        timeout_s=section.timeout_seconds,
        retry_attempts=section.retry_attempts,
        on_done=on_done,
        resources=resources,
    )
    results: list[Any] = []
    failures: list[KeyFailure] = []
    for job, outcome in zip(jobs, outcomes, strict=True):
        if outcome.status == "ok" and outcome.result is not None:
            results.extend(outcome.result)
            continue
        status: Literal["failed", "timeout"] = (
            "timeout" if outcome.status == "timeout" else "failed"
        )
        for regime in job.regimes:
            slug = f"{job.coin}_{regime}_{job.timeframe}"
            failures.append(KeyFailure(slug, status, outcome.error or status))
            log.error("training_key_failed", key=slug, status=status, error=outcome.error)
    return StepReport(
        results=tuple(results),
        failures=tuple(failures),
        wall_s=time.monotonic() - started,
        task_s=tuple(o.wall_s for o in outcomes),
    )


def train_all(
    client: "Client", jobs: Sequence[CoinJob], config: EngineConfig, **kw: Any
) -> StepReport:
    return fan_out(client, jobs, train_coin, config, **kw)


def validate_all(
    client: "Client", jobs: Sequence[CoinJob], config: EngineConfig, **kw: Any
) -> StepReport:
    return fan_out(client, jobs, validate_coin, config, **kw)


def register_trained(
    library: BrainLibrary,
    trained: Sequence[KeyTraining],
    *,
    partition_date: date,
    created_at: datetime,
) -> list[ModelVersion]:
    """Every trained key becomes a candidate version (idempotent for identical data+params)."""
    versions = []
    for item in trained:
        if item.status != "trained" or item.model is None:
            continue
        version = library.register_model(
            ModelKey(item.coin, item.regime, item.timeframe),
            item.model.artifact,
            metrics={
                "train_rows": float(item.model.n_train_rows),
                "train_rmse_bps": item.model.train_rmse_bps,
                "fit_seconds": item.fit_s,
            },
            params=item.model.params,
            feature_list=list(item.model.feature_names),
            data_hash=item.data_hash,
            partition_date=partition_date,
            created_at=created_at,
            actor=ACTOR,
        )
        if item.serving_tables:
            library.record_validation(
                version.name,
                metrics={},
                validation=dict(version.validation or {}),
                serving_tables=item.serving_tables,
            )
        versions.append(version)
    return versions


def candidates_of_day(library: BrainLibrary, partition_date: date) -> dict[str, ModelVersion]:
    """The newest version per key registered for ``partition_date`` (any stage)."""
    latest: dict[str, ModelVersion] = {}
    for model in library.list_models():
        if model.partition_date != partition_date:
            continue
        current = latest.get(model.key.slug)
        if current is None or model.version > current.version:
            latest[model.key.slug] = model
    return latest


def record_validations(
    library: BrainLibrary, validations: Sequence[KeyValidation], versions: dict[str, ModelVersion]
) -> list[ModelVersion]:
    """Attach each key's out-of-sample results to the day's version of that key."""
    updated = []
    for item in validations:
        version = versions.get(item.slug)
        if version is None:
            continue
        payload = {
            "status": item.status,
            "reason": item.reason,
            "eligible": item.eligible,
            "windows": [_json_safe(w) for w in item.windows],
            "overall": _json_safe(item.overall),
            "hit_rates": item.hit_rates,
            "equity_daily": _daily_points(item.equity_ms, item.equity_usd),
        }
        updated.append(
            library.record_validation(
                version.name,
                metrics=item.metrics(),
                validation=payload,
                reliability=item.reliability or None,
                correlation=item.correlation or None,
                serving_tables=version.serving_tables,
            )
        )
    return updated


def _daily_points(times_ms: Sequence[int], equity: Sequence[float]) -> list[list[float]]:
    """The equity curve at each UTC day's last bar (small enough to keep with the model)."""
    points: dict[int, list[float]] = {}
    for t, value in zip(times_ms, equity, strict=True):
        if math.isfinite(value):  # one bad bar must not make the key's record unwritable
            points[t // 86_400_000] = [float(t), float(value)]
    return list(points.values())


def _json_safe(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()
    }


@dataclass(frozen=True)
class Selection:
    model: str
    key: str
    stage: Stage
    reason: str
    gate: GateVerdict | None = None


def select_best(
    library: BrainLibrary, versions: dict[str, ModelVersion], config: EngineConfig
) -> list[Selection]:
    """Judge the day's keys with the promotion gate, then apply the selection rule to each
    undecided version in ``versions`` (see ``selection``).

    The gate counts as trials every key registered for the versions' partition day(s), not
    only ``versions``: a one-coin retrain is judged against the whole day it belongs to."""
    rule = config.training.model_versioning
    section = config.validation.promotion_gate
    metric_key = f"oos_{rule.selection_metric}"
    trials = _day_trials(library, versions)
    verdicts = judge_keys([key_evidence(v) for v in trials.values()], section)
    outcomes = []
    for slug, version in sorted(versions.items()):
        if version.stage is not Stage.CANDIDATE:
            outcomes.append(Selection(version.name, slug, version.stage, "already decided"))
            continue
        verdict = verdicts[slug]
        library.record_gate(version.name, metrics=verdict.metrics(), gate=verdict.to_json())
        production = library.production_model(version.key)
        comparison = None
        if production is not None and verdict.passed:
            comparison = compare_with_champion(
                (version.validation or {}).get("equity_daily") or [],
                (production.validation or {}).get("equity_daily") or [],
                section,
            )
        decision = choose_stage(
            verdict,
            has_production=production is not None,
            comparison=comparison,
            candidate_metric=version.metrics.get(metric_key, math.nan),
            champion_metric=math.nan
            if production is None
            else production.metrics.get(metric_key, math.nan),
            metric=rule.selection_metric,
            min_improvement=rule.min_improvement,
            shadow_enabled=config.shadow_testing.enabled,
        )
        if decision.stage is not Stage.CANDIDATE:
            library.set_stage(version.name, decision.stage, actor=ACTOR, reason=decision.reason)
        outcomes.append(Selection(version.name, slug, decision.stage, decision.reason, verdict))
        log.info(
            "model_selected",
            key=slug,
            model=version.name,
            stage=decision.stage.value,
            gate_passed=verdict.passed,
            p_adjusted=verdict.p_adjusted,
            trials=verdict.n_trials,
        )
    return outcomes


def _day_trials(
    library: BrainLibrary, versions: dict[str, ModelVersion]
) -> dict[str, ModelVersion]:
    """Every key registered on the partition day(s) of ``versions`` (``versions`` win)."""
    trials: dict[str, ModelVersion] = {}
    for day in sorted({v.partition_date for v in versions.values() if v.partition_date}):
        trials.update(candidates_of_day(library, day))
    trials.update(versions)
    return trials


def key_evidence(version: ModelVersion) -> KeyEvidence:
    """What the gate reads of a validated version (its ``oos_`` metrics and validation)."""
    metrics, validation = version.metrics, version.validation or {}
    n_returns = int(metrics.get("oos_n_returns", 0.0))
    sharpe = metrics.get("oos_sharpe_per_bar", math.nan)
    if validation.get("status") != "validated":
        problem = str(validation.get("reason") or "not validated")
    elif not math.isfinite(sharpe):
        problem = "no usable out-of-sample return series (constant, too short or non-finite)"
    else:
        problem = ""
    evidence = SharpeEvidence(
        n_returns=n_returns,
        mean=math.nan,
        std=math.nan,
        sharpe_per_bar=sharpe,
        skewness=metrics.get("oos_return_skewness", 0.0),
        kurtosis=metrics.get("oos_return_kurtosis", 3.0),
        problem=problem,
    )
    return KeyEvidence(
        slug=version.key.slug,
        evidence=evidence,
        edge_after_cost_bps=metrics.get("oos_edge_after_cost_bps", math.nan),
        n_trades=int(metrics.get("oos_n_trades", 0.0)),
        bars_per_year=bars_per_year(version.key.timeframe),
        eligible=bool(validation.get("eligible", False)),
        ineligible_reason=str(validation.get("reason") or "not validated"),
    )


def push_release(
    library: BrainLibrary, release_date: date, *, note: str = "", created_by: str = ACTOR
) -> PushOutcome:
    """The DAG's daily push: :func:`trading_core.brain.push.push_current_stages` as the DAG."""
    return push_current_stages(library, release_date, note=note, created_by=created_by)
