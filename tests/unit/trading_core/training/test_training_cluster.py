"""Cluster choice (pure) and the Dask job runner on a real LocalCluster."""

import time

import pytest
from distributed import Client, LocalCluster

from trading_core.config.models import DistributedSection
from trading_core.errors import ConfigError
from trading_core.training.cluster import detect_gpu_count, open_client, plan_cluster
from trading_core.training.distributed import run_jobs


@pytest.mark.parametrize(
    ("section", "gpus", "cpus", "kind", "device", "workers"),
    [
        ({}, 0, 2, "local", "cpu", 2),
        ({"num_workers": 1}, 0, 8, "local", "cpu", 1),
        ({"device": "cpu"}, 4, 8, "local", "cpu", 8),
        ({}, 2, 8, "local_cuda", "cuda", 2),
        ({"gpus_per_worker": 0}, 2, 8, "local", "cpu", 8),
        ({"scheduler_address": "tcp://10.0.0.5:8786"}, 0, 2, "existing", "cpu", 8),
        (
            {"scheduler_address": "tcp://10.0.0.5:8786", "device": "cuda"},
            0,
            2,
            "existing",
            "cuda",
            8,
        ),
        ({"threads_per_worker": 2}, 0, 2, "local", "cpu", 1),
    ],
)
def test_plan_cluster_known_cases(
    section: dict, gpus: int, cpus: int, kind: str, device: str, workers: int
) -> None:
    plan = plan_cluster(DistributedSection(**section), gpu_count=gpus, cpu_count=cpus)
    assert (plan.kind, plan.device, plan.n_workers) == (kind, device, workers)


def test_cuda_without_gpu_is_config_error() -> None:
    with pytest.raises(ConfigError, match="device = 'cuda'"):
        plan_cluster(DistributedSection(device="cuda"), gpu_count=0, cpu_count=2)


def test_detect_gpu_count_here_is_zero() -> None:
    assert detect_gpu_count() == 0


def _square(x: int) -> int:
    if x == 3:
        raise ValueError("three is bad")
    return x * x


def _slow(x: int) -> int:
    time.sleep(5 if x == 1 else 0)
    return x


_calls: dict[int, int] = {}


def _flaky(x: int) -> int:
    _calls[x] = _calls.get(x, 0) + 1
    if _calls[x] < 2:
        raise RuntimeError("transient")
    return x


@pytest.fixture(scope="module")
def threads_client() -> Client:
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def test_run_jobs_one_failure_does_not_sink_others(threads_client: Client) -> None:
    outcomes = run_jobs(
        threads_client,
        [1, 2, 3, 4],
        _square,
        key_of=str,
        max_in_flight=2,
        timeout_s=30,
        retry_attempts=1,
    )
    assert [o.status for o in outcomes] == ["ok", "ok", "failed", "ok"]
    assert [o.result for o in outcomes] == [1, 4, None, 16]
    assert outcomes[2].attempts == 2
    assert "three is bad" in (outcomes[2].error or "")


def test_run_jobs_timeout_marks_job_timeout(threads_client: Client) -> None:
    outcomes = run_jobs(
        threads_client,
        [0, 1],
        _slow,
        key_of=str,
        max_in_flight=2,
        timeout_s=0.5,
        retry_attempts=0,
        poll_s=0.1,
    )
    assert [o.status for o in outcomes] == ["ok", "timeout"]


def test_run_jobs_retry_recovers_transient_failure(threads_client: Client) -> None:
    _calls.clear()
    outcomes = run_jobs(
        threads_client, [7], _flaky, key_of=str, max_in_flight=1, timeout_s=30, retry_attempts=2
    )
    assert outcomes[0].status == "ok"
    assert outcomes[0].attempts == 2


def test_open_client_local_plan_runs_work() -> None:
    plan = plan_cluster(DistributedSection(num_workers=1), gpu_count=0, cpu_count=2)
    with open_client(plan, processes=False) as client:
        assert client.submit(_square, 5).result(timeout=30) == 25


def _double(x: int) -> int:
    return 2 * x


def test_two_functions_on_same_job_keys_never_share_results(threads_client: Client) -> None:
    first = run_jobs(threads_client, [3], _square, key_of=str, max_in_flight=1,
                     timeout_s=30, retry_attempts=0)  # fmt: skip
    second = run_jobs(threads_client, [3], _double, key_of=str, max_in_flight=1,
                      timeout_s=30, retry_attempts=0)  # fmt: skip
    assert first[0].status == "failed"  # _square refuses 3
    assert second[0].result == 6


def _polars_threads() -> int:
    import polars

    return polars.thread_pool_size()


def test_worker_processes_size_polars_to_their_own_threads() -> None:
    plan = plan_cluster(DistributedSection(num_workers=1), gpu_count=0, cpu_count=2)
    with open_client(plan) as client:
        assert client.submit(_polars_threads).result(timeout=60) == plan.threads_per_worker
