"""record_validation on SQLite and PostgreSQL: merged metrics, payloads, idempotency."""

import pytest

from tests.integration.brain_fixtures import (
    BTC_TREND_1H,
    brain,
    brain_dsn,
    pg_schema_dsn,
    register,
    sqlite_template,
)
from trading_core.brain import BrainLibrary
from trading_core.errors import ModelNotFoundError

FIXTURES = (brain, brain_dsn, pg_schema_dsn, sqlite_template)
VALIDATION = {"eligible": True, "windows": [{"window": 0, "sharpe": 1.2, "n_trades": 14}]}
SERVING = {"engines": ["a", "b"], "cluster_divisors": [1.0, 2.0], "ic_by_regime": {"TREND": 0.1}}


def test_record_validation_merges_metrics_and_stores_payloads(brain: BrainLibrary) -> None:
    model = register(brain, BTC_TREND_1H, "v1")
    updated = brain.record_validation(
        model.name,
        metrics={"oos_sharpe": 1.5, "oos_n_trades": 120.0},
        validation=VALIDATION,
        reliability={"trend_v1": 0.6},
        correlation={"trend_v1": {"trend_v1": 1.0}},
        serving_tables=SERVING,
    )
    assert updated.metrics["oos_sharpe"] == 1.5
    assert set(model.metrics) <= set(updated.metrics)
    again = brain.get_model(model.name)
    assert again.validation == VALIDATION
    assert again.serving_tables == SERVING
    assert again.reliability == {"trend_v1": 0.6}


def test_record_validation_twice_is_idempotent(brain: BrainLibrary) -> None:
    model = register(brain, BTC_TREND_1H, "v1")
    for _ in range(2):
        brain.record_validation(model.name, metrics={"oos_sharpe": 0.5}, validation=VALIDATION)
    assert brain.get_model(model.name).metrics["oos_sharpe"] == 0.5
    assert len(brain.list_models()) == 1


def test_record_validation_nan_metric_refused(brain: BrainLibrary) -> None:
    model = register(brain, BTC_TREND_1H, "v1")
    with pytest.raises(ValueError, match="metrics"):
        brain.record_validation(model.name, metrics={"oos_sharpe": float("nan")}, validation={})


def test_record_validation_unknown_model_raises(brain: BrainLibrary) -> None:
    with pytest.raises(ModelNotFoundError):
        brain.record_validation("BTC_TREND_1h_v9_20250101_000000", metrics={}, validation={})
