"""GPU task placement (worker resources), the join-time GPU check, and loopback-only listeners."""

import os
import time
from collections.abc import Iterator
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
from distributed import Client, Scheduler, SpecCluster, Worker, get_worker

from trading_core.config.models import DistributedSection
from trading_core.errors import ConfigError
from trading_core.training.cluster import (
    open_client,
    plan_cluster,
    workers_offering,
)
from trading_core.training.distributed import run_jobs

EXTERNAL = "tcp://10.0.0.5:8786"
GPU = {"GPU": 1.0}


@pytest.mark.parametrize(
    ("device", "address", "gpus", "kind", "plan_device", "task", "worker"),
    [
        ("cpu", None, 0, "local", "cpu", None, None),
        ("cpu", None, 2, "local", "cpu", None, None),
        ("auto", None, 0, "local", "cpu", None, None),
        ("auto", None, 2, "local_cuda", "cuda", GPU, {"GPU": 1.0}),
        ("cuda", None, 2, "local_cuda", "cuda", GPU, {"GPU": 1.0}),
        ("cpu", EXTERNAL, 0, "existing", "cpu", None, None),
        ("cpu", EXTERNAL, 2, "existing", "cpu", None, None),
        # the local GPUs say nothing about the external workers: auto stays on CPU there
        ("auto", EXTERNAL, 0, "existing", "cpu", None, None),
        ("auto", EXTERNAL, 2, "existing", "cpu", None, None),
        ("cuda", EXTERNAL, 0, "existing", "cuda", GPU, None),
        ("cuda", EXTERNAL, 2, "existing", "cuda", GPU, None),
    ],
)
def test_plan_resources_by_device_and_cluster_match_table(
    device: str,
    address: str | None,
    gpus: int,
    kind: str,
    plan_device: str,
    task: dict[str, float] | None,
    worker: dict[str, float] | None,
) -> None:
    section = DistributedSection(device=device, scheduler_address=address)
    plan = plan_cluster(section, gpu_count=gpus, cpu_count=8)
    assert (plan.kind, plan.device) == (kind, plan_device)
    assert plan.task_resources == task
    assert plan.worker_resources == worker


def test_plan_gpu_slots_follow_gpus_per_worker_at_least_one() -> None:
    def slots(per_worker: int) -> dict[str, float] | None:
        section = DistributedSection(device="cuda", gpus_per_worker=per_worker, num_workers=8)
        plan = plan_cluster(section, gpu_count=4, cpu_count=8)
        assert plan.n_workers == 4  # one worker per GPU
        return plan.worker_resources

    assert slots(2) == {"GPU": 2.0}
    assert slots(0) == {"GPU": 1.0}  # device cuda: a worker must take at least one GPU task


def test_plan_dashboard_defaults_to_loopback_and_follows_config() -> None:
    default = plan_cluster(DistributedSection(), gpu_count=0, cpu_count=2)
    assert default.dashboard_address == "127.0.0.1:0"
    custom = DistributedSection(dashboard_address="0.0.0.0:8787")
    assert plan_cluster(custom, gpu_count=0, cpu_count=2).dashboard_address == "0.0.0.0:8787"


def test_workers_offering_needs_every_resource_in_full() -> None:
    workers: dict[str, dict[str, Any]] = {
        "tcp://a:1": {"resources": {"GPU": 1}},
        "tcp://b:1": {"resources": {}},
        "tcp://c:1": {},
        "tcp://d:1": {"resources": {"GPU": 2, "MEM": 1}},
    }
    assert workers_offering(workers, {"GPU": 1}) == ["tcp://a:1", "tcp://d:1"]
    assert workers_offering(workers, {"GPU": 2}) == ["tcp://d:1"]
    assert workers_offering(workers, {"GPU": 1, "MEM": 1}) == ["tcp://d:1"]
    assert workers_offering({}, {"GPU": 1}) == []


def _cluster(gpu_worker: bool) -> SpecCluster:
    """Threads-only cluster (inproc transport) with a CPU worker and, optionally, a worker that
    advertises one GPU."""
    inproc = {"protocol": "inproc://"}
    workers = {"cpu": {"cls": Worker, "options": {"nthreads": 1, **inproc}}}
    if gpu_worker:
        workers["gpu"] = {"cls": Worker, "options": {"nthreads": 1, "resources": GPU, **inproc}}
    return SpecCluster(
        scheduler={
            "cls": Scheduler,
            # its HTTP server listens on TCP even with inproc comms: loopback, a free port
            "options": {"dashboard": False, "dashboard_address": "127.0.0.1:0", **inproc},
        },
        workers=workers,
    )


@pytest.fixture(scope="module")
def mixed_cluster() -> Iterator[SpecCluster]:
    with _cluster(gpu_worker=True) as cluster:
        yield cluster


def _where(job: int) -> str:
    time.sleep(0.05)  # long enough that the idle CPU worker would take some if it could
    return str(get_worker().name)


def test_gpu_tasks_land_only_on_gpu_worker(mixed_cluster: SpecCluster) -> None:
    with Client(mixed_cluster) as client:
        outcomes = run_jobs(
            client, list(range(8)), _where, key_of=str, max_in_flight=8, timeout_s=60,
            retry_attempts=0, resources=GPU,
        )  # fmt: skip
        assert {o.status for o in outcomes} == {"ok"}
        assert {o.result for o in outcomes} == {"gpu"}
        # without resources the same jobs may use any worker (the default stays unconstrained)
        free = run_jobs(
            client, list(range(8)), _where, key_of=str, max_in_flight=8, timeout_s=60,
            retry_attempts=0,
        )  # fmt: skip
        assert {o.status for o in free} == {"ok"}


def test_join_cuda_plan_with_gpu_worker_runs(mixed_cluster: SpecCluster) -> None:
    section = DistributedSection(scheduler_address=mixed_cluster.scheduler_address, device="cuda")
    plan = plan_cluster(section, gpu_count=0, cpu_count=2)
    with open_client(plan) as client:
        assert client.submit(_where, 0, resources=plan.task_resources).result(timeout=30) == "gpu"


def test_join_cuda_plan_without_gpu_worker_refuses_with_address_and_fix() -> None:
    with _cluster(gpu_worker=False) as cluster:
        address = cluster.scheduler_address
        section = DistributedSection(scheduler_address=address, device="cuda")
        plan = plan_cluster(section, gpu_count=0, cpu_count=2)
        with pytest.raises(ConfigError) as caught, open_client(plan):
            pytest.fail("joined a cluster without GPU workers")
        message = str(caught.value)
        assert address in message and "--resources GPU=1" in message
        # a CPU plan on the same cluster joins as before
        cpu = plan_cluster(section.model_copy(update={"device": "cpu"}), gpu_count=0, cpu_count=2)
        with open_client(cpu) as client:
            assert client.submit(_where, 0).result(timeout=30) == "cpu"


def _listening(process: psutil.Process) -> list[tuple[int, str, int]]:
    sockets = []
    for proc in [process, *process.children(recursive=True)]:
        for conn in proc.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                sockets.append((proc.pid, conn.laddr.ip, conn.laddr.port))
    return sockets


def test_local_cluster_listens_on_loopback_only() -> None:
    plan = plan_cluster(DistributedSection(num_workers=1), gpu_count=0, cpu_count=2)
    me = psutil.Process(os.getpid())
    before = {port for _, _, port in _listening(me)}
    with open_client(plan) as client:
        assert client.submit(abs, -1).result(timeout=60) == 1  # the worker is up
        opened = [s for s in _listening(me) if s[2] not in before]
    pids = {pid for pid, _, _ in opened}
    # scheduler (comm + HTTP) in this process, nanny and worker (comm + HTTP) in children
    assert len(opened) >= 4 and len(pids) >= 2, opened
    assert {ip for _, ip, _ in opened} == {"127.0.0.1"}, opened
