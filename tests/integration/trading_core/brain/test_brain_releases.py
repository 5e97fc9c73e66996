"""Releases on SQLite and PostgreSQL: atomicity, idempotency, stages, rollback."""

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event, func, select

from tests.integration.brain_fixtures import (
    BTC_TREND_1H,
    ETH_RANGE_4H,
    brain,
    brain_dsn,
    pg_schema_dsn,
    register,
    sqlite_template,
)
from trading_core.brain import BrainLibrary, ModelVersion
from trading_core.brain.schema import ReleaseEntryRow, ReleaseRow, StageHistoryRow
from trading_core.errors import ModelNotFoundError, StageTransitionError
from trading_core.types import Stage

# Fixtures are found as attributes of the test module: importing them registers them.
FIXTURES = (brain, brain_dsn, pg_schema_dsn, sqlite_template)

DAY1, DAY2 = date(2025, 1, 15), date(2025, 1, 16)
GATES = {"TREND": {"enabled_engines": ["trend_v1"], "disabled_engines": ["range_trading"]}}


@pytest.fixture
def models(brain: BrainLibrary) -> dict[str, ModelVersion]:
    return {
        "btc_a": register(brain, BTC_TREND_1H, "a"),
        "btc_b": register(brain, BTC_TREND_1H, "b"),
        "eth_a": register(brain, ETH_RANGE_4H, "a"),
        "eth_b": register(brain, ETH_RANGE_4H, "b"),
    }


def _counts(brain: BrainLibrary) -> tuple[int, int, int]:
    with brain.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (ReleaseRow, ReleaseEntryRow, StageHistoryRow)
        )


def test_create_release_applies_stages_and_lists_models(
    brain: BrainLibrary, models: dict[str, ModelVersion]
) -> None:
    release = brain.create_release(
        DAY1, production=[models["btc_a"].name], shadow=[models["eth_a"].name], gates=GATES,
        created_by="dagster", note="daily push",
    )  # fmt: skip
    assert release.production == (models["btc_a"].name,)
    assert release.shadow == (models["eth_a"].name,)
    assert release.gates == GATES and release.parent_id is None
    assert brain.latest_release() == release == brain.get_release(release.id)
    assert brain.production_model(BTC_TREND_1H).name == models["btc_a"].name  # type: ignore[union-attr]
    assert brain.shadow_model(ETH_RANGE_4H).name == models["eth_a"].name  # type: ignore[union-attr]
    roles = {(m.name, m.role, m.stage) for m in brain.release_models(release.id)}
    assert roles == {
        (models["btc_a"].name, "production", Stage.PRODUCTION),
        (models["eth_a"].name, "shadow", Stage.SHADOW),
    }
    assert brain.stage_history(models["btc_a"].name)[-1].actor == "dagster"


def test_same_day_same_content_returns_existing_release(
    brain: BrainLibrary, models: dict[str, ModelVersion]
) -> None:
    names = [models["btc_a"].name, models["eth_a"].name]
    first = brain.create_release(DAY1, production=names, created_by="dagster")
    before = _counts(brain)
    again = brain.create_release(DAY1, production=list(reversed(names)), created_by="dagster")
    assert again == first
    assert _counts(brain) == before
    assert len(brain.list_releases()) == 1


def test_next_day_release_links_parent_and_archives_replaced(
    brain: BrainLibrary, models: dict[str, ModelVersion]
) -> None:
    first = brain.create_release(DAY1, production=[models["btc_a"].name], created_by="dagster")
    second = brain.create_release(DAY2, production=[models["btc_b"].name], created_by="dagster")
    assert second.parent_id == first.id
    assert brain.get_model(models["btc_a"].name).stage is Stage.ARCHIVED
    assert [r.id for r in brain.list_releases()] == [second.id, first.id]
    assert [r.id for r in brain.list_releases(limit=1)] == [second.id]


class _InjectedFailureError(RuntimeError):
    pass


@pytest.fixture
def fail_on_release_entry(brain: BrainLibrary) -> Iterator[None]:
    """Make the database driver fail when the release's entries are being inserted."""

    def before_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO RELEASE_ENTRIES"):
            raise _InjectedFailureError("disk full while writing release_entries")

    event.listen(brain.engine, "before_cursor_execute", before_execute)
    yield
    event.remove(brain.engine, "before_cursor_execute", before_execute)


def test_release_failing_midway_leaves_library_unchanged(
    brain: BrainLibrary, models: dict[str, ModelVersion], fail_on_release_entry: None
) -> None:
    brain.promote(models["btc_a"].name, actor="t", reason="baseline")
    before_counts = _counts(brain)
    before_models = brain.list_models()
    with pytest.raises(_InjectedFailureError):
        brain.create_release(
            DAY1, production=[models["btc_b"].name, models["eth_a"].name], created_by="dagster"
        )
    assert brain.latest_release() is None
    assert _counts(brain) == before_counts
    assert brain.list_models() == before_models
    assert brain.production_model(BTC_TREND_1H).name == models["btc_a"].name  # type: ignore[union-attr]


def test_release_with_unknown_model_writes_nothing(
    brain: BrainLibrary, models: dict[str, ModelVersion]
) -> None:
    before = _counts(brain)
    with pytest.raises(ModelNotFoundError, match="ETH_RANGE_4h_v9"):
        brain.create_release(
            DAY1, production=[models["btc_a"].name, "ETH_RANGE_4h_v9_20250115_020000"],
            created_by="dagster",
        )  # fmt: skip
    assert _counts(brain) == before
    assert brain.get_model(models["btc_a"].name).stage is Stage.CANDIDATE


def test_release_with_refused_transition_writes_nothing(
    brain: BrainLibrary, models: dict[str, ModelVersion]
) -> None:
    brain.set_stage(models["eth_a"].name, Stage.ARCHIVED, actor="t", reason="bad")
    before = _counts(brain)
    with pytest.raises(StageTransitionError):
        brain.create_release(
            DAY1, production=[models["btc_a"].name], shadow=[models["eth_a"].name],
            created_by="dagster",
        )  # fmt: skip
    assert _counts(brain) == before


def test_rollback_release_writes_new_equal_release_and_restores_models(
    brain: BrainLibrary, models: dict[str, ModelVersion]
) -> None:
    first = brain.create_release(
        DAY1, production=[models["btc_a"].name, models["eth_a"].name],
        shadow=[models["eth_b"].name], gates=GATES, created_by="dagster",
    )  # fmt: skip
    second = brain.create_release(DAY2, production=[models["btc_b"].name], created_by="dagster")
    rolled = brain.rollback_release(first.id, actor="ops", reason="day 2 is losing")
    assert rolled.id not in {first.id, second.id}
    assert rolled.rollback_of_id == first.id and rolled.parent_id == second.id
    assert (rolled.production, rolled.shadow, rolled.gates) == (
        first.production, first.shadow, first.gates,
    )  # fmt: skip
    assert rolled.content_sha256 == first.content_sha256
    assert brain.latest_release() == rolled
    assert brain.production_model(BTC_TREND_1H).name == models["btc_a"].name  # type: ignore[union-attr]
    assert brain.get_model(models["btc_b"].name).stage is Stage.ARCHIVED
    last = brain.stage_history(models["btc_a"].name)[-1]
    assert (last.from_stage, last.to_stage, last.actor) == (Stage.ARCHIVED, Stage.PRODUCTION, "ops")
    assert "day 2 is losing" in last.reason


def test_rollback_release_repeated_is_idempotent(
    brain: BrainLibrary, models: dict[str, ModelVersion]
) -> None:
    first = brain.create_release(DAY1, production=[models["btc_a"].name], created_by="dagster")
    brain.create_release(DAY2, production=[models["btc_b"].name], created_by="dagster")
    rolled = brain.rollback_release(first.id, actor="ops", reason="r")
    assert brain.rollback_release(first.id, actor="ops", reason="r") == rolled
    assert len(brain.list_releases()) == 3


def test_rollback_release_unknown_id_raises(brain: BrainLibrary) -> None:
    with pytest.raises(ModelNotFoundError, match="release with id 42"):
        brain.rollback_release(42, actor="ops", reason="r")
    with pytest.raises(ModelNotFoundError):
        brain.release_models(42)


def test_release_refuses_two_models_of_one_key(
    brain: BrainLibrary, models: dict[str, ModelVersion]
) -> None:
    with pytest.raises(ValueError, match="at most one per key"):
        brain.create_release(
            DAY1, production=[models["btc_a"].name, models["btc_b"].name], created_by="dagster"
        )
