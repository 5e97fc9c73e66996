"""Which Dask cluster to use: an existing scheduler, a LocalCUDACluster, or a LocalCluster.

The choice is a pure function of the config and the hardware found (unit-tested); opening the
cluster is a thin context manager around dask.distributed / dask_cuda.

GPU placement uses Dask worker resources: when the plan's device is ``cuda`` every task asks for
``{"GPU": 1}`` (:attr:`ClusterPlan.task_resources`, passed to ``run_jobs(resources=...)``), so it
only runs on a worker that advertises a GPU. A LocalCUDACluster's workers advertise
``GPU = gpus_per_worker`` (task slots per worker, at least 1); the workers of an external cluster
advertise it on their command line::

    dask scheduler --host 0.0.0.0 --port 8786 --dashboard-address 127.0.0.1:8787
    dask worker tcp://SCHEDULER:8786 --nworkers 1 --nthreads 1                    # CPU worker
    dask cuda worker tcp://SCHEDULER:8786 --resources GPU=1                       # GPU worker

Joining an external scheduler with device ``cuda`` checks that at least one connected worker
advertises ``GPU``; without one the run would wait forever, so it is a :class:`ConfigError`.
``device: auto`` cannot see an external cluster's GPUs and so means CPU there.

Nothing listens beyond loopback unless configured: a local cluster binds 127.0.0.1 and its
scheduler's HTTP server (/health, /metrics) binds ``training.distributed.dashboard_address``
(default ``127.0.0.1:0``, a free port). See docs/deploy.md, "External Dask cluster".
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from trading_core.config.models import DistributedSection
from trading_core.errors import ConfigError
from trading_core.observability.logging import get_logger

if TYPE_CHECKING:  # distributed is imported where a cluster is opened: at module level it costs
    # every process importing the training package (each Dagster step) ~0.6 s
    from distributed import Client

log = get_logger(__name__)

GPU_RESOURCE = "GPU"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ClusterPlan:
    """What to start (or join) and which XGBoost device the workers use."""

    kind: Literal["existing", "local", "local_cuda"]
    device: Literal["cpu", "cuda"]
    n_workers: int
    threads_per_worker: int
    address: str | None = None
    memory_limit: str = "auto"
    gpu_slots_per_worker: int = 0
    dashboard_address: str = f"{LOOPBACK}:0"

    @property
    def task_resources(self) -> dict[str, float] | None:
        """What every task asks of its worker: one GPU on a cuda plan, nothing on CPU."""
        return {GPU_RESOURCE: 1.0} if self.device == "cuda" else None

    @property
    def worker_resources(self) -> dict[str, float] | None:
        """What a worker started by this plan advertises (an external cluster's workers say it
        on their own command line)."""
        if self.kind == "local_cuda":
            return {GPU_RESOURCE: float(self.gpu_slots_per_worker)}
        return None


def detect_gpu_count() -> int:
    """GPUs visible through NVML; any NVML failure (no driver, no library) means zero."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # noqa: BLE001 - NVML raises many unrelated types; all mean "no GPU"
        log.debug("gpu_detection_failed", error=type(exc).__name__)
        return 0


def plan_cluster(section: DistributedSection, *, gpu_count: int, cpu_count: int) -> ClusterPlan:
    """Decide the cluster. ``device: cuda`` without GPUs is a config error, ``auto`` falls back.

    With a scheduler address the local GPU count says nothing about the workers: ``cuda`` is
    taken as asked (checked against the workers at join time), ``auto`` means CPU."""
    if section.scheduler_address:
        return ClusterPlan(
            kind="existing",
            device="cuda" if section.device == "cuda" else "cpu",
            n_workers=section.num_workers,
            threads_per_worker=section.threads_per_worker,
            address=section.scheduler_address,
            dashboard_address=section.dashboard_address,
        )
    if section.device == "cuda" and gpu_count == 0:
        raise ConfigError(
            "training.distributed.device = 'cuda' but no GPU is visible here; "
            "use 'auto' or 'cpu', or set scheduler_address to a cluster with GPU workers"
        )
    use_cuda = gpu_count > 0 and (
        section.device == "cuda" or (section.device == "auto" and section.gpus_per_worker > 0)
    )
    if use_cuda:
        return ClusterPlan(
            kind="local_cuda",
            device="cuda",
            n_workers=min(section.num_workers, gpu_count),
            threads_per_worker=section.threads_per_worker,
            memory_limit=section.memory_limit,
            # a worker owns one GPU; gpus_per_worker > 1 lets that many tasks share it
            gpu_slots_per_worker=max(1, section.gpus_per_worker),
            dashboard_address=section.dashboard_address,
        )
    workers = max(1, min(section.num_workers, cpu_count // section.threads_per_worker or 1))
    return ClusterPlan(
        kind="local",
        device="cpu",
        n_workers=workers,
        threads_per_worker=section.threads_per_worker,
        memory_limit=section.memory_limit,
        dashboard_address=section.dashboard_address,
    )


def plan_for_this_machine(section: DistributedSection) -> ClusterPlan:
    return plan_cluster(section, gpu_count=detect_gpu_count(), cpu_count=os.cpu_count() or 1)


def workers_offering(
    workers: Mapping[str, Mapping[str, Any]], needed: Mapping[str, float]
) -> list[str]:
    """Addresses of the workers (``scheduler_info()["workers"]``) that advertise ``needed``."""

    def offers(info: Mapping[str, Any]) -> bool:
        have = info.get("resources") or {}
        return all(float(have.get(name, 0)) >= amount for name, amount in needed.items())

    return sorted(address for address, info in workers.items() if offers(info))


def check_workers_offer(client: "Client", plan: ClusterPlan) -> None:
    """Refuse to run on a cluster where no worker can take the plan's tasks: a task that asks
    for a resource no worker has waits forever (until the per-job timeout, an hour by default)."""
    needed = plan.task_resources
    if not needed:
        return
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    if not workers_offering(workers, needed):
        wanted = " ".join(f"{name}={amount:g}" for name, amount in needed.items())
        raise ConfigError(
            f"training.distributed.device = 'cuda' but none of the {len(workers)} workers of "
            f"the scheduler at {plan.address} advertises {wanted}; start GPU workers with "
            f"'dask cuda worker {plan.address} --resources {wanted}' (or 'dask worker ... "
            f"--resources {wanted}'), or set training.distributed.device to 'cpu'"
        )


def _worker_env(plan: ClusterPlan, processes: bool) -> dict[str, Any]:
    """Worker processes size polars' pool to their own threads: by default every worker sizes it
    to the machine's cores, n workers then run n x cores threads (measured on 2 cores: Dask over
    a plain loop 1.52x before, see bench/RESULTS.md)."""
    if not processes:
        return {}  # threads share the parent's pool; a Worker takes no env
    return {"env": {"POLARS_MAX_THREADS": str(plan.threads_per_worker)}}


@contextmanager
def open_client(plan: ClusterPlan, *, processes: bool = True) -> Iterator["Client"]:
    """A connected client for ``plan``; a local cluster is closed on exit."""
    from distributed import Client, LocalCluster

    if plan.kind == "existing":
        with Client(plan.address, timeout="30s") as client:
            check_workers_offer(client, plan)
            log.info("dask_cluster_joined", address=plan.address, device=plan.device)
            yield client
        return
    # the scheduler serves /health and /metrics over HTTP even without a dashboard, on 8787 by
    # default (a second cluster on the machine then prints a UserWarning) and on every interface
    # for ":0": dashboard_address keeps it on loopback and a free port
    local: dict[str, Any] = {
        "n_workers": plan.n_workers,
        "threads_per_worker": plan.threads_per_worker,
        "memory_limit": plan.memory_limit,
        "dashboard_address": None,
        "scheduler_kwargs": {"dashboard_address": plan.dashboard_address},
    }
    cluster: LocalCluster
    if plan.kind == "local_cuda":
        from dask_cuda import LocalCUDACluster

        cluster = LocalCUDACluster(host=LOOPBACK, resources=plan.worker_resources, **local)
    else:
        host = {"host": LOOPBACK} if processes else {}  # threads talk in-process (inproc://)
        cluster = LocalCluster(processes=processes, **host, **local, **_worker_env(plan, processes))
    with cluster, Client(cluster) as client:
        log.info(
            "dask_cluster_started",
            kind=plan.kind,
            workers=plan.n_workers,
            threads_per_worker=plan.threads_per_worker,
            device=plan.device,
        )
        yield client
