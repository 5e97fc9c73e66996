"""``coin-engine brain ...`` against a temporary SQLite Brain Library (typer's CliRunner)."""

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner, Result

from coin_engine.cli.app import app
from coin_engine.cli.brain_cmd import brain_app
from tests.integration.brain_fixtures import BTC_TREND_1H, FakeClock, register
from trading_core.brain import BrainLibrary
from trading_core.config import EngineConfig
from trading_core.errors import ModelNotFoundError
from trading_core.types import Stage

ENV = {"COLUMNS": "250", "NO_COLOR": "1"}


@pytest.fixture
def config(tmp_path: Path) -> EngineConfig:
    section = {
        "brain_library_dsn": f"sqlite:///{tmp_path / 'brain.db'}",
        "storage_path": str(tmp_path / "artifacts"),
    }
    return EngineConfig.model_validate({"training": {"model_versioning": section}})


@pytest.fixture
def library(config: EngineConfig) -> BrainLibrary:
    section = config.training.model_versioning
    lib = BrainLibrary(
        section.brain_library_dsn.get_secret_value(),
        Path(section.storage_path),
        clock=FakeClock(),
    )
    lib.migrate()
    return lib


def _run(config: EngineConfig, *args: str) -> Result:
    return CliRunner().invoke(brain_app, list(args), obj={"config": config}, env=ENV)


def test_ls_lists_models_with_stage_filter(config: EngineConfig, library: BrainLibrary) -> None:
    a, b = register(library, tag="a", sharpe=1.25), register(library, tag="b")
    library.promote(a.name, actor="t", reason="r")
    result = _run(config, "ls")
    assert result.exit_code == 0, result.output
    assert a.name in result.output and b.name in result.output and "1.250" in result.output
    only_prod = _run(config, "ls", "--stage", "production", "--coin", "BTC")
    assert a.name in only_prod.output and b.name not in only_prod.output


def test_show_prints_fields_and_history(config: EngineConfig, library: BrainLibrary) -> None:
    a = register(library, tag="a")
    library.promote(a.name, actor="alice", reason="beats baseline")
    result = _run(config, "show", a.name)
    assert result.exit_code == 0, result.output
    for text in (a.artifact_sha256, "BTC_TREND_1h", "alice", "beats baseline", "registered"):
        assert text in result.output
    assert "not judged" in result.output


def test_ls_and_show_print_the_gate_figures(config: EngineConfig, library: BrainLibrary) -> None:
    a = register(library, tag="a", sharpe=2.5)
    library.record_gate(
        a.name,
        metrics={"oos_sharpe_se": 0.75, "oos_p_adjusted": 0.0123},
        gate={
            "passed": True,
            "reason": "passed (fdr_bh adjusted p <= 0.05): OOS Sharpe 2.50",
            "method": "fdr_bh",
            "alpha": 0.05,
            "sharpe": 2.5,
            "sharpe_se": 0.75,
            "psr": 0.9996,
            "p_value": 0.0004,
            "p_adjusted": 0.0123,
            "dsr": 0.97,
            "expected_max_sharpe": 1.9,
            "n_trials": 182,
        },
    )
    listing = _run(config, "ls")
    assert listing.exit_code == 0, listing.output
    for text in ("2.500", "0.750", "0.0123", "pass"):
        assert text in listing.output
    shown = _run(config, "show", a.name)
    assert shown.exit_code == 0, shown.output
    for text in ("PASS", "fdr_bh", "182", "0.97", "PSR"):
        assert text in shown.output
    assert library.get_model(a.name).metrics["oos_sharpe"] == 2.5  # metrics merged, not replaced


def test_show_unknown_model_raises_domain_error(
    config: EngineConfig, library: BrainLibrary
) -> None:
    result = _run(config, "show", "BTC_TREND_1h_v9_20250115_020000")
    assert isinstance(result.exception, ModelNotFoundError)


def test_promote_and_rollback_change_stages(config: EngineConfig, library: BrainLibrary) -> None:
    a, b = register(library, tag="a"), register(library, tag="b")
    assert _run(config, "promote", a.name, "--reason", "first").exit_code == 0
    result = _run(config, "promote", b.name, "--reason", "better", "--actor", "bob")
    assert result.exit_code == 0, result.output
    assert library.get_model(a.name).stage is Stage.ARCHIVED
    result = _run(config, "rollback", "BTC_TREND_1h", "--reason", "b misbehaves")
    assert result.exit_code == 0, result.output
    assert library.production_model(BTC_TREND_1H) == library.get_model(a.name)
    assert library.stage_history(a.name)[-1].actor.startswith("cli")
    result = _run(config, "rollback", "BTC_TREND_1h", "--to", "2", "--reason", "b again")
    assert result.exit_code == 0 and library.get_model(b.name).stage is Stage.PRODUCTION


def test_rollback_bad_key_is_usage_error(config: EngineConfig, library: BrainLibrary) -> None:
    result = _run(config, "rollback", "BTC-TREND", "--reason", "r")
    assert result.exit_code == 2 and "COIN_REGIME_TIMEFRAME" in result.output


def test_rollback_unknown_key_names_the_keys_that_exist(
    config: EngineConfig, library: BrainLibrary
) -> None:
    register(library, tag="a")
    result = _run(config, "rollback", "NOPE_RANGE_1h", "--reason", "r")
    assert result.exit_code == 2
    assert "no model key 'NOPE_RANGE_1h'" in result.output
    assert "keys: BTC_TREND_1h" in result.output and "coin-engine brain ls" in result.output


def test_rollback_without_earlier_production_asks_for_to_with_versions(
    config: EngineConfig, library: BrainLibrary
) -> None:
    a, _ = register(library, tag="a"), register(library, tag="b")
    library.promote(a.name, actor="t", reason="r")
    result = _run(config, "rollback", "BTC_TREND_1h", "--reason", "r")
    assert result.exit_code == 2
    assert "no earlier production version" in result.output and "--to VERSION" in result.output
    assert "one of 1, 2" in result.output and "to_version" not in result.output


def test_verify_exit_codes(config: EngineConfig, library: BrainLibrary) -> None:
    a = register(library, tag="a")
    ok = _run(config, "verify")
    assert ok.exit_code == 0 and "1 model artifact(s) verified" in ok.output
    path = library.artifacts.path_for(a.artifact_sha256)
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    bad = _run(config, "verify")
    assert bad.exit_code == 1 and "corrupt" in bad.output and a.name in bad.output


def test_releases_lists_newest_first(config: EngineConfig, library: BrainLibrary) -> None:
    a, b = register(library, tag="a"), register(library, tag="b")
    library.create_release(date(2025, 1, 15), production=[a.name], created_by="dag", note="day1")
    library.create_release(date(2025, 1, 16), production=[b.name], created_by="dag", note="day2")
    result = _run(config, "releases")
    assert result.exit_code == 0, result.output
    assert result.output.index("day2") < result.output.index("day1")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    # The root app configures structlog onto CliRunner's stderr, which is closed afterwards.
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_root_app_routes_brain_group_and_migrates(tmp_path: Path, restore_logging: None) -> None:
    env = {
        **ENV,
        "ENGINE__TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN": f"sqlite:///{tmp_path / 'b.db'}",
        "ENGINE__TRAINING__MODEL_VERSIONING__STORAGE_PATH": str(tmp_path / "artifacts"),
    }
    migrated = CliRunner().invoke(app, ["brain", "migrate"], env=env)
    assert migrated.exit_code == 0, migrated.output
    assert "revision" in migrated.output
    listed = CliRunner().invoke(app, ["brain", "ls"], env=env)
    assert listed.exit_code == 0 and "0 model version(s)" in listed.output
