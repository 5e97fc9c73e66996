"""Dagster on PostgreSQL, for real: the shipped ``docker/dagster/dagster.yaml`` (copied verbatim,
only its connection env vars set) on a private database of the local PostgreSQL. The daily DAG
materialized in process and through the ``dagster`` CLI, a schedule stopped from the CLI, each
read back with SQL from Dagster's own tables; the run retries / run monitoring settings of both
instance files, the retry decision the instance records on a failed run, and the ``ohlcv``
RetryPolicy on Dagster's real retry machinery."""

import json
import logging
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.events import DagsterEvent, DagsterEventType, JobFailureData, RunFailureReason
from dagster._core.scheduler.instigation import InstigatorState, InstigatorStatus
from dagster._daemon.monitoring.run_monitoring import check_run_timeout
from sqlalchemy import URL, create_engine, make_url, text

from engine_assets.assets.ingest import INGEST_RETRY_POLICY, ohlcv, retry_only_transient
from engine_assets.definitions import DAILY_ASSETS, build_resources, defs
from tests.integration.brain_fixtures import PG_ADMIN_DSN, require_postgres
from tests.integration.dagster_fixtures import engine_env
from trading_core.errors import DataSourceError, ExchangeTemporaryError

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "docker" / "dagster" / "dagster.yaml"
LOCAL = REPO / "dagster.yaml"
PARTITION = "2026-10-31"
DAY_ASSETS = [a.key.to_user_string() for a in DAILY_ASSETS]
# two coins on one timeframe, 120 days of history: every asset of the day runs (the gate may
# promote nothing; these tests are about where Dagster stores the run, not what it releases)
SMALL = {
    "ENGINE__DATA__HISTORY_DAYS": "120",
    "ENGINE__DATA__SYNTHETIC__STRUCTURE_STRENGTH": "3",
    "ENGINE__ENGINE__ACTIVE_COINS": "2",
    "ENGINE__ENGINE__TIMEFRAMES": "[1h]",
    "ENGINE__DATA__SYNTHETIC__N_COINS": "60",
    "ENGINE__TRAINING__DISTRIBUTED__NUM_WORKERS": "1",
}
IN_PROCESS: dict[str, Any] = {"execution": {"config": {"in_process": {}}}}
PG_ENV = ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")


@pytest.fixture
def dagster_db() -> Iterator[URL]:
    """A private, empty database ``dagster_it_<random>``, dropped (connections and all) after."""
    require_postgres()
    admin_url = make_url(PG_ADMIN_DSN)
    name = f"dagster_it_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_home(dagster_db: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME holding the shipped instance file, unchanged; the connection comes from the
    env vars compose sets (here: this test's database); the engine config inside tmp_path."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(SHIPPED, home / "dagster.yaml")
    connection = dict(
        zip(
            PG_ENV,
            (dagster_db.host, dagster_db.username, dagster_db.password or "", dagster_db.database),
            strict=True,
        )
    )
    for key, value in {**connection, **engine_env(tmp_path), **SMALL}.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def _sql(url: URL, query: str, **params: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query), params))
    finally:
        engine.dispose()


def _dagster(args: list[str]) -> subprocess.CompletedProcess[str]:
    """The ``dagster`` CLI of this venv, with this test's environment (DAGSTER_HOME included)."""
    command = [str(Path(sys.executable).parent / "dagster"), *args]
    return subprocess.run(
        command, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=180,
        check=False,
    )  # fmt: skip


def _materialized_assets(url: URL, run_id: str) -> set[str]:
    rows = _sql(
        url,
        "SELECT asset_key FROM event_logs WHERE run_id = :run_id"
        " AND dagster_event_type = 'ASSET_MATERIALIZATION'",
        run_id=run_id,
    )
    return {dg.AssetKey.from_db_string(row.asset_key).to_user_string() for row in rows}  # type: ignore[union-attr]


def _run_tags(url: URL, run_id: str) -> dict[str, str]:
    rows = _sql(url, "SELECT key, value FROM run_tags WHERE run_id = :run_id", run_id=run_id)
    return {row.key: row.value for row in rows}


@pytest.mark.parametrize(
    "instance_file",
    [
        pytest.param(LOCAL, id="local"),
        pytest.param(SHIPPED, id="compose", marks=pytest.mark.postgres),
    ],
)
def test_instance_files_enable_run_retries_and_monitoring(
    instance_file: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if instance_file == SHIPPED:
        request.getfixturevalue("pg_home")  # its env vars point the file at a fresh database
    home = tmp_path / "home_under_test"
    home.mkdir()
    shutil.copy(instance_file, home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_retries_enabled
        assert instance.run_retries_max_retries == 2
        assert instance.run_retries_retry_on_asset_or_op_failure is False
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 300
        assert instance.run_monitoring_cancel_timeout_seconds == 180
        assert instance.run_monitoring_max_runtime_seconds == 3600
        assert instance.run_monitoring_poll_interval_seconds == 60
        assert instance.run_monitoring_max_resume_run_attempts == 0
        # the default launcher cannot check or resume a run worker: monitoring works by timeouts
        assert not instance.run_launcher.supports_check_run_worker_health
        assert not instance.run_launcher.supports_resume_run
        # `dagster-daemon run` starts the daemons that act on these settings
        daemons = set(instance.get_required_daemon_types())
        assert {
            "MONITORING",
            "EVENT_LOG_CONSUMER",
            "SCHEDULER",
            "QUEUED_RUN_COORDINATOR",
        } <= daemons


def test_instance_files_agree_on_retries_and_monitoring() -> None:
    local, shipped = (yaml.safe_load(p.read_text()) for p in (LOCAL, SHIPPED))
    for block in ("run_retries", "run_monitoring", "run_queue", "concurrency"):
        assert local[block] == shipped[block], block


@pytest.mark.postgres
@pytest.mark.slow
def test_daily_dag_in_process_recorded_in_postgres(pg_home: Path, dagster_db: URL) -> None:
    with dg.DagsterInstance.from_config(str(pg_home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        result = dg.materialize(
            [*DAILY_ASSETS, *(defs.asset_checks or [])],
            partition_key=PARTITION,
            resources=build_resources(dask_processes=False),
            instance=instance,
        )
        assert result.success
    # read back from PostgreSQL itself, not through Dagster
    (run,) = _sql(dagster_db, "SELECT run_id, status, partition FROM runs")
    assert (run.run_id, run.status, run.partition) == (result.run_id, "SUCCESS", PARTITION)
    assert _materialized_assets(dagster_db, run.run_id) == set(DAY_ASSETS)
    checks = _sql(
        dagster_db,
        "SELECT count(*) AS n FROM event_logs WHERE run_id = :run_id"
        " AND dagster_event_type = 'ASSET_CHECK_EVALUATION'",
        run_id=run.run_id,
    )
    assert checks[0].n >= 3
    assert _run_tags(dagster_db, run.run_id)["dagster/partition"] == PARTITION
    tables = {
        row.table_name
        for row in _sql(
            dagster_db,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
        )
    }
    # run, event log and schedule storage all live in this database
    assert {"runs", "run_tags", "event_logs", "asset_keys", "jobs", "job_ticks", "instigators"} <= (
        tables
    )


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.e2e
def test_cli_materialize_recorded_in_postgres_with_success(pg_home: Path, dagster_db: URL) -> None:
    # every step in the run's own process: the default multiprocess executor starts one process
    # (imports, a Dask cluster) per step, ~4 min here for the same assertions; the storage path
    # (run, events, status written to PostgreSQL) is the same
    day = _dagster(
        ["asset", "materialize", "-m", "engine_assets.definitions",
         "--select", ",".join(DAY_ASSETS), "--partition", PARTITION,
         "--config-json", json.dumps(IN_PROCESS)]
    )  # fmt: skip
    assert day.returncode == 0, day.stderr[-3000:]
    (run,) = _sql(dagster_db, "SELECT run_id, status, partition FROM runs")
    assert (run.status, run.partition) == ("SUCCESS", PARTITION)
    assert _materialized_assets(dagster_db, run.run_id) == set(DAY_ASSETS)
    info = _dagster(["instance", "info"])
    assert info.returncode == 0, info.stderr[-2000:]
    assert "PostgresRunStorage" in info.stdout and "PostgresScheduleStorage" in info.stdout


@pytest.mark.postgres
@pytest.mark.e2e
def test_cli_schedule_state_stored_in_postgres(pg_home: Path, dagster_db: URL) -> None:
    # the schedules run by default (DefaultScheduleStatus.RUNNING), which Dagster does not store;
    # a change made from the CLI (or the UI) is stored, in PostgreSQL
    stopped = _dagster(
        ["schedule", "stop", "weekly_leaderboard_schedule", "-m", "engine_assets.definitions"]
    )
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    rows = _sql(dagster_db, "SELECT job_type, status, job_body FROM jobs")
    states = {
        (
            row.job_type,
            dg.deserialize_value(row.job_body, InstigatorState).instigator_name,
        ): row.status
        for row in rows
    }
    assert states == {("SCHEDULE", "weekly_leaderboard_schedule"): "STOPPED"}
    # and any other process on this instance (webserver, daemon) reads it back from there
    with dg.DagsterInstance.from_config(str(pg_home)) as instance:
        stored = instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
        assert [(s.instigator_name, s.status) for s in stored] == [
            ("weekly_leaderboard_schedule", InstigatorStatus.STOPPED)
        ]


@dg.asset
def always_fails() -> None:
    raise DataSourceError("a deterministic failure")


@pytest.mark.postgres
def test_failed_runs_retried_unless_a_step_failed(pg_home: Path, dagster_db: URL) -> None:
    """The instance tags each failed run with its retry decision (the daemon then acts on it):
    a step failure is final; a lost run worker (what the code server reports, no reason), a
    start timeout and a run over its maximum runtime (what run monitoring reports) are retried."""
    with dg.DagsterInstance.from_config(str(pg_home)) as instance:
        failed = dg.materialize([always_fails], instance=instance, raise_on_error=False)
        assert not failed.success
        lost = instance.create_run_for_job(failed.job_def)
        instance.report_run_failed(lost)
        never_started = instance.create_run_for_job(failed.job_def)
        instance.report_run_failed(
            never_started,
            job_failure_data=JobFailureData(
                error=None, failure_reason=RunFailureReason.START_TIMEOUT
            ),
        )
        # the monitoring daemon's own runtime check, on a started run whose tag allows 1 ms
        overran = instance.create_run_for_job(failed.job_def, tags={"dagster/max_runtime": "0.001"})
        instance.report_dagster_event(
            DagsterEvent(DagsterEventType.RUN_START.value, job_name=overran.job_name),
            run_id=overran.run_id,
        )
        record = instance.get_run_record_by_id(overran.run_id)
        assert record is not None and record.dagster_run.status == dg.DagsterRunStatus.STARTED
        check_run_timeout(
            instance,
            record,
            logging.getLogger(__name__),
            instance.run_monitoring_max_runtime_seconds,
        )
    step_tags = _run_tags(dagster_db, failed.run_id)
    assert step_tags["dagster/failure_reason"] == "STEP_FAILURE"
    assert step_tags["dagster/will_retry"] == "false"
    for run in (lost, never_started, overran):
        (row,) = _sql(dagster_db, "SELECT status FROM runs WHERE run_id = :id", id=run.run_id)
        assert row.status == "FAILURE"
        assert _run_tags(dagster_db, run.run_id)["dagster/will_retry"] == "true"


def test_ohlcv_retry_policy_backs_off_on_transient_errors_only() -> None:
    assert ohlcv.op.retry_policy == INGEST_RETRY_POLICY
    assert INGEST_RETRY_POLICY.max_retries == 3 and INGEST_RETRY_POLICY.delay == 60
    assert INGEST_RETRY_POLICY.backoff == dg.Backoff.EXPONENTIAL
    attempts: list[str] = []

    # the same wrapper and Dagster's real retry machinery; no delay, so the test does not wait
    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=3))
    def flaky() -> None:
        attempts.append("flaky")
        with retry_only_transient("flaky"):
            if attempts.count("flaky") == 1:
                raise ExchangeTemporaryError("exchange maintenance")

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=3))
    def broken() -> None:
        attempts.append("broken")
        with retry_only_transient("broken"):
            raise DataSourceError("unknown symbol 'NOPE/USDT'")

    with dg.instance_for_test() as instance:
        assert dg.materialize([flaky], instance=instance).success
        failed = dg.materialize([broken], instance=instance, raise_on_error=False)
    assert attempts == ["flaky", "flaky", "broken"]
    (failure,) = [e for e in failed.all_events if e.is_step_failure]
    assert "DataSourceError: unknown symbol 'NOPE/USDT'" in str(failure.step_failure_data.error)
