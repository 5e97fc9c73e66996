"""Dagster resources: thin factories that return trading_core domain objects."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from distributed import Client
from pydantic import PrivateAttr

from trading_core.brain import BrainLibrary
from trading_core.config import EngineConfig, default_config_paths, load_config
from trading_core.market.parquet_store import ParquetStore
from trading_core.market.source import MarketDataSource, make_source
from trading_core.training.cluster import ClusterPlan, open_client, plan_for_this_machine

_REPO_CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


class EngineConfigResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The engine config: the three YAML files in ``config_dir`` plus ENGINE__ overrides."""

    config_dir: str = ""

    def load(self) -> EngineConfig:
        base = Path(self.config_dir) if self.config_dir else _default_config_dir()
        return load_config(default_config_paths(base))


def _default_config_dir() -> Path:
    local = Path("config")
    return local if (local / "scalable_engine.yaml").exists() else _REPO_CONFIG_DIR


class BrainLibraryResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The Brain Library named by the config (SQLite by default, PostgreSQL by DSN)."""

    engine_config: EngineConfigResource
    _library: BrainLibrary | None = PrivateAttr(default=None)

    def open(self) -> BrainLibrary:
        """The run's library, migrated once and reused by every asset of the run."""
        if self._library is None:
            library = BrainLibrary.from_config(self.engine_config.load())
            library.migrate()
            self._library = library
        return self._library

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._library is not None:
            self._library.close()
            self._library = None


class MarketDataResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The configured market-data source and the local parquet store."""

    engine_config: EngineConfigResource

    def source(self) -> MarketDataSource:
        return make_source(self.engine_config.load())

    def store(self) -> ParquetStore:
        return ParquetStore(Path(self.engine_config.load().data.store_path))


class DaskResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """A ``distributed.Client``: a LocalCluster sized from ``training.distributed`` by default,
    the existing scheduler at ``scheduler_address`` when set, a LocalCUDACluster when GPUs are
    configured and present. ``processes=False`` (threads) is for tests only."""

    engine_config: EngineConfigResource
    processes: bool = True

    def plan(self) -> ClusterPlan:
        return plan_for_this_machine(self.engine_config.load().training.distributed)

    @contextmanager
    def client(self) -> Iterator[tuple[Client, ClusterPlan]]:
        plan = self.plan()
        with open_client(plan, processes=self.processes) as client:
            yield client, plan
