"""Run status sensors of the daily jobs: record every finished run, fail loudly, chain the push.

* ``daily_run_failure_sensor`` / ``daily_run_canceled_sensor`` / ``daily_run_success_sensor``:
  when ``daily_training`` or ``release_push`` ends, one row in the Brain Library's pipeline run
  table (:mod:`trading_core.brain.pipeline_runs`). A failure also logs ``daily_run_failed``
  (job, partition, run_id, failing step, the error's first line). A run that ends SUCCESS but
  with a failed ERROR-severity asset check (e.g. ``no_failed_keys``) is recorded as a failure:
  Dagster counts the run as a success, the day is not one.
* ``release_push_after_training``: the push is chained, not scheduled. A ``daily_training``
  run that really succeeded requests ``release_push`` for the same partition (run key = the
  training run's id, so one push per training run); a failed day requests nothing, so it
  writes no release and the release's age keeps growing until the alerts see it.

Hamilton exports the table (``engine_daily_run_*`` metrics); the alerts are in
docker/prometheus/alerts.yml.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import dagster as dg

from engine_assets.logging import PARTITION_TAG, RANGE_TAGS, configure_engine_logging
from engine_assets.resources import EngineConfigResource
from engine_assets.schedules import daily_training_job, release_push_job
from trading_core.brain import BrainLibrary
from trading_core.brain.pipeline_runs import PipelineRun, one_line
from trading_core.observability.logging import get_logger

TRAINING_JOB: Final = "daily_training"
PUSH_ASSET: Final = dg.AssetKey("brain_library_push")
# the daily_training runs searched for a partition's newest one (a day is rerun a few times)
RUNS_SEARCHED: Final = 100
_STATUS_OF: Final = {
    dg.DagsterRunStatus.SUCCESS: "success",
    dg.DagsterRunStatus.FAILURE: "failure",
    dg.DagsterRunStatus.CANCELED: "canceled",
}
_FINISHED: Final = list(_STATUS_OF)
# Dagster wraps an asset's exception in this error; its cause is what the asset raised
_WRAPPER_ERRORS: Final = frozenset({"DagsterExecutionStepExecutionError"})


@dataclass(frozen=True)
class RunVerdict:
    """How a finished run of a daily job went, as the run table records it."""

    status: str  # success | failure | canceled
    failed_step: str = ""
    error: str = ""


def _error_line(error: Any) -> str:
    while error is not None and error.cls_name in _WRAPPER_ERRORS and error.cause is not None:
        error = error.cause
    if error is None:
        return ""
    # Dagster's message starts with the class, module path included for its own (Failure)
    head, sep, rest = one_line(error.message).partition(": ")
    if sep and "." in head and " " not in head:
        head = head.rsplit(".", 1)[1]
    return f"{head}{sep}{rest}"


def _failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(check, description) of each ERROR-severity asset check that failed in the run."""
    failed = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        event = entry.dagster_event
        evaluation = event.event_specific_data if event is not None else None
        if not isinstance(evaluation, dg.AssetCheckEvaluation) or evaluation.passed:
            continue
        if evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        failed.append((name, evaluation.description or ""))
    return failed


def run_verdict(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunVerdict:
    """The run's status, with its first failing step and error (or failed ERROR check)."""
    status = _STATUS_OF.get(run.status)
    if status is None:
        raise ValueError(f"run {run.run_id} has not finished (status {run.status.value})")
    if status == "canceled":
        return RunVerdict("canceled", error="run canceled")
    if status == "failure":
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
            event = entry.dagster_event
            if event is None:
                continue
            error = event.step_failure_data.error if event.step_failure_data else None
            return RunVerdict("failure", event.step_key or "", _error_line(error))
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE):
            return RunVerdict("failure", error=one_line(entry.message or "run failed"))
        return RunVerdict("failure", error="run failed")
    checks = _failed_checks(instance, run.run_id)
    if checks:
        name, description = checks[0]
        detail = f": {description}" if description else ""
        return RunVerdict("failure", name, one_line(f"asset check {name} failed{detail}"))
    return RunVerdict("success")


def run_partitions(tags: Mapping[str, str]) -> tuple[str, ...] | None:
    """The run's partition key, or (start, end) of a single-run backfill range; None if none."""
    if PARTITION_TAG in tags:
        return (tags[PARTITION_TAG],)
    start, end = (tags.get(tag) for tag in RANGE_TAGS)
    return (start, end) if start and end else None


def covers(partitions: tuple[str, ...] | None, day: str) -> bool:
    """Daily keys are ISO dates: string order is date order."""
    if not partitions:
        return False
    return partitions[0] <= day <= partitions[-1]


def training_day_verdict(instance: dg.DagsterInstance, day: str) -> tuple[str, RunVerdict] | None:
    """(run id, verdict) of the newest finished ``daily_training`` run covering ``day``."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=TRAINING_JOB, statuses=_FINISHED), limit=RUNS_SEARCHED
    )
    for run in runs:  # newest first
        if covers(run_partitions(run.tags), day):
            return run.run_id, run_verdict(instance, run)
    return None


def _release_outcome(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The push's outcome from its materialization metadata (the last day of a range)."""
    outcome = None
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.asset_materialization
        if materialization is None or materialization.asset_key != PUSH_ASSET:
            continue
        value = materialization.metadata.get("outcome")
        if value is not None:
            outcome = str(value.value)
    return outcome


def _partition_label(tags: Mapping[str, str]) -> str | None:
    partitions = run_partitions(tags)
    return None if partitions is None else "...".join(partitions)


def _timestamp(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def pipeline_run(instance: dg.DagsterInstance, run: dg.DagsterRun) -> PipelineRun:
    """The run table's record of a finished run of a daily job."""
    verdict = run_verdict(instance, run)
    stats = instance.get_run_stats(run.run_id)
    started = _timestamp(stats.start_time)
    ended = _timestamp(stats.end_time) or datetime.now(UTC)
    return PipelineRun(
        run_id=run.run_id,
        job_name=run.job_name,
        partition=_partition_label(run.tags),
        status=verdict.status,
        started_at=started if started is None or started <= ended else ended,
        ended_at=ended,
        failed_step=verdict.failed_step,
        error=verdict.error,
        release_outcome=_release_outcome(instance, run.run_id),
    )


@contextmanager
def _library(engine_config: EngineConfigResource) -> Iterator[BrainLibrary]:
    config = engine_config.load()
    configure_engine_logging(config)
    library = BrainLibrary.from_config(config)
    try:
        library.migrate()
        yield library
    finally:
        library.close()


def record_finished_run(
    instance: dg.DagsterInstance, run: dg.DagsterRun, engine_config: EngineConfigResource
) -> PipelineRun:
    """Write the run's row; a failure (or a failed ERROR check) also logs ``daily_run_failed``."""
    record = pipeline_run(instance, run)
    with _library(engine_config) as library:
        stored = library.record_pipeline_run(record)
    log = get_logger(__name__)
    if stored.status == "failure":
        # a run that dagster.yaml's run_retries will re-launch says so: the failure is recorded
        # either way, the retry's own row then becomes the day's newest
        log.error("daily_run_failed", job=stored.job_name, partition=stored.partition,
                  run_id=stored.run_id, step=stored.failed_step, error=stored.error,
                  will_retry=run.tags.get("dagster/will_retry") == "true")  # fmt: skip
    elif stored.status == "canceled":
        log.warning("daily_run_canceled", job=stored.job_name, partition=stored.partition,
                    run_id=stored.run_id)  # fmt: skip
    else:
        log.info("daily_run_succeeded", job=stored.job_name, partition=stored.partition,
                 run_id=stored.run_id, duration_s=stored.duration_s,
                 release_outcome=stored.release_outcome)  # fmt: skip
    return stored


DAILY_JOBS: Final[Sequence[Any]] = (daily_training_job, release_push_job)


@dg.run_failure_sensor(
    name="daily_run_failure_sensor",
    monitored_jobs=list(DAILY_JOBS),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A failed daily run: daily_run_failed log line and a failure row in the Brain "
    "Library's pipeline run table (exported by Hamilton, alerted on).",
)
def daily_run_failure_sensor(
    context: dg.RunFailureSensorContext, engine_config: EngineConfigResource
) -> None:
    record_finished_run(context.instance, context.dagster_run, engine_config)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.CANCELED,
    name="daily_run_canceled_sensor",
    monitored_jobs=list(DAILY_JOBS),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A canceled daily run: a canceled row in the pipeline run table.",
)
def daily_run_canceled_sensor(
    context: dg.RunStatusSensorContext, engine_config: EngineConfigResource
) -> None:
    record_finished_run(context.instance, context.dagster_run, engine_config)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="daily_run_success_sensor",
    monitored_jobs=list(DAILY_JOBS),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A successful daily run: its row (duration, push outcome) in the pipeline run "
    "table; a failed ERROR-severity asset check makes it a failure row.",
)
def daily_run_success_sensor(
    context: dg.RunStatusSensorContext, engine_config: EngineConfigResource
) -> None:
    record_finished_run(context.instance, context.dagster_run, engine_config)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="release_push_after_training",
    monitored_jobs=[daily_training_job],
    request_job=release_push_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Chains the push to the training: a daily_training run that succeeded (no "
    "failed ERROR check) requests release_push for its partition, once per training run.",
)
def release_push_after_training(
    context: dg.RunStatusSensorContext,
) -> dg.RunRequest | dg.SkipReason:
    run = context.dagster_run
    verdict = run_verdict(context.instance, run)
    if verdict.status != "success":
        return dg.SkipReason(
            f"daily_training run {run.run_id} is a failed day ({verdict.failed_step}: "
            f"{verdict.error}): no push"
        )
    partitions = run_partitions(run.tags)
    if partitions is None:
        return dg.SkipReason(f"daily_training run {run.run_id} has no partition: no push")
    run_key = f"release_push_after:{run.run_id}"
    if len(partitions) == 1:
        return dg.RunRequest(run_key=run_key, partition_key=partitions[0])
    # a single-run backfill of a range: the push covers the same range in one run
    return dg.RunRequest(run_key=run_key, tags=dict(zip(RANGE_TAGS, partitions, strict=True)))


DAILY_SENSORS: Final = (
    daily_run_failure_sensor,
    daily_run_canceled_sensor,
    daily_run_success_sensor,
    release_push_after_training,
)
