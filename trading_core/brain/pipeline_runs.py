"""The daily pipeline's own records: one row per finished run of a daily job, and the push.

Dagster's run status sensors write a row when a daily job (``daily_training``,
``release_push``) ends: its status (``success`` / ``failure`` / ``canceled``; a run whose
ERROR-severity asset check failed is a ``failure`` too), duration, first failing step and error,
and for a push the release outcome (:data:`trading_core.brain.releases.PushStatus`). Hamilton
reads the summary back and exports it to Prometheus (a batch job has no scrape target), so a
failed day shows as a metric and an alert, not only as a red run in Dagster's UI.

The table lives in the Brain Library (same database, same migrations) so that the record of a
day and the release it produced are written and read together.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy import CheckConstraint, Float, Index, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from trading_core.brain import releases
from trading_core.brain.db import Database
from trading_core.brain.schema import Base, BigId
from trading_core.errors import DataValidationError
from trading_core.observability.logging import get_logger

RUN_STATUSES: Final[tuple[str, ...]] = ("success", "failure", "canceled")
ERROR_MAX_CHARS: Final = 500


def _log() -> Any:
    return get_logger(__name__)


class PipelineRunRow(Base):
    __tablename__ = "pipeline_runs"
    __table_args__ = (
        CheckConstraint("status IN ('success', 'failure', 'canceled')", name="status"),
        Index("ix_pipeline_runs_job_name_ended_at", "job_name", "ended_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), unique=True)
    job_name: Mapped[str] = mapped_column(String(64))
    partition_key: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime]
    duration_s: Mapped[float | None] = mapped_column(Float)
    failed_step: Mapped[str] = mapped_column(String(256))
    error: Mapped[str] = mapped_column(Text)
    release_outcome: Mapped[str | None] = mapped_column(String(32))
    recorded_at: Mapped[datetime]


def one_line(text: str) -> str:
    """The first non-empty line of an error message, bounded (a log line, a table cell)."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first[:ERROR_MAX_CHARS]


@dataclass(frozen=True, slots=True)
class PipelineRun:
    """One finished run of a daily job (module docstring)."""

    run_id: str
    job_name: str
    partition: str | None
    status: str
    ended_at: datetime
    started_at: datetime | None = None
    failed_step: str = ""
    error: str = ""
    release_outcome: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def validated(self) -> "PipelineRun":
        """The record with its error cut to one line; DataValidationError naming a bad field."""
        if not self.run_id.strip() or not self.job_name.strip():
            raise DataValidationError(
                f"run_id {self.run_id!r} and job_name {self.job_name!r} are required"
            )
        if self.status not in RUN_STATUSES:
            raise DataValidationError(f"status {self.status!r} is not one of {RUN_STATUSES}")
        if self.release_outcome is not None and self.release_outcome not in releases.PUSH_STATUSES:
            raise DataValidationError(
                f"release_outcome {self.release_outcome!r} is not one of {releases.PUSH_STATUSES}"
            )
        for name, value in (("started_at", self.started_at), ("ended_at", self.ended_at)):
            if value is not None and value.tzinfo is None:
                raise DataValidationError(f"{name} {value!r} must be timezone-aware UTC")
        if self.started_at is not None and self.started_at > self.ended_at:
            raise DataValidationError(
                f"started_at {self.started_at} is after ended_at {self.ended_at}"
            )
        return replace(self, error=one_line(self.error), failed_step=self.failed_step[:256])


@dataclass(frozen=True, slots=True)
class PipelineSummary:
    """What Hamilton exports: run counts per (job, status), each job's newest run, and when a
    push last left the day's content serving (outcome pushed or unchanged)."""

    counts: Mapping[tuple[str, str], int]
    last: Mapping[str, PipelineRun]
    last_push_success_at: datetime | None = None
    jobs: tuple[str, ...] = field(default=())


def _to_record(row: PipelineRunRow) -> PipelineRun:
    return PipelineRun(
        run_id=row.run_id,
        job_name=row.job_name,
        partition=row.partition_key,
        status=row.status,
        ended_at=row.ended_at,
        started_at=row.started_at,
        failed_step=row.failed_step,
        error=row.error,
        release_outcome=row.release_outcome,
    )


def upsert_run(session: Session, run: PipelineRun, at: datetime) -> PipelineRun:
    """One row per run id; recording a run again replaces its fields (a re-evaluated sensor)."""
    row = session.execute(
        select(PipelineRunRow).filter_by(run_id=run.run_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        row = PipelineRunRow(run_id=run.run_id)
        session.add(row)
    values = {
        "job_name": run.job_name, "partition_key": run.partition, "status": run.status,
        "started_at": run.started_at, "ended_at": run.ended_at, "duration_s": run.duration_s,
        "failed_step": run.failed_step, "error": run.error,
        "release_outcome": run.release_outcome, "recorded_at": at,
    }  # fmt: skip
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()
    return _to_record(row)


def list_runs(session: Session, job_name: str | None, limit: int | None) -> list[PipelineRun]:
    newest = (PipelineRunRow.ended_at.desc(), PipelineRunRow.id.desc())
    query = select(PipelineRunRow).order_by(*newest)
    if job_name is not None:
        query = query.where(PipelineRunRow.job_name == job_name)
    rows = session.execute(query if limit is None else query.limit(limit)).scalars().all()
    return [_to_record(r) for r in rows]


def summary(session: Session) -> PipelineSummary:
    counted = session.execute(
        select(PipelineRunRow.job_name, PipelineRunRow.status, func.count()).group_by(
            PipelineRunRow.job_name, PipelineRunRow.status
        )
    ).all()
    counts = {(job, status): int(n) for job, status, n in counted}
    jobs = tuple(sorted({job for job, _ in counts}))
    last = {job: list_runs(session, job, 1)[0] for job in jobs}
    # max() is typed from its argument, so UTCDateTime gives an aware datetime on both backends
    pushed = session.execute(
        select(func.max(PipelineRunRow.ended_at)).where(
            PipelineRunRow.status == "success",
            PipelineRunRow.release_outcome.in_(sorted(releases.PUSH_SUCCESSES)),
        )
    ).scalar_one_or_none()
    return PipelineSummary(counts=counts, last=last, last_push_success_at=pushed, jobs=jobs)


class PipelineRunsMixin:
    """BrainLibrary methods for the daily pipeline's run records (its push is
    :meth:`~trading_core.brain.library_data.BrainDataMixin.push_daily_release`)."""

    _db: Database
    _clock: Callable[[], datetime]

    def record_pipeline_run(self, run: PipelineRun) -> PipelineRun:
        """Store (or replace) the record of one finished daily run."""
        checked = run.validated()
        stored = self._db.write(lambda s: upsert_run(s, checked, self._clock()))
        _log().info("pipeline_run_recorded", run_id=stored.run_id, job=stored.job_name,
                    partition=stored.partition, status=stored.status)  # fmt: skip
        return stored

    def pipeline_runs(
        self, job_name: str | None = None, limit: int | None = 50
    ) -> list[PipelineRun]:
        """Newest first (by end time)."""
        with self._db.read() as session:
            return list_runs(session, job_name, limit)

    def pipeline_summary(self) -> PipelineSummary:
        with self._db.read() as session:
            return summary(session)
