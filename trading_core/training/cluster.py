"""Which Dask cluster to use: an existing scheduler, a LocalCUDACluster, or a LocalCluster.

The choice is a pure function of the config and the hardware found (unit-tested); opening the
cluster is a thin context manager around dask.distributed / dask_cuda.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from distributed import Client, LocalCluster

from trading_core.config.models import DistributedSection
from trading_core.errors import ConfigError
from trading_core.observability.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ClusterPlan:
    """What to start (or join) and which XGBoost device the workers use."""

    kind: Literal["existing", "local", "local_cuda"]
    device: Literal["cpu", "cuda"]
    n_workers: int
    threads_per_worker: int
    address: str | None = None
    memory_limit: str = "auto"


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
    """Decide the cluster. ``device: cuda`` without GPUs is a config error, ``auto`` falls back."""
    wants_gpu = section.device == "cuda" or (
        section.device == "auto" and section.gpus_per_worker > 0
    )
    if section.device == "cuda" and gpu_count == 0 and section.scheduler_address is None:
        raise ConfigError(
            "training.distributed.device = 'cuda' but no GPU is visible here; "
            "use 'auto' or 'cpu', or set scheduler_address to a cluster with GPU workers"
        )
    use_cuda = wants_gpu and (gpu_count > 0 or section.device == "cuda")
    device: Literal["cpu", "cuda"] = "cuda" if use_cuda else "cpu"
    if section.scheduler_address:
        return ClusterPlan(
            kind="existing",
            device=device,
            n_workers=section.num_workers,
            threads_per_worker=section.threads_per_worker,
            address=section.scheduler_address,
        )
    if use_cuda:
        return ClusterPlan(
            kind="local_cuda",
            device="cuda",
            n_workers=min(section.num_workers, gpu_count),
            threads_per_worker=section.threads_per_worker,
            memory_limit=section.memory_limit,
        )
    workers = max(1, min(section.num_workers, cpu_count // section.threads_per_worker or 1))
    return ClusterPlan(
        kind="local",
        device="cpu",
        n_workers=workers,
        threads_per_worker=section.threads_per_worker,
        memory_limit=section.memory_limit,
    )


def plan_for_this_machine(section: DistributedSection) -> ClusterPlan:
    return plan_cluster(section, gpu_count=detect_gpu_count(), cpu_count=os.cpu_count() or 1)


def _worker_env(plan: ClusterPlan, processes: bool) -> dict[str, Any]:
    """Worker processes size polars' pool to their own threads: by default every worker sizes it
    to the machine's cores, n workers then run n x cores threads (measured on 2 cores: Dask over
    a plain loop 1.52x before, see bench/RESULTS.md)."""
    if not processes:
        return {}  # threads share the parent's pool; a Worker takes no env
    return {"env": {"POLARS_MAX_THREADS": str(plan.threads_per_worker)}}


@contextmanager
def open_client(plan: ClusterPlan, *, processes: bool = True) -> Iterator[Client]:
    """A connected client for ``plan``; a local cluster is closed on exit."""
    if plan.kind == "existing":
        with Client(plan.address, timeout="30s") as client:
            log.info("dask_cluster_joined", address=plan.address, device=plan.device)
            yield client
        return
    if plan.kind == "local_cuda":
        from dask_cuda import LocalCUDACluster

        cluster = LocalCUDACluster(
            n_workers=plan.n_workers,
            threads_per_worker=plan.threads_per_worker,
            memory_limit=plan.memory_limit,
        )
    else:
        cluster = LocalCluster(
            n_workers=plan.n_workers,
            threads_per_worker=plan.threads_per_worker,
            processes=processes,
            memory_limit=plan.memory_limit,
            dashboard_address=None,
            # no dashboard, but the scheduler still serves /health and /metrics over HTTP, on
            # 8787 by default: a second cluster on the machine then prints a UserWarning (plain
            # text in the JSON logs); a free port avoids the clash
            scheduler_kwargs={"dashboard_address": ":0"},
            **_worker_env(plan, processes),
        )
    with cluster, Client(cluster) as client:
        log.info(
            "dask_cluster_started",
            kind=plan.kind,
            workers=plan.n_workers,
            threads_per_worker=plan.threads_per_worker,
            device=plan.device,
        )
        yield client
