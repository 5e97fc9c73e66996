"""Issue 13 on SQLite and PostgreSQL: the daily push writes no release for unchanged content
(whatever the date) and refuses an older day; the pipeline run table records, replaces and
summarizes the daily runs."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.integration.brain_fixtures import (
    BTC_TREND_1H,
    ETH_RANGE_4H,
    brain,
    brain_dsn,
    pg_schema_dsn,
    register,
    sqlite_template,
)
from trading_core.brain import BrainLibrary
from trading_core.brain.pipeline_runs import PipelineRun
from trading_core.brain.schema import ReleaseRow
from trading_core.training.orchestrate import push_release
from trading_core.types import Stage

FIXTURES = (brain, brain_dsn, pg_schema_dsn, sqlite_template)
DAY1, DAY2, DAY3 = date(2025, 1, 15), date(2025, 1, 16), date(2025, 1, 17)
T0 = datetime(2025, 1, 16, 2, 0, tzinfo=UTC)


def _release_rows(library: BrainLibrary) -> int:
    with library.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ReleaseRow)).scalar_one())


def test_daily_push_unchanged_then_refused_older_day_writes_no_row(brain: BrainLibrary) -> None:
    a, b = register(brain, BTC_TREND_1H, "a"), register(brain, ETH_RANGE_4H, "b")
    brain.set_stage(a.name, Stage.PRODUCTION, actor="tests", reason="seed")
    first = push_release(brain, DAY1)
    assert first.status == "pushed" and first.release is not None
    again = push_release(brain, DAY2)  # a new day, the same models: nothing to write
    assert again.status == "unchanged" and again.release == first.release
    assert again.release.release_date == DAY1 and _release_rows(brain) == 1  # age kept
    brain.set_stage(b.name, Stage.PRODUCTION, actor="tests", reason="day 3 adds ETH")
    third = push_release(brain, DAY3)
    assert third.status == "pushed" and third.release is not None
    assert third.release.parent_id == first.release.id
    older = push_release(brain, DAY2)  # re-pushing day 2 after day 3's release
    assert older.status == "refused_older_day" and older.release == third.release
    assert brain.latest_release() == third.release and _release_rows(brain) == 2


def test_daily_push_with_nothing_in_production_is_nothing_to_release(brain: BrainLibrary) -> None:
    register(brain, BTC_TREND_1H, "a")
    outcome = push_release(brain, DAY1)
    assert (outcome.status, outcome.release) == ("nothing_to_release", None)
    assert _release_rows(brain) == 0


def test_rollback_still_writes_a_release_after_unchanged_pushes(brain: BrainLibrary) -> None:
    """Rollbacks are operator actions: they keep writing a new release, as before."""
    a, b = register(brain, BTC_TREND_1H, "a"), register(brain, BTC_TREND_1H, "b")
    first = brain.create_release(DAY1, production=[a.name], created_by="dagster")
    brain.create_release(DAY2, production=[b.name], created_by="dagster")
    assert push_release(brain, DAY3).status == "unchanged"
    back = brain.rollback_release(first.id, actor="ops", reason="bad model")
    assert back.rollback_of_id == first.id and back.production == (a.name,)
    assert brain.latest_release() == back


def _run(run_id: str, job: str, status: str, minutes: int, **kw: object) -> PipelineRun:
    ended = T0 + timedelta(minutes=minutes)
    return PipelineRun(
        run_id=run_id,
        job_name=job,
        partition="2025-01-15",
        status=status,
        started_at=ended - timedelta(minutes=5),
        ended_at=ended,
        **kw,  # type: ignore[arg-type]
    )


def test_pipeline_runs_recorded_replaced_and_summarized(brain: BrainLibrary) -> None:
    assert brain.pipeline_summary().counts == {} and brain.pipeline_runs() == []
    brain.record_pipeline_run(_run("t1", "daily_training", "success", 0))
    brain.record_pipeline_run(_run("p1", "release_push", "success", 10, release_outcome="pushed"))
    brain.record_pipeline_run(
        _run("t2", "daily_training", "failure", 1440, failed_step="ohlcv", error="E: x\ny")
    )
    brain.record_pipeline_run(
        _run("p2", "release_push", "success", 1450, release_outcome="refused_older_day")
    )
    summary = brain.pipeline_summary()
    assert summary.counts == {
        ("daily_training", "success"): 1,
        ("daily_training", "failure"): 1,
        ("release_push", "success"): 2,
    }
    assert summary.last["daily_training"].run_id == "t2"
    assert summary.last["daily_training"].error == "E: x"
    assert summary.last["daily_training"].duration_s == 300.0
    # a refused push is not a release confirmed: the last success is p1's
    assert summary.last_push_success_at == T0 + timedelta(minutes=10)
    # recording a run again replaces it (one row per run id)
    brain.record_pipeline_run(_run("t2", "daily_training", "success", 1440))
    assert [r.run_id for r in brain.pipeline_runs("daily_training")] == ["t2", "t1"]
    assert brain.pipeline_summary().counts[("daily_training", "success")] == 2
    assert len(brain.pipeline_runs()) == 4


def test_pipeline_run_bad_status_writes_nothing(brain: BrainLibrary) -> None:
    with pytest.raises(ValueError, match="status 'ok' is not one of"):
        brain.record_pipeline_run(_run("t1", "daily_training", "ok", 0))
    assert brain.pipeline_runs() == []
