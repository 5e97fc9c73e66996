"""One Dask cluster per run: both fan-out steps of a daily run share it, and it is closed when
the run ends (a real Dagster run on a real threads-only LocalCluster)."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from distributed import Client

from coin_engine.demo.dag import DAILY_ORDER, run_daily_dag
from engine_assets import resources as resources_module
from engine_assets.definitions import DAILY_ASSETS, build_resources, defs
from engine_assets.resources import DaskResource, EngineConfigResource
from tests.integration.dagster_fixtures import engine_env
from trading_core.training.cluster import ClusterPlan, open_client

PARTITION = "2026-10-31"
FAN_OUT = ("trained_models", "walk_forward_metrics")
UP_TO_FAN_OUT = DAILY_ORDER[: DAILY_ORDER.index("walk_forward_metrics") + 1]
TINY = {
    "ENGINE__ENGINE__ACTIVE_COINS": "2",
    "ENGINE__ENGINE__TIMEFRAMES": "[1h]",
    "ENGINE__DATA__SYNTHETIC__N_COINS": "40",
    "ENGINE__DATA__SYNTHETIC__SEED": "11",
    "ENGINE__TRAINING__MODEL__N_ESTIMATORS": "20",
    "ENGINE__TRAINING__DISTRIBUTED__NUM_WORKERS": "2",
}


class ClusterLog:
    """The real ``open_client``, with every opening and closing recorded."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, Client]] = []
        self.closed = 0

    @contextmanager
    def open_client(self, plan: ClusterPlan, *, processes: bool = True) -> Iterator[Client]:
        with open_client(plan, processes=processes) as client:
            self.opened.append((plan.kind, client))
            try:
                yield client
            finally:
                self.closed += 1

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.opened]


@pytest.fixture
def cluster_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ClusterLog:
    for key, value in {**engine_env(tmp_path), **TINY}.items():
        monkeypatch.setenv(key, value)
    log = ClusterLog()
    monkeypatch.setattr(resources_module, "open_client", log.open_client)
    return log


def _materialized(result: Any) -> set[str]:
    return {
        e.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
        if e.asset_key is not None
    }


@pytest.mark.slow
def test_one_dagster_run_opens_one_cluster_for_both_fan_outs_and_closes_it(
    cluster_log: ClusterLog,
) -> None:
    selected = [a for a in DAILY_ASSETS if a.key.to_user_string() in UP_TO_FAN_OUT]
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*selected, *(defs.asset_checks or [])],
            partition_key=PARTITION,
            resources=build_resources(dask_processes=False),
            instance=instance,
        )
    assert result.success
    assert set(FAN_OUT) <= _materialized(result)
    assert cluster_log.kinds() == ["local"]
    assert cluster_log.closed == 1
    assert cluster_log.opened[0][1].status == "closed"


@pytest.mark.slow
def test_engine_run_path_holds_one_cluster_across_its_per_asset_runs(
    cluster_log: ClusterLog,
) -> None:
    one_process = dg.Definitions(
        assets=DAILY_ASSETS,
        asset_checks=defs.asset_checks,
        resources=build_resources(dask_processes=False),
    )
    with dg.instance_for_test() as instance:
        steps = run_daily_dag(one_process, PARTITION, instance, names=UP_TO_FAN_OUT)
    assert [s.asset for s in steps] == list(UP_TO_FAN_OUT)
    assert steps[-2].metadata["models_trained"] > 0
    assert steps[-1].metadata["keys_validated"] > 0
    # started once by run_daily_dag; each fan-out's own Dagster run only joins it
    assert cluster_log.kinds() == ["local", "existing", "existing"]
    assert cluster_log.closed == 3
    assert all(client.status == "closed" for _, client in cluster_log.opened)


def test_client_outside_a_run_closes_its_cluster_on_exit(cluster_log: ClusterLog) -> None:
    dask = DaskResource(engine_config=EngineConfigResource(), processes=False)
    with dask.client() as (client, plan):
        assert plan.kind == "local"
        assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
    assert cluster_log.closed == 1
    assert client.status == "closed"
