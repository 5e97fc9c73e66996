"""Brain Library models on SQLite and PostgreSQL: migrations, registration, stages, artifacts."""

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import structlog
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from tests.integration.brain_fixtures import (
    BTC_TREND_1H,
    ETH_RANGE_4H,
    T0,
    brain,
    brain_dsn,
    fake_artifact,
    pg_schema_dsn,
    register,
    require_postgres,
    sqlite_template,
)
from trading_core.brain import BrainLibrary, head_revision
from trading_core.brain.schema import Base
from trading_core.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    BrainLibraryError,
    BrainUnavailableError,
    ModelNotFoundError,
    StageTransitionError,
)
from trading_core.types import Stage

# Fixtures are found as attributes of the test module: importing them registers them.
FIXTURES = (brain, brain_dsn, pg_schema_dsn, sqlite_template)


# --- migrations ------------------------------------------------------------------------------


def _schema_diff(library: BrainLibrary, metadata: sa.MetaData) -> list[object]:
    with library.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def test_migrate_schema_equals_models_metadata(brain: BrainLibrary) -> None:
    assert _schema_diff(brain, Base.metadata) == []
    assert brain.schema_is_current()


def test_schema_diff_detects_a_column_missing_from_migrations(brain: BrainLibrary) -> None:
    # The comparison above can fail: a model column the migrations never created shows up.
    metadata = sa.MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    metadata.tables["releases"].append_column(sa.Column("extra_note", sa.Text()))
    diff = _schema_diff(brain, metadata)
    assert [d[0] for d in diff if isinstance(d, tuple)] == ["add_column"]


def test_migrate_twice_is_noop_and_at_head(brain: BrainLibrary) -> None:
    register(brain)
    assert brain.migrate() == head_revision()
    assert len(brain.list_models()) == 1


def test_unmigrated_database_raises_fatal_with_hint(brain_dsn: str, tmp_path: Path) -> None:
    library = BrainLibrary(brain_dsn, tmp_path / "a")
    assert not library.schema_is_current()
    with pytest.raises(BrainLibraryError, match="migrate") as info:
        library.list_models()
    assert not info.value.retryable


def test_partial_unique_indexes_exist(brain: BrainLibrary) -> None:
    names = {ix["name"] for ix in inspect(brain.engine).get_indexes("model_versions")}
    assert {"ux_model_versions_one_production", "ux_model_versions_one_shadow"} <= names


# --- registration --------------------------------------------------------------------------


def test_register_names_and_numbers_versions_per_key(brain: BrainLibrary) -> None:
    first = register(brain, tag="a")
    second = register(brain, tag="b", created_at=datetime(2025, 1, 16, 2, tzinfo=UTC))
    other = register(brain, ETH_RANGE_4H, tag="a")
    assert first.name == "BTC_TREND_1h_v1_20250115_020000"
    assert second.name == "BTC_TREND_1h_v2_20250116_020000"
    assert other.name == "ETH_RANGE_4h_v1_20250115_020000"
    assert first.stage is Stage.CANDIDATE
    stored = brain.get_model(first.name)
    assert stored == first
    assert stored.created_at == T0 and stored.created_at.tzinfo is not None
    assert stored.partition_date == date(2025, 1, 15)
    assert stored.feature_list == ("ret_1", "vol_24")


def test_register_same_data_and_params_returns_existing(brain: BrainLibrary) -> None:
    first = register(brain, tag="a")
    again = register(brain, tag="a", sharpe=9.0)  # metrics do not define identity
    assert again == first
    assert len(brain.list_models()) == 1


def test_register_changed_params_makes_new_version(brain: BrainLibrary) -> None:
    first = register(brain, tag="a")
    second = brain.register_model(
        BTC_TREND_1H, fake_artifact("p"), metrics={"sharpe": 1.0}, params={"max_depth": 6},
        feature_list=["ret_1"], data_hash="data-a", partition_date=date(2025, 1, 15),
        created_at=T0,
    )  # fmt: skip
    assert (first.version, second.version) == (1, 2)


def test_register_stores_reliability_and_correlation(brain: BrainLibrary) -> None:
    model = brain.register_model(
        BTC_TREND_1H, fake_artifact("r"), metrics={"sharpe": 1.0}, params={},
        feature_list=["f"], data_hash="d", partition_date=date(2025, 1, 15), created_at=T0,
        reliability={"trend_v1": 0.7, "breakout": 0.4},
        correlation={"trend_v1": {"breakout": 0.85}}, artifact_format="json",
    )  # fmt: skip
    stored = brain.get_model(model.name)
    assert stored.reliability == {"trend_v1": 0.7, "breakout": 0.4}
    assert stored.correlation == {"trend_v1": {"breakout": 0.85}}
    assert stored.artifact_format == "json"


def test_register_bad_input_writes_nothing(brain: BrainLibrary) -> None:
    with pytest.raises(ValueError, match="metrics"):
        brain.register_model(
            BTC_TREND_1H, fake_artifact("x"), metrics={"sharpe": float("nan")}, params={},
            feature_list=["f"], data_hash="d", partition_date=date(2025, 1, 15), created_at=T0,
        )  # fmt: skip
    assert brain.list_models() == []
    assert not brain.artifacts.root.exists() or not any(brain.artifacts.root.rglob("*"))


def test_get_model_unknown_raises_not_found(brain: BrainLibrary) -> None:
    with pytest.raises(ModelNotFoundError, match="BTC_TREND_1h_v9"):
        brain.get_model("BTC_TREND_1h_v9_20250115_020000")


def test_list_models_filters(brain: BrainLibrary) -> None:
    a = register(brain, tag="a")
    register(brain, tag="b")
    register(brain, ETH_RANGE_4H, tag="a")
    brain.promote(a.name, actor="t", reason="r")
    assert [m.key for m in brain.list_models(coin="ETH")] == [ETH_RANGE_4H]
    assert [m.name for m in brain.list_models(stage="production")] == [a.name]
    assert len(brain.list_models(coin="BTC", regime="TREND", timeframe="1h")) == 2


# --- stages, history, rollback, best ---------------------------------------------------------


def test_promote_archives_previous_production_and_records_history(brain: BrainLibrary) -> None:
    a, b = register(brain, tag="a"), register(brain, tag="b")
    brain.promote(a.name, actor="alice", reason="first model")
    brain.promote(b.name, actor="bob", reason="beats a", statistics={"p_value": 0.01})
    assert brain.production_model(BTC_TREND_1H) == brain.get_model(b.name)
    assert brain.get_model(a.name).stage is Stage.ARCHIVED
    history = brain.stage_history(BTC_TREND_1H)
    moves = [(h.model_name, h.from_stage, h.to_stage, h.actor) for h in history]
    assert moves == [
        (a.name, None, Stage.CANDIDATE, "training"),
        (b.name, None, Stage.CANDIDATE, "training"),
        (a.name, Stage.CANDIDATE, Stage.PRODUCTION, "alice"),
        (a.name, Stage.PRODUCTION, Stage.ARCHIVED, "bob"),
        (b.name, Stage.CANDIDATE, Stage.PRODUCTION, "bob"),
    ]
    assert history[-1].statistics == {"p_value": 0.01}
    assert history[-2].reason == f"replaced by {b.name}: beats a"
    assert [h.to_stage for h in brain.stage_history(a.name)] == [
        Stage.CANDIDATE, Stage.PRODUCTION, Stage.ARCHIVED,
    ]  # fmt: skip


def test_shadow_is_exclusive_per_key(brain: BrainLibrary) -> None:
    a, b = register(brain, tag="a"), register(brain, tag="b")
    brain.set_stage(a.name, Stage.SHADOW, actor="t", reason="try a")
    brain.set_stage(b.name, "shadow", actor="t", reason="try b")
    assert brain.shadow_model(BTC_TREND_1H) == brain.get_model(b.name)
    assert brain.get_model(a.name).stage is Stage.ARCHIVED


def test_set_stage_refused_transition_changes_nothing(brain: BrainLibrary) -> None:
    a = register(brain, tag="a")
    brain.set_stage(a.name, Stage.ARCHIVED, actor="t", reason="bad")
    with pytest.raises(StageTransitionError, match=r"archived -> shadow.*allowed: production"):
        brain.set_stage(a.name, Stage.SHADOW, actor="t", reason="retry")
    assert brain.get_model(a.name).stage is Stage.ARCHIVED
    assert len(brain.stage_history(a.name)) == 2


def test_set_stage_same_stage_is_noop(brain: BrainLibrary) -> None:
    a = register(brain, tag="a")
    brain.promote(a.name, actor="t", reason="r")
    brain.promote(a.name, actor="t", reason="again")
    assert len(brain.stage_history(a.name)) == 2


def test_set_stage_without_reason_refused(brain: BrainLibrary) -> None:
    a = register(brain, tag="a")
    with pytest.raises(ValueError, match="reason"):
        brain.promote(a.name, actor="t", reason=" ")


def test_rollback_restores_previous_production(brain: BrainLibrary) -> None:
    a, b, c = (register(brain, tag=t) for t in "abc")
    for model in (a, b, c):
        brain.promote(model.name, actor="dag", reason="daily")
    restored = brain.rollback(BTC_TREND_1H, actor="ops", reason="c loses money")
    assert restored.name == b.name and restored.stage is Stage.PRODUCTION
    assert brain.get_model(c.name).stage is Stage.ARCHIVED
    last_two = brain.stage_history(BTC_TREND_1H)[-2:]
    assert [(h.model_name, h.to_stage) for h in last_two] == [
        (c.name, Stage.ARCHIVED), (b.name, Stage.PRODUCTION),
    ]  # fmt: skip
    assert all("c loses money" in h.reason and h.actor == "ops" for h in last_two)


def test_rollback_to_version(brain: BrainLibrary) -> None:
    a, b = register(brain, tag="a"), register(brain, tag="b")
    brain.promote(b.name, actor="dag", reason="daily")
    assert brain.rollback(BTC_TREND_1H, to_version=1, actor="ops", reason="r").name == a.name
    assert brain.get_model(b.name).stage is Stage.ARCHIVED


def test_rollback_without_earlier_production_raises(brain: BrainLibrary) -> None:
    a = register(brain, tag="a")
    brain.promote(a.name, actor="dag", reason="daily")
    with pytest.raises(ModelNotFoundError, match="to_version"):
        brain.rollback(BTC_TREND_1H, actor="ops", reason="r")
    with pytest.raises(BrainLibraryError, match="already is the production"):
        brain.rollback(BTC_TREND_1H, to_version=1, actor="ops", reason="r")
    assert brain.production_model(BTC_TREND_1H) == brain.get_model(a.name)


def test_best_model_by_metric_and_direction(brain: BrainLibrary) -> None:
    register(brain, tag="a", sharpe=0.5)
    b = register(brain, tag="b", sharpe=2.0)
    c = register(brain, tag="c", sharpe=-1.0)
    assert brain.best_model(BTC_TREND_1H, "sharpe") == b
    assert brain.best_model(BTC_TREND_1H, "sharpe", higher_is_better=False) == c
    brain.set_stage(b.name, Stage.ARCHIVED, actor="t", reason="leak found")
    assert brain.best_model(BTC_TREND_1H, "sharpe").version == 1  # type: ignore[union-attr]
    assert brain.best_model(BTC_TREND_1H, "sortino") is None
    assert brain.best_model(ETH_RANGE_4H, "sharpe") is None


def test_best_model_tie_goes_to_newer_version(brain: BrainLibrary) -> None:
    register(brain, tag="a", sharpe=1.0)
    b = register(brain, tag="b", sharpe=1.0)
    assert brain.best_model(BTC_TREND_1H, "sharpe") == b


# --- artifacts -----------------------------------------------------------------------------


def test_load_artifact_returns_registered_bytes(brain: BrainLibrary) -> None:
    model = register(brain, tag="a")
    expected = fake_artifact(f"{BTC_TREND_1H.slug}-a")
    assert brain.load_artifact(model) == expected
    assert brain.load_artifact(model.name) == expected
    assert model.artifact_uri.startswith("file://")
    assert brain.verify_artifacts() == []


def test_real_xgboost_ubj_model_roundtrips_without_pickle(brain: BrainLibrary) -> None:
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(7)
    features = rng.normal(size=(200, 3))
    labels = (features[:, 0] + 0.1 * rng.normal(size=200) > 0).astype(int)
    params = {"max_depth": 2, "objective": "binary:logistic", "nthread": 1, "seed": 7}
    booster = xgb.train(params, xgb.DMatrix(features, label=labels), num_boost_round=5)
    model = brain.register_model(
        BTC_TREND_1H, bytes(booster.save_raw(raw_format="ubj")), metrics={"auc": 0.9},
        params=params, feature_list=["f0", "f1", "f2"], data_hash="xgb-data",
        partition_date=date(2025, 1, 15), created_at=T0,
    )  # fmt: skip
    restored = xgb.Booster()
    restored.load_model(bytearray(brain.load_artifact(model)))
    matrix = xgb.DMatrix(features)
    np.testing.assert_array_equal(restored.predict(matrix), booster.predict(matrix))


def test_flipped_byte_detected_by_load_and_verify(brain: BrainLibrary) -> None:
    good, bad = register(brain, tag="a"), register(brain, tag="b")
    path = brain.artifacts.path_for(bad.artifact_sha256)
    data = bytearray(path.read_bytes())
    data[17] ^= 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError):
        brain.load_artifact(bad)
    problems = brain.verify_artifacts()
    assert [(p.model_name, p.problem) for p in problems] == [(bad.name, "corrupt")]
    assert brain.load_artifact(good)


def test_missing_artifact_detected_by_load_and_verify(brain: BrainLibrary) -> None:
    model = register(brain, tag="a")
    brain.artifacts.path_for(model.artifact_sha256).unlink()
    with pytest.raises(ArtifactNotFoundError):
        brain.load_artifact(model)
    assert [p.problem for p in brain.verify_artifacts()] == ["missing"]


# --- availability --------------------------------------------------------------------------


def test_logs_and_records_never_show_dsn_password(pg_schema_dsn: str, tmp_path: Path) -> None:
    # Trust auth ignores the password, so the library connects and logs with it in the DSN.
    dsn = pg_schema_dsn.replace("postgres@", "postgres:s3cret@", 1)
    assert "s3cret" in dsn
    library = BrainLibrary(dsn, tmp_path)
    with structlog.testing.capture_logs() as logs:
        library.migrate()
        register(library)
    library.close()
    assert logs and "s3cret" not in repr(logs)
    assert "s3cret" not in repr(library) and "***" in library.masked_dsn


def test_unreachable_postgres_raises_retryable_unavailable(tmp_path: Path) -> None:
    library = BrainLibrary("postgresql://brain:s3cret@127.0.0.1:1/brain", tmp_path)
    with pytest.raises(BrainUnavailableError) as info:
        library.list_models()
    assert info.value.retryable
    assert "s3cret" not in str(info.value) and "s3cret" not in repr(library)
    with pytest.raises(BrainUnavailableError):
        library.migrate()


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_unreachable_postgres_fails_in_ci_else_skips(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="unreachable"):
        require_postgres("postgresql+psycopg2://postgres@127.0.0.1:1/test")


def test_sqlite_engine_uses_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    library = BrainLibrary(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'b.db'}", tmp_path / "a")
    with library.engine.connect() as conn:
        pragmas = [conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in
                   ("journal_mode", "busy_timeout", "foreign_keys")]  # fmt: skip
    assert pragmas == ["wal", 30000, 1]
    assert (tmp_path / "deep" / "dir").is_dir()
