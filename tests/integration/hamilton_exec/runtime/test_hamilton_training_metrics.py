"""Training status reaches Prometheus through Hamilton: stage counts follow the Brain Library."""

from collections import Counter
from datetime import timedelta
from pathlib import Path

from prometheus_client import generate_latest

from hamilton_exec.runtime.release_sensor import export_pipeline_metrics, export_training_metrics
from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from tests.integration.hamilton_fixtures import (
    full_history_symbols,
    hamilton_config,
    market,
    train_models,
)
from trading_core.brain import BrainLibrary
from trading_core.types import Stage


def _gauges(metrics: HamiltonMetrics) -> dict[str, float]:
    return {s.value: metrics.training_jobs.labels(s.value)._value.get() for s in Stage}


def test_stage_counts_follow_the_library_and_an_emptied_stage_reads_zero(tmp_path: Path) -> None:
    config = hamilton_config(tmp_path)
    source = market(config)
    library = BrainLibrary.from_config(config)
    library.migrate()
    symbols = full_history_symbols(source)[:1]
    models = train_models(
        library, config, source, symbols, train_end=source.end - timedelta(days=2)
    )
    assert models
    metrics = HamiltonMetrics(venue="binance")

    export_training_metrics(library, metrics)
    assert _gauges(metrics) == {
        s.value: float(Counter(m.stage.value for m in library.list_models())[s.value])
        for s in Stage
    }
    for model in models:
        library.set_stage(model.name, Stage.PRODUCTION, actor="tests", reason="promote")
    export_training_metrics(library, metrics)
    assert _gauges(metrics)[Stage.PRODUCTION.value] == len(models)
    assert _gauges(metrics)[Stage.CANDIDATE.value] == 0.0

    for model in models:
        library.set_stage(model.name, Stage.ARCHIVED, actor="tests", reason="retire")
    export_training_metrics(library, metrics)
    assert _gauges(metrics)[Stage.PRODUCTION.value] == 0.0
    assert _gauges(metrics)[Stage.ARCHIVED.value] == len(models)
    assert (
        metrics.training_duration.labels(models[0].key.coin, models[0].key.regime)._value.get() > 0
    )


def _verdicts(metrics: HamiltonMetrics) -> dict[str, float]:
    return {
        v: metrics.gate_verdicts.labels(v)._value.get() for v in ("passed", "failed", "not_judged")
    }


def test_gate_verdicts_of_the_newest_day_reach_prometheus(tmp_path: Path) -> None:
    config = hamilton_config(tmp_path)
    source = market(config)
    library = BrainLibrary.from_config(config)
    library.migrate()
    symbols = full_history_symbols(source)[:2]
    models = train_models(
        library, config, source, symbols, train_end=source.end - timedelta(days=2)
    )
    assert len(models) >= 2
    metrics = HamiltonMetrics(venue="binance")
    export_training_metrics(library, metrics)
    assert _verdicts(metrics) == {"passed": 0, "failed": 0, "not_judged": len(models)}
    gate = {"reason": "r", "n_trials": len(models)}
    library.record_gate(models[0].name, metrics={}, gate={**gate, "passed": True})
    for model in models[1:]:
        library.record_gate(model.name, metrics={}, gate={**gate, "passed": False})
    export_training_metrics(library, metrics)
    assert _verdicts(metrics) == {"passed": 1, "failed": len(models) - 1, "not_judged": 0}


def test_daily_run_series_before_any_run_read_zero_counts_and_no_release_timestamp(
    tmp_path: Path,
) -> None:
    """An empty run table: the counts exist at 0 (alerts and panels see a zero, not "no data"),
    the newest-run gauges and the release timestamp are absent (not a 1970 timestamp)."""
    library = BrainLibrary(f"sqlite:///{tmp_path / 'brain.db'}", tmp_path / "artifacts")
    library.migrate()
    metrics = HamiltonMetrics(venue="binance")
    export_pipeline_metrics(library, metrics)
    exposed = generate_latest(metrics.registry).decode()
    assert 'engine_daily_runs_total{dagster_job="daily_training",status="failure"} 0.0' in exposed
    assert "engine_daily_run_last_status{" not in exposed
    assert "engine_release_last_success_timestamp_seconds" not in exposed
    library.close()
