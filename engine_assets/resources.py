"""Dagster resources: thin factories that return trading_core domain objects."""

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import PrivateAttr

from trading_core.brain import BrainLibrary
from trading_core.config import EngineConfig, default_config_paths, load_config
from trading_core.market.parquet_store import ParquetStore
from trading_core.market.source import MarketDataSource
from trading_core.market.sources import make_source
from trading_core.observability.logging import get_logger
from trading_core.training.cluster import ClusterPlan, open_client, plan_for_this_machine

if TYPE_CHECKING:  # annotations only: importing distributed costs each Dagster step ~0.6 s
    from distributed import Client

log = get_logger(__name__)

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
        config = self.engine_config.load()
        return ParquetStore(config.data.store_path, endpoint_url=config.storage.endpoint_url)


class DaskResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """A ``distributed.Client``: a LocalCluster sized from ``training.distributed`` by default,
    the existing scheduler at ``scheduler_address`` when set, a LocalCUDACluster when GPUs are
    configured and present. ``processes=False`` (threads) is for tests only.

    One cluster per Dagster run: the first ``client()`` of a run opens it, every later step of
    the run reuses it (its workers keep their imports and numba kernels warm), and the run's
    teardown closes it. Dagster gives each run its own copy of the resource
    (``setup_for_execution`` / ``teardown_after_execution`` run on that copy), so runs never
    share a cluster. Executors differ in what a "run" holds: the in-process executor
    (``dg.materialize``, ``coin-engine engine run``, the tests) runs every step in this process,
    so both fan-out steps share one cluster; the multiprocess executor (``dagster dev``'s
    default) runs each step in its own process with its own resource copy, so each step opens
    and closes its own cluster as before (still correct, just not shared). To share one there,
    point ``training.distributed.scheduler_address`` at a long-lived scheduler.
    ``attach_address`` is the same thing for one caller that holds a cluster across several
    Dagster runs (:meth:`held`, used by ``engine run``, which runs one asset per run)."""

    engine_config: EngineConfigResource
    processes: bool = True
    attach_address: str = ""
    _opened: "tuple[Client, ClusterPlan] | None" = PrivateAttr(default=None)
    _closer: ExitStack | None = PrivateAttr(default=None)
    _in_run: bool = PrivateAttr(default=False)

    def plan(self) -> ClusterPlan:
        plan = plan_for_this_machine(self.engine_config.load().training.distributed)
        if self.attach_address:
            # the held cluster was started from this same plan: same device and task resources
            return replace(plan, kind="existing", address=self.attach_address)
        return plan

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._in_run = True

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        closer, self._closer, self._opened = self._closer, None, None
        if closer is not None:
            closer.close()

    @contextmanager
    def client(self) -> Iterator["tuple[Client, ClusterPlan]"]:
        """The run's client and plan. Leaving the block does not close a run's cluster (the
        teardown does); outside a Dagster run nothing would tear it down, so there the cluster
        lives exactly as long as the block."""
        if not self._in_run:
            with self._open() as opened:
                yield opened
            return
        if self._opened is None:
            closer = ExitStack()
            self._opened = closer.enter_context(self._open())
            self._closer = closer
        yield self._opened

    @contextmanager
    def _open(self) -> Iterator["tuple[Client, ClusterPlan]"]:
        plan = self.plan()
        with open_client(plan, processes=self.processes) as client:
            yield client, plan

    @contextmanager
    def held(self) -> Iterator["DaskResource"]:
        """A cluster kept open across several Dagster runs of this process, and a copy of this
        resource that attaches to it; closed on exit. An external scheduler is already long
        lived: then this resource itself. (Warming the new workers, their imports sent as the
        cluster opens, was measured and gave nothing: bench/RESULTS.md, "Start-up".)"""
        plan = self.plan()
        if plan.kind == "existing":
            yield self
            return
        with open_client(plan, processes=self.processes) as client:
            yield DaskResource(
                engine_config=self.engine_config,
                processes=self.processes,
                attach_address=str(client.scheduler.address),
            )


class BackgroundCluster:
    """:meth:`DaskResource.held` started on a thread of its own, so the caller goes on (the first
    steps of ``engine run``) while the workers start; :meth:`resource` waits for it. The same
    thread later closes it: a ``distributed.Client`` must be left in the context (thread) it
    was entered in."""

    def __init__(self, dask: DaskResource) -> None:
        self._ready: Future[DaskResource] = Future()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._own, args=(dask,), name="dask-cluster", daemon=True
        )
        self._thread.start()

    def _own(self, dask: DaskResource) -> None:
        try:
            with dask.held() as attached:
                self._ready.set_result(attached)
                self._stop.wait()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through resource()
            if not self._ready.done():
                self._ready.set_exception(exc)
            else:
                log.warning("dask_cluster_close_failed", error=f"{type(exc).__name__}: {exc}")

    def resource(self) -> DaskResource:
        """The attached resource, once the cluster is up (raises what its start raised)."""
        return self._ready.result()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
