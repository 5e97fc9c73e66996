"""The daily DAG in-process (``coin-engine demo`` and ``coin-engine engine run``): each asset
through Dagster, then the demo's summary and report folder (markdown + PNG plots).

Each asset of the day is materialized in turn (one Dagster run per asset, so the progress is
visible); the scheduled production path runs them as one ``daily_training`` run.
"""

import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg

from engine_assets.resources import BackgroundCluster, DaskResource
from trading_core.brain import BrainLibrary
from trading_core.config import load_config
from trading_core.reporting import equity_curves_png, markdown_table, sharpe_heatmap_png
from trading_core.types import Stage

DAILY_ORDER = (
    "coin_universe",
    "liquidity_ranking",
    "ohlcv",
    "trained_models",
    "walk_forward_metrics",
    "best_models",
    "shadow_evaluation",
    "brain_library_push",
)

# the steps that fan out on Dask (run_daily_dag holds one cluster for them)
DASK_STEPS = frozenset({"trained_models", "walk_forward_metrics"})

# the per-key walk-forward columns of the report (``oos_<name>`` metrics)
KEY_FIGURES = (
    "sharpe",
    "sharpe_se",
    "edge_after_cost_bps",
    "n_trades",
    "windows",
    "p_adjusted",
    "dsr",
)


@dataclass
class StepResult:
    asset: str
    seconds: float
    metadata: dict[str, Any] = field(default_factory=dict)


def apply_overrides(overrides: Mapping[str, str]) -> dict[str, str]:
    """Set the demo's ENGINE__ overrides unless the user set them; returns what was applied."""
    applied = {}
    for key, value in overrides.items():
        if key not in os.environ:
            os.environ[key] = value
            applied[key] = value
    return applied


def run_daily_dag(
    defs: dg.Definitions,
    partition: str,
    instance: dg.DagsterInstance,
    *,
    on_step: Callable[[str, str], None] | None = None,
    names: Sequence[str] = DAILY_ORDER,
) -> list[StepResult]:
    """Materialize the day's assets (``names``, in dependency order); stops at the first
    failure."""
    assets = [defs.get_assets_def(name) for name in DAILY_ORDER]
    checks = list(defs.asset_checks or [])
    with ExitStack() as stack:
        resources = dict(defs.resources or {})
        dask = resources.get("dask")
        cluster: BackgroundCluster | None = None
        if isinstance(dask, DaskResource) and DASK_STEPS.intersection(names):
            # one run per asset, but one cluster for all of them, started in the background
            # while the first steps run (seconds on 2 cores); both fan-outs attach to it, and
            # it is closed on the way out whatever happens
            cluster = BackgroundCluster(dask)
            stack.callback(cluster.close)
        return _run_each(assets, checks, resources, cluster, partition, instance, on_step, names)


def _run_each(
    assets: Sequence[Any],
    checks: Sequence[Any],
    resources: dict[str, Any],
    cluster: BackgroundCluster | None,
    partition: str,
    instance: dg.DagsterInstance,
    on_step: Callable[[str, str], None] | None,
    names: Sequence[str],
) -> list[StepResult]:
    results = []
    for name in names:
        if on_step:
            on_step(name, "start")
        started = time.perf_counter()
        if cluster is not None and name in DASK_STEPS:
            # a wait for the cluster counts in the step's time; a failed start raises here
            resources["dask"] = cluster.resource()
            cluster = None
        run = dg.materialize(
            [*assets, *checks],
            partition_key=partition,
            resources=resources,
            instance=instance,
            selection=dg.AssetSelection.assets(name),
            # the run's events stay in the instance's event log; the terminal shows the progress
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        metadata = {}
        for event in run.asset_materializations_for_node(name):
            metadata = {k: v.value for k, v in event.metadata.items()}
        results.append(StepResult(name, time.perf_counter() - started, metadata))
        if on_step:
            on_step(name, "done")
    return results


def summarize(
    library: BrainLibrary, partition_day: date
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    models = [m for m in library.list_models() if m.partition_date == partition_day]
    stages = dict(Counter(m.stage.value for m in models))
    production = [m for m in library.list_models(stage=Stage.PRODUCTION)]
    best = sorted(production, key=lambda m: -float(m.metrics.get("oos_sharpe", float("-inf"))))
    rows = [
        {
            "model": m.name,
            "oos_sharpe": m.metrics.get("oos_sharpe"),
            "oos_sharpe_se": m.metrics.get("oos_sharpe_se"),
            "oos_edge_after_cost_bps": m.metrics.get("oos_edge_after_cost_bps"),
            "oos_n_trades": m.metrics.get("oos_n_trades"),
            "oos_max_drawdown": m.metrics.get("oos_max_drawdown"),
            # "how likely is this luck": the multiple-testing adjusted p-value, and the DSR
            "p_adjusted": m.metrics.get("oos_p_adjusted"),
            "dsr": m.metrics.get("oos_dsr"),
            "trials": m.metrics.get("gate_trials"),
        }
        for m in best[:10]
    ]
    return stages, rows


def write_report(
    report_dir: Path,
    library: BrainLibrary,
    partition_day: date,
    steps: list[StepResult],
    stages: dict[str, int],
    best: list[dict[str, Any]],
    overrides: Mapping[str, str],
) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    models = [m for m in library.list_models() if m.partition_date == partition_day]
    sharpe = {
        (m.key.coin, m.key.regime): float(m.metrics["oos_sharpe"])
        for m in models
        if m.key.timeframe == "1h" and "oos_sharpe" in m.metrics
    }
    (report_dir / "sharpe_heatmap.png").write_bytes(
        sharpe_heatmap_png(sharpe, title="Out-of-sample Sharpe after costs (1h)")
    )
    production = {m.key.slug for m in library.list_models(stage=Stage.PRODUCTION)}
    curves = {
        m.key.slug: (
            [int(p[0]) for p in m.validation["equity_daily"]],
            [float(p[1]) for p in m.validation["equity_daily"]],
        )
        for m in models
        if m.key.slug in production and m.validation and m.validation.get("equity_daily")
    }
    (report_dir / "oos_equity.png").write_bytes(
        equity_curves_png(curves, title="Out-of-sample equity of production models")
    )
    keys = [m for m in models if m.validation and m.validation.get("overall")]
    table = [
        {
            "key": m.key.slug,
            "stage": m.stage.value,
            **{k: m.metrics.get(f"oos_{k}") for k in KEY_FIGURES},
            "reason": ((m.validation or {}).get("gate") or {}).get("reason")
            or (m.validation or {}).get("reason", ""),
        }
        for m in sorted(keys, key=lambda m: m.key.slug)
    ]
    lines = [
        f"# Daily DAG report — partition {partition_day}",
        "",
        "## Steps",
        markdown_table(
            [{"asset": s.asset, "seconds": s.seconds} for s in steps], ["asset", "seconds"]
        ),
        "",
        "## Models per stage (this partition)",
        markdown_table(
            [{"stage": k, "models": v} for k, v in sorted(stages.items())], ["stage", "models"]
        ),
        "",
        "## Best production models (out-of-sample, after costs)",
        "",
        "How likely is this luck: `p_adjusted` is the chance a model with no edge would look this "
        "good once all `trials` keys of the day are counted (Benjamini-Hochberg on the "
        "probabilistic Sharpe ratio); `dsr` is the deflated Sharpe ratio, the probability the "
        "true Sharpe beats the best of the trials' luck. See README, 'Promotion gate'.",
        "",
        markdown_table(
            best,
            [
                "model",
                "oos_sharpe",
                "oos_sharpe_se",
                "oos_edge_after_cost_bps",
                "oos_n_trades",
                "oos_max_drawdown",
                "p_adjusted",
                "dsr",
                "trials",
            ],
        ),
        "",
        "## Walk-forward per key",
        markdown_table(
            table,
            ["key", "stage", *KEY_FIGURES, "reason"],
        ),
        "",
        "![Sharpe heatmap](sharpe_heatmap.png)",
        "",
        "![Out-of-sample equity](oos_equity.png)",
        "",
        f"Demo overrides: {dict(overrides) or 'none'}",
    ]
    (report_dir / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def demo_library() -> BrainLibrary:
    library = BrainLibrary.from_config(load_config())
    library.migrate()
    return library
