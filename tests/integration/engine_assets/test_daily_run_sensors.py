"""Issue 13, end to end on real Dagster runs: a failed training day writes no release, records a
failure row and a ``daily_run_failed`` line, and sets the metric that fires EngineDailyRunFailed
in a real Prometheus; a good day chains the push (once per training run), records its outcome,
and an unchanged second push keeps the release and its age."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from prometheus_client import start_http_server

from engine_assets.assets import universe
from engine_assets.definitions import defs
from engine_assets.logging import RANGE_TAGS
from engine_assets.resources import EngineConfigResource
from engine_assets.sensors import (
    covers,
    daily_run_failure_sensor,
    daily_run_success_sensor,
    record_finished_run,
    release_push_after_training,
    run_partitions,
    run_verdict,
    training_day_verdict,
)
from hamilton_exec.runtime.release_sensor import export_pipeline_metrics
from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from tests.integration.brain_fixtures import BTC_TREND_1H, register
from tests.integration.dagster_fixtures import engine_env
from tests.integration.prometheus_harness import free_port, running_prometheus
from tests.integration.test_prometheus_rules import ALERTS
from trading_core.brain import BrainLibrary
from trading_core.config import load_config
from trading_core.types import Stage

PARTITION = "2026-10-31"
SMALL = {"ENGINE__DATA__SYNTHETIC__N_COINS": "30", "ENGINE__ENGINE__ACTIVE_COINS": "3"}


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BrainLibrary]:
    """An isolated engine config whose library already has a production model: a push that
    ran would write a release."""
    for key, value in {**engine_env(tmp_path), **SMALL}.items():
        monkeypatch.setenv(key, value)
    brain = BrainLibrary.from_config(load_config())
    brain.migrate()
    model = register(brain, BTC_TREND_1H, "a")
    brain.set_stage(model.name, Stage.PRODUCTION, actor="tests", reason="seed")
    try:
        yield brain
    finally:
        brain.close()


def _execute(instance: dg.DagsterInstance, job: str, **kw: Any) -> dg.DagsterRun:
    result = defs.resolve_job_def(job).execute_in_process(
        partition_key=PARTITION, instance=instance, raise_on_error=False, **kw
    )
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    return run


def _status_context(
    instance: dg.DagsterInstance, run: dg.DagsterRun, sensor: str
) -> dg.RunStatusSensorContext:
    kind = {
        dg.DagsterRunStatus.SUCCESS: dg.DagsterEventType.RUN_SUCCESS,
        dg.DagsterRunStatus.FAILURE: dg.DagsterEventType.RUN_FAILURE,
    }[run.status]
    (entry,) = instance.all_logs(run.run_id, of_type=kind)
    assert entry.dagster_event is not None
    return dg.build_run_status_sensor_context(
        sensor_name=sensor,
        dagster_event=entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"engine_config": EngineConfigResource()},
    )


def _logged(capfd: pytest.CaptureFixture[str], event: str) -> list[dict[str, Any]]:
    out, err = capfd.readouterr()
    lines = [json.loads(line) for line in (out + err).splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def _fail_universe(*_: object, **__: object) -> Any:
    raise RuntimeError("exchange listing unreachable\nsecond line of the traceback")


def test_failed_training_day_writes_no_release_records_failure_and_fires_alert(
    library: BrainLibrary,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(universe, "universe_snapshot_with_quality", _fail_universe)
    with dg.instance_for_test() as instance:
        training = _execute(instance, "daily_training")
        assert training.status == dg.DagsterRunStatus.FAILURE
        capfd.readouterr()
        failure = _status_context(instance, training, "daily_run_failure_sensor")
        daily_run_failure_sensor(failure.for_run_failure())
        (event,) = _logged(capfd, "daily_run_failed")
        assert event["job"] == "daily_training" and event["partition"] == PARTITION
        assert event["run_id"] == training.run_id and event["step"] == "coin_universe"
        assert event["error"] == "RuntimeError: exchange listing unreachable"
        (row,) = library.pipeline_runs()
        assert (row.job_name, row.partition, row.status) == ("daily_training", PARTITION, "failure")
        assert row.error == event["error"] and row.duration_s is not None
        # the chain never requests a push for a failed day (defensive: it watches SUCCESS only)
        chained = release_push_after_training(
            _status_context(instance, training, "release_push_after_training")
        )
        assert isinstance(chained, dg.SkipReason)
        # a manual push of the failed day is refused loudly, and writes nothing
        push = _execute(instance, "release_push")
        assert push.status == dg.DagsterRunStatus.FAILURE
        verdict = run_verdict(instance, push)
        assert verdict.failed_step == "brain_library_push"
        assert "refusing to push partition 2026-10-31" in verdict.error
        daily_run_failure_sensor(
            _status_context(instance, push, "daily_run_failure_sensor").for_run_failure()
        )
    assert library.latest_release() is None
    assert {(r.job_name, r.status) for r in library.pipeline_runs()} == {
        ("daily_training", "failure"),
        ("release_push", "failure"),
    }
    metrics = HamiltonMetrics(venue="binance")
    export_pipeline_metrics(library, metrics)
    assert metrics.daily_run_last_status.labels("daily_training")._value.get() == 0.0
    assert metrics.daily_runs.labels("daily_training", "failure")._value.get() == 1.0
    _assert_alert_fires(
        metrics, tmp_path, "EngineDailyRunFailed", {"dagster_job": "daily_training"}
    )


def _assert_alert_fires(
    metrics: HamiltonMetrics, tmp_path: Path, alert: str, labels: dict[str, str]
) -> None:
    """A real Prometheus with alerts.yml scraping the metrics object Hamilton exports."""
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    try:
        (tmp_path / "prom").mkdir()
        with running_prometheus([f"127.0.0.1:{port}"], tmp_path / "prom", rule_files=[ALERTS]) as p:
            matchers = ", ".join(
                f'{k}="{v}"'
                for k, v in {"alertname": alert, "alertstate": "firing", **labels}.items()
            )
            p.wait_for_series(f"ALERTS{{{matchers}}}", timeout_s=30)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_good_day_chains_one_push_then_unchanged_push_keeps_release(
    library: BrainLibrary,
) -> None:
    with dg.instance_for_test() as instance:
        # the day's training, cut to its first asset: a real daily_training run that succeeds
        training = _execute(
            instance, "daily_training", asset_selection=[dg.AssetKey("coin_universe")]
        )
        assert training.status == dg.DagsterRunStatus.SUCCESS
        daily_run_success_sensor(_status_context(instance, training, "daily_run_success_sensor"))
        request = release_push_after_training(
            _status_context(instance, training, "release_push_after_training")
        )
        assert isinstance(request, dg.RunRequest)
        assert request.partition_key == PARTITION
        assert request.run_key == f"release_push_after:{training.run_id}"
        pushes = []
        for _ in range(2):  # the chained push, then the same content again (a later day's push)
            push = _execute(instance, "release_push", tags=request.tags)
            assert push.status == dg.DagsterRunStatus.SUCCESS
            daily_run_success_sensor(_status_context(instance, push, "daily_run_success_sensor"))
            pushes.append(push)
    runs = {r.run_id: r for r in library.pipeline_runs()}
    assert runs[training.run_id].status == "success"
    assert runs[training.run_id].duration_s is not None
    assert [runs[p.run_id].release_outcome for p in pushes] == ["pushed", "unchanged"]
    (release,) = library.list_releases()
    assert str(release.release_date) == PARTITION
    summary = library.pipeline_summary()
    assert summary.last_push_success_at == runs[pushes[1].run_id].ended_at
    metrics = HamiltonMetrics(venue="binance")
    export_pipeline_metrics(library, metrics)
    assert metrics.daily_run_last_status.labels("daily_training")._value.get() == 1.0
    assert metrics.daily_run_last_status.labels("release_push")._value.get() == 1.0
    assert metrics.release_last_success._value.get() == pytest.approx(
        runs[pushes[1].run_id].ended_at.timestamp()
    )


@dg.asset
def _tiny() -> int:
    return 1


@dg.asset_check(asset=_tiny)
def _tiny_error_check() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False, severity=dg.AssetCheckSeverity.ERROR, description="3 keys failed"
    )


@dg.asset_check(asset=_tiny)
def _tiny_warn_check() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN)


def test_failed_error_check_in_successful_run_is_a_failed_day() -> None:
    """Dagster counts a run whose non-blocking check failed as a success; the day is not one
    when the check is ERROR severity (WARN stays a success)."""
    verdicts = []
    with dg.instance_for_test() as instance:
        for checks in ([_tiny_error_check, _tiny_warn_check], [_tiny_warn_check]):
            result = dg.materialize([_tiny, *checks], instance=instance, raise_on_error=False)
            assert result.success
            run = instance.get_run_by_id(result.run_id)
            assert run is not None
            verdicts.append(run_verdict(instance, run))
    failed, warned = verdicts
    assert (failed.status, failed.failed_step) == ("failure", "_tiny:_tiny_error_check")
    assert failed.error == "asset check _tiny:_tiny_error_check failed: 3 keys failed"
    assert (warned.status, warned.failed_step, warned.error) == ("success", "", "")


def test_canceled_training_run_recorded_as_canceled_day(library: BrainLibrary) -> None:
    with dg.instance_for_test() as instance:
        run = instance.add_run(
            dg.DagsterRun(
                job_name="daily_training",
                run_id="canceled-run-1",
                status=dg.DagsterRunStatus.CANCELED,
                tags={"dagster/partition": PARTITION},
            )
        )
        stored = record_finished_run(instance, run, EngineConfigResource())
        assert training_day_verdict(instance, PARTITION) == (
            "canceled-run-1",
            run_verdict(instance, run),
        )
    assert (stored.status, stored.partition, stored.error) == (
        "canceled",
        PARTITION,
        "run canceled",
    )
    metrics = HamiltonMetrics(venue="binance")
    export_pipeline_metrics(library, metrics)
    assert metrics.daily_run_last_status.labels("daily_training")._value.get() == -1.0


@pytest.mark.parametrize(
    ("tags", "day", "expected"),
    [
        ({"dagster/partition": "2026-10-31"}, "2026-10-31", True),
        ({"dagster/partition": "2026-10-31"}, "2026-10-30", False),
        (dict(zip(RANGE_TAGS, ("2026-10-01", "2026-10-31"), strict=True)), "2026-10-15", True),
        (dict(zip(RANGE_TAGS, ("2026-10-01", "2026-10-31"), strict=True)), "2026-11-01", False),
        ({}, "2026-10-31", False),
    ],
)
def test_run_partitions_cover_single_days_and_backfill_ranges(
    tags: dict[str, str], day: str, expected: bool
) -> None:
    assert covers(run_partitions(tags), day) is expected
