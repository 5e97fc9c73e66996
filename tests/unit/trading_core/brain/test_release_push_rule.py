"""The daily push rule (issue 13) as a property over any sequence of pushes, and the pipeline
run record's validation."""

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_core.brain.pipeline_runs import PipelineRun, one_line
from trading_core.brain.releases import decide_push

DAY0 = date(2026, 1, 1)
pushes = st.lists(
    st.tuples(st.integers(0, 20), st.sampled_from(["a", "b", "c"])), min_size=1, max_size=30
)


@settings(max_examples=300, deadline=None)
@given(pushes)
def test_push_rule_latest_never_goes_back_in_days_nor_repeats_content(
    sequence: list[tuple[int, str]],
) -> None:
    written: list[tuple[date, str]] = []  # the releases a sequence of daily pushes writes
    for offset, content in sequence:
        day = DAY0 + timedelta(days=offset)
        before = list(written)
        status = decide_push(written[-1] if written else None, day, content)
        if status == "pushed":
            written.append((day, content))
        if status == "refused_older_day":  # nothing written; the latest is of a later day
            assert written == before and day < written[-1][0]
        else:  # after a push that is not refused, the latest release serves its content
            assert written[-1][1] == content
        assert status != "unchanged" or written == before
    days = [day for day, _ in written]
    assert days == sorted(days)  # an older day never becomes the latest release
    assert all(a[1] != b[1] for a, b in pairwise(written))


@pytest.mark.parametrize(
    ("latest", "day", "content", "expected"),
    [
        (None, DAY0, "a", "pushed"),
        ((DAY0, "a"), DAY0 + timedelta(days=1), "a", "unchanged"),  # a new day, same content
        ((DAY0, "a"), DAY0, "a", "unchanged"),
        ((DAY0, "a"), DAY0, "b", "pushed"),  # a same-day rerun with new content
        ((DAY0, "a"), DAY0 - timedelta(days=1), "b", "refused_older_day"),
        ((DAY0, "a"), DAY0 - timedelta(days=1), "a", "refused_older_day"),
    ],
)
def test_decide_push_known_cases_expected_status(
    latest: tuple[date, str] | None, day: date, content: str, expected: str
) -> None:
    assert decide_push(latest, day, content) == expected


T0 = datetime(2026, 10, 31, 2, 0, tzinfo=UTC)


def test_pipeline_run_validated_keeps_first_error_line_and_duration() -> None:
    run = PipelineRun(
        run_id="r1",
        job_name="daily_training",
        partition="2026-10-30",
        status="failure",
        started_at=T0,
        ended_at=T0 + timedelta(minutes=7),
        error="\n  RuntimeError: boom\n  at line 3",
    ).validated()
    assert run.error == "RuntimeError: boom" and run.duration_s == 420.0
    assert one_line("x" * 900) == "x" * 500


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("status", "exploded", "status 'exploded' is not one of"),
        ("release_outcome", "maybe", "release_outcome 'maybe' is not one of"),
        ("run_id", " ", "run_id ' ' and job_name"),
        ("started_at", T0 + timedelta(hours=1), "is after ended_at"),
        ("ended_at", datetime(2026, 10, 31, 3, 0), "must be timezone-aware UTC"),  # noqa: DTZ001
    ],
)
def test_pipeline_run_bad_field_raises_naming_it(field: str, value: object, message: str) -> None:
    fields: dict[str, object] = {
        "run_id": "r1",
        "job_name": "release_push",
        "partition": None,
        "status": "success",
        "started_at": T0,
        "ended_at": T0 + timedelta(minutes=1),
        field: value,
    }
    with pytest.raises(ValueError, match=message):
        PipelineRun(**fields).validated()  # type: ignore[arg-type]
