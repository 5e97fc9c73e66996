"""The daily training DAG through real Dagster materializations on a real Dask LocalCluster:
end to end on the synthetic market, idempotent reruns, a planted leak blocked by the checks."""

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from engine_assets import checks
from engine_assets.definitions import DAILY_ASSETS, build_resources, defs
from tests.integration.dagster_fixtures import engine_env
from trading_core.brain import BrainLibrary
from trading_core.config import load_config
from trading_core.features import compute_features
from trading_core.types import Stage

PARTITION = "2026-10-31"
# Three coins on one timeframe, otherwise the defaults: the walk-forward and the promotion gate
# run at their real settings (no statistical override), so a release needs real evidence. The
# market plants 3x the default structure, so three coins carry edge the gate can confirm.
SMALL = {
    "ENGINE__DATA__SYNTHETIC__STRUCTURE_STRENGTH": "3",
    "ENGINE__ENGINE__ACTIVE_COINS": "3",
    "ENGINE__ENGINE__TIMEFRAMES": "[1h]",
    "ENGINE__DATA__SYNTHETIC__N_COINS": "60",
    "ENGINE__TRAINING__DISTRIBUTED__NUM_WORKERS": "2",
}


@pytest.fixture
def small_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key, value in {**engine_env(tmp_path), **SMALL}.items():
        monkeypatch.setenv(key, value)
    yield tmp_path


def _materialize(instance: dg.DagsterInstance, **kw: object) -> Any:
    return dg.materialize(
        [*DAILY_ASSETS, *(defs.asset_checks or [])],
        partition_key=PARTITION,
        resources=build_resources(dask_processes=False),
        instance=instance,
        raise_on_error=False,
        **kw,  # type: ignore[arg-type]
    )


def _library() -> BrainLibrary:
    return BrainLibrary.from_config(load_config())


@pytest.mark.slow
def test_daily_dag_trains_validates_selects_and_releases(small_engine: Path) -> None:
    with dg.instance_for_test() as instance:
        result = _materialize(instance)
        assert result.success
        checks_passed = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        assert checks_passed["no_train_test_overlap"] and checks_passed["features_causal"]
        assert checks_passed["no_failed_keys"]
        library = _library()
        models = library.list_models()
        assert models, "no model registered"
        assert {m.key.timeframe for m in models} == {"1h"}
        validated = [m for m in models if m.validation]
        assert validated and all("oos_windows" in m.metrics for m in validated)
        assert all(m.serving_tables for m in models)
        release = library.latest_release()
        assert release is not None and release.production
        production = library.list_models(stage=Stage.PRODUCTION)
        assert {m.name for m in production} == set(release.production)
        assert all(m.validation and m.validation["eligible"] for m in production)
        # every production model went through the gate, and the asset shows the gate's figures
        for model in production:
            gate = model.validation["gate"]  # type: ignore[index]
            assert gate["passed"] and gate["p_adjusted"] <= 0.05 and gate["n_trials"] == 9
            assert model.metrics["oos_sharpe"] > 0 and model.metrics["oos_edge_after_cost_bps"] > 0
        meta = result.asset_materializations_for_node("best_models")[0].metadata
        assert meta["gate_passed"].value == len(production)
        assert meta["gate_failed"].value == len(models) - len(production)
        assert meta["gate_trials"].value == 9 and meta["gate_method"].value == "fdr_bh"
        assert "p_adjusted" in meta["best_production"].value
        # rerunning the same day: no new versions, no new release
        versions = {m.name for m in models}
        assert _materialize(instance).success
        again = _library()
        assert {m.name for m in again.list_models()} == versions
        assert [r.id for r in again.list_releases()] == [release.id]


@pytest.mark.slow
def test_planted_leaky_feature_fails_blocking_check_and_stops_downstream(
    small_engine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def leaky(frame: pl.DataFrame) -> pl.DataFrame:
        peek = pl.col("close").shift(-1).fill_null(strategy="forward")
        return compute_features(frame).with_columns((peek / pl.col("close")).alias("log_ret_1"))

    monkeypatch.setattr(checks, "compute_features", leaky)
    with dg.instance_for_test() as instance:
        result = _materialize(instance)
        evaluations = {c.check_name: c for c in result.get_asset_check_evaluations()}
        assert evaluations["features_causal"].passed is False
        problems = evaluations["features_causal"].metadata["problems"].value
        assert any("log_ret_1" in p for p in problems)
        materialized = {
            e.asset_key.to_user_string()
            for e in result.get_asset_materialization_events()
            if e.asset_key is not None
        }
        assert "trained_models" in materialized
        assert "walk_forward_metrics" not in materialized
        assert _library().latest_release() is None


@pytest.mark.slow
def test_coin_retrain_one_key_from_dynamic_partition(small_engine: Path) -> None:
    with dg.instance_for_test() as instance:
        assert _materialize(
            instance, selection=["coin_universe", "liquidity_ranking", "ohlcv"]
        ).success
        assert "BTC" in instance.get_dynamic_partitions("coins")
        result = dg.materialize(
            [defs.get_assets_def("coin_retrain")],
            partition_key="BTC",
            resources=build_resources(dask_processes=False),
            instance=instance,
            run_config={"ops": {"coin_retrain": {"config": {
                "as_of_date": PARTITION, "regimes": ["RANGE"], "timeframes": ["1h"]}}}},
        )  # fmt: skip
        assert result.success
        models = _library().list_models()
        assert [m.key.slug for m in models] == ["BTC_RANGE_1h"]
        assert models[0].partition_date == date(2026, 10, 31)
        # selected on its own validation, not on the version read before it was recorded
        assert models[0].validation and "status" in models[0].validation
        (materialization,) = result.asset_materializations_for_node("coin_retrain")
        keys_table = str(materialization.metadata["keys"].value)
        assert "BTC_RANGE_1h" in keys_table
        assert "not validated" not in keys_table
