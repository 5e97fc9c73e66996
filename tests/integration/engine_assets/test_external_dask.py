"""The daily DAG through Dagster on an external Dask cluster: a real ``dask scheduler`` and two
``dask worker`` processes (tests/integration/dask_servers.py), joined through
``training.distributed.scheduler_address``; then the same with a worker SIGKILLed mid-task."""

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from distributed import Client

from engine_assets.definitions import DAILY_ASSETS, build_resources, defs
from tests.integration.dagster_fixtures import engine_env
from tests.integration.dask_servers import DaskServers, DaskServersError, dask_servers
from trading_core.brain import BrainLibrary
from trading_core.config import load_config

PARTITION = "2026-10-31"
SMALL = {
    "ENGINE__DATA__SYNTHETIC__STRUCTURE_STRENGTH": "3",
    "ENGINE__ENGINE__TIMEFRAMES": "[1h]",
    "ENGINE__DATA__SYNTHETIC__N_COINS": "60",
}
UP_TO_TRAINING = ["coin_universe", "liquidity_ranking", "ohlcv", "trained_models"]


@pytest.fixture(scope="module")
def external(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskServers]:
    """One cluster for the module (worker start-up and first imports cost ~10 s); each test
    has its own store and Brain Library, and the kill test leaves two workers behind too."""
    base = tmp_path_factory.mktemp("dask")
    try:
        with dask_servers(base, n_workers=2, timeout_s=60) as servers:
            yield servers
    except DaskServersError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"external Dask cluster did not start: {exc}")
        pytest.skip(f"external Dask cluster did not start: {exc}")


def _engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, servers: DaskServers, coins: int
) -> None:
    env = {
        **engine_env(tmp_path / "engine"),
        **SMALL,
        "ENGINE__ENGINE__ACTIVE_COINS": str(coins),
        "ENGINE__TRAINING__DISTRIBUTED__SCHEDULER_ADDRESS": servers.address,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def _materialize(instance: dg.DagsterInstance, selection: list[str] | None = None) -> Any:
    return dg.materialize(
        [*DAILY_ASSETS, *(defs.asset_checks or [])],
        partition_key=PARTITION,
        resources=build_resources(),
        instance=instance,
        selection=selection,
        raise_on_error=False,
    )


def _executed(dask_worker: Any) -> int:
    return int(dask_worker.state.executed_count)


def _prefixes(dask_scheduler: Any) -> list[str]:
    return sorted(dask_scheduler.task_prefixes)


def _models() -> list[Any]:
    library = BrainLibrary.from_config(load_config())
    try:
        return list(library.list_models())
    finally:
        library.close()


def _meta(result: Any, asset: str) -> dict[str, Any]:
    (materialization,) = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in materialization.metadata.items()}


@pytest.mark.slow
def test_daily_dag_on_external_workers_registers_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, external: DaskServers
) -> None:
    _engine(tmp_path, monkeypatch, external, coins=2)
    with dg.instance_for_test() as instance:
        result = _materialize(instance)
    assert result.success
    trained = _meta(result, "trained_models")
    assert trained["models_failed"] == 0 and trained["models_trained"] > 0
    models = _models()
    assert len(models) == trained["models_registered"] == trained["models_trained"]
    assert {m.key.coin for m in models} <= {"BTC", "ETH"} and len({m.key.coin for m in models}) == 2
    assert any(m.validation for m in models)  # walk_forward_metrics ran there too
    with external.client() as client:
        executed = client.run(_executed)
        prefixes = client.run_on_scheduler(_prefixes)
    # both steps ran as tasks of this scheduler's workers: 2 coins x 1h, trained then validated
    assert any(p.startswith("train_coin") for p in prefixes), prefixes
    assert any(p.startswith("validate_coin") for p in prefixes), prefixes
    assert len(executed) == 2 and sum(executed.values()) >= 4, executed
    # the workers read the store by its absolute path: nothing landed in their own directories
    assert all(not any(d.iterdir()) for d in external.worker_dirs)


class _KillFirstTrainingWorker(threading.Thread):
    """Watches the scheduler; the moment a training task is processing on a worker, SIGKILLs
    that worker's process (its nanny starts a new one; the scheduler reschedules the task)."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.killed: tuple[str, int, str] | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        with Client(self.address, timeout="30s") as client:
            while not self.stop.is_set():
                for worker, keys in client.processing().items():
                    training = [k for k in keys if str(k).startswith("train_coin")]
                    if training:
                        pid = client.run(os.getpid, workers=[worker])[worker]
                        os.kill(pid, signal.SIGKILL)
                        self.killed = (worker, pid, str(training[0]))
                        return
                self.stop.wait(0.05)


@pytest.mark.slow
def test_worker_killed_mid_training_run_still_registers_every_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, external: DaskServers
) -> None:
    _engine(tmp_path, monkeypatch, external, coins=3)
    killer = _KillFirstTrainingWorker(external.address)
    killer.start()
    try:
        with dg.instance_for_test() as instance:
            result = _materialize(instance, UP_TO_TRAINING)
    finally:
        killer.stop.set()
        killer.join(timeout=30)
    assert killer.killed is not None, "no training task was seen on a worker"
    worker, pid, task = killer.killed
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the worker really died
    assert result.success
    trained = _meta(result, "trained_models")
    # every coin x regime ended trained or skipped (too little data), none failed
    assert trained["models_failed"] == 0 and trained["models_trained"] > 0
    models = _models()
    assert len({m.key.coin for m in models}) == 3
    assert len(models) == trained["models_registered"] == trained["models_trained"]
    with external.client() as client:
        # the nanny replaced the killed worker: two workers again, the old address gone
        assert worker not in client.scheduler_info(n_workers=-1)["workers"], task
