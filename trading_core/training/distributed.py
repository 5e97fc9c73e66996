"""Fan jobs out on a Dask cluster with bounded in-flight work, per-job timeouts and retries.

One failing job never sinks the others: every job ends as ``ok``, ``failed`` or ``timeout``
with its error text, and failures are retried up to ``retry_attempts`` times.

``resources`` (e.g. ``{"GPU": 1}`` from :attr:`~trading_core.training.cluster.ClusterPlan.
task_resources`) goes with every task: Dask runs it only on a worker that advertises as much.
A task of a worker that dies is rescheduled by Dask itself; ``run_jobs`` only sees it later.
"""

import time
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from trading_core.observability.logging import get_logger

if TYPE_CHECKING:  # distributed is imported where a cluster is opened or waited on: at module
    # level it costs every process importing the training package (each Dagster step) ~0.6 s
    from distributed import Client, Future

log = get_logger(__name__)

J = TypeVar("J")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class JobOutcome(Generic[R]):
    key: Hashable
    status: Literal["ok", "failed", "timeout"]
    result: R | None
    error: str | None
    attempts: int
    wall_s: float


@dataclass
class _Running(Generic[J]):
    key: Hashable
    job: J
    future: "Future"
    started: float
    attempt: int


def run_jobs(
    client: "Client",
    jobs: Sequence[J],
    fn: Callable[[J], R],
    *,
    key_of: Callable[[J], Hashable],
    max_in_flight: int,
    timeout_s: float,
    retry_attempts: int,
    on_done: Callable[[JobOutcome[R]], None] | None = None,
    poll_s: float = 0.5,
    resources: Mapping[str, float] | None = None,
) -> list[JobOutcome[R]]:
    """Run ``fn(job)`` for every job on ``client``; outcomes in the order of ``jobs``."""
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight={max_in_flight} must be >= 1")
    pending: list[tuple[J, int]] = [(job, 1) for job in jobs]
    pending.reverse()
    running: list[_Running[J]] = []
    task_resources = dict(resources) if resources else None
    outcomes: dict[Hashable, JobOutcome[R]] = {}

    def finish(outcome: JobOutcome[R]) -> None:
        outcomes[outcome.key] = outcome
        if on_done is not None:
            on_done(outcome)

    while pending or running:
        while pending and len(running) < max_in_flight:
            job, attempt = pending.pop()
            key = key_of(job)
            # the task key must be unique per function and run: Dask returns a finished task's
            # result for a key it already holds (a train and a validate of one coin collide)
            task_key = f"{getattr(fn, '__name__', 'job')}-{key}-a{attempt}-{uuid.uuid4().hex[:8]}"
            future = client.submit(fn, job, key=task_key, pure=False, resources=task_resources)
            running.append(_Running(key, job, future, time.monotonic(), attempt))
        _wait_some([r.future for r in running], poll_s)
        still: list[_Running[J]] = []
        for run in running:
            outcome: JobOutcome[R] | None = _settle(run, timeout_s)
            if outcome is None:
                still.append(run)
            elif outcome.status != "ok" and run.attempt <= retry_attempts:
                log.warning("job_retry", key=outcome.key, attempt=run.attempt, error=outcome.error)
                pending.append((run.job, run.attempt + 1))
            else:
                finish(outcome)
        running = still
    return [outcomes[key_of(job)] for job in jobs]


def _settle(run: _Running[J], timeout_s: float) -> JobOutcome[R] | None:
    key = run.key
    elapsed = time.monotonic() - run.started
    if run.future.status == "finished":
        return JobOutcome(key, "ok", run.future.result(), None, run.attempt, elapsed)
    if run.future.status in ("error", "cancelled"):
        error = run.future.exception() if run.future.status == "error" else "cancelled"
        return JobOutcome(
            key, "failed", None, f"{type(error).__name__}: {error}", run.attempt, elapsed
        )
    if elapsed > timeout_s:
        run.future.cancel()
        return JobOutcome(
            key, "timeout", None, f"exceeded timeout_seconds={timeout_s}", run.attempt, elapsed
        )
    return None


def _wait_some(futures: list["Future"], poll_s: float) -> None:
    """Block until one future completes or ``poll_s`` passes (then timeouts are checked)."""
    from distributed import wait

    try:
        wait(futures, timeout=poll_s, return_when="FIRST_COMPLETED")
    except TimeoutError:
        return  # nothing finished within this poll: the caller checks per-job timeouts
