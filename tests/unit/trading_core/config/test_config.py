"""Config: seed defaults, strictness, error messages, env overrides, secrets."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from coin_engine.cli.app import app
from trading_core.config import (
    EngineConfig,
    config_as_dict,
    default_config_paths,
    load_config,
    mask_dsn,
    secret_values,
)
from trading_core.errors import ConfigError

REPO = Path(__file__).resolve().parents[4]
CONFIG_DIR = REPO / "config"


def _write(tmp_path: Path, name: str, body: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


def _load_repo(env: dict[str, str] | None = None) -> EngineConfig:
    return load_config(default_config_paths(CONFIG_DIR), env=env or {})


def test_repo_files_equal_model_defaults_seed_values() -> None:
    # The YAML files and the models' defaults must tell the same story (the seed's values).
    assert _load_repo() == EngineConfig()


@pytest.mark.parametrize(
    ("dotted", "expected"),
    [
        ("engine.max_coins", 400),
        ("engine.active_coins", 20),
        ("engine.max_concurrent_trades", 500),
        ("coin_selection.min_daily_volume_usd", 1_000_000),
        ("coin_selection.max_spread_bps", 8),
        ("coin_selection.min_age_days", 30),
        ("consensus.min_agreement_threshold", 0.6),
        ("consensus.reliability_decay_factor", 0.95),
        ("consensus.correlation_penalty_threshold", 0.8),
        ("consensus.adaptive_thresholds.PANIC", 0.65),
        ("cost_model.min_edge_after_cost_bps", 3.0),
        ("cost_model.slippage_model.participation_rate", 0.1),
        ("cost_model.slippage_model.impact_factor", 0.5),
        ("risk_presets.aggressive.max_leverage", 3.0),
        ("risk_presets.conservative.min_confidence", 0.65),
        ("validation.walk_forward.train_days", 20),
        # the seed's 100 trades became a floor of 30 with 20-day test windows: the promotion
        # gate weighs the evidence itself (issue 11, README "Promotion gate")
        ("validation.walk_forward.min_test_trades", 30),
        ("validation.walk_forward.test_days", 20),
        ("validation.promotion_gate.alpha", 0.05),
        ("shadow_testing.promotion_criteria.statistical_significance", 0.95),
        ("training.distributed.max_concurrent_training_jobs", 16),
        ("observability.prometheus.port", 9090),
    ],
)
def test_seed_defaults_known_values_match(dotted: str, expected: object) -> None:
    node: object = _load_repo()
    for part in dotted.split("."):
        node = getattr(node, part)
    assert node == expected


def test_fee_schedule_binance_and_coinbase_present() -> None:
    fees = _load_repo().cost_model.fee_schedule
    assert fees["binance"].taker_bps == 4.0
    assert fees["binance"].funding_bps_per_8h == 1.0
    assert fees["coinbase"].maker_bps == 5.0


def test_unknown_key_fails_naming_file_key_and_allowed(tmp_path: Path) -> None:
    path = _write(tmp_path, "main.yaml", {"risk": {"presett": "balanced"}})
    with pytest.raises(ConfigError) as info:
        load_config([path], env={})
    message = str(info.value)
    assert str(path) in message
    assert "risk.presett" in message
    assert "preset" in message and "kill_switch" in message


@pytest.mark.parametrize(
    ("body", "dotted", "bad"),
    [
        ({"risk": {"preset": "yolo"}}, "risk.preset", "'yolo'"),
        (
            {"consensus": {"min_agreement_threshold": 1.7}},
            "consensus.min_agreement_threshold",
            "1.7",
        ),
        ({"engine": {"timeframes": ["7m"]}}, "engine.timeframes", "7m"),
        (
            {"training": {"distributed": {"backend": "ray"}}},
            "training.distributed.backend",
            "'ray'",
        ),
        ({"cost_model": {"venue": "kraken"}}, "cost_model", "kraken"),
        (
            {"regime_gates": {"ILLIQUID": {"enabled_engines": ["scalping"]}}},
            "regime_gates",
            "scalping",
        ),
        ({"engine": {"active_coins": 500, "max_coins": 400}}, "engine", "500"),
    ],
)
def test_bad_value_fails_naming_key_value_and_file(
    tmp_path: Path, body: dict, dotted: str, bad: str
) -> None:
    path = _write(tmp_path, "main.yaml", body)
    with pytest.raises(ConfigError) as info:
        load_config([path], env={})
    message = str(info.value)
    assert str(path) in message
    assert dotted in message
    assert bad in message


def test_section_in_two_files_fails_naming_both(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.yaml", {"risk": {"preset": "balanced"}})
    b = _write(tmp_path, "b.yaml", {"risk": {"preset": "aggressive"}})
    with pytest.raises(ConfigError, match=r"already defined in .*a\.yaml"):
        load_config([a, b], env={})


def test_env_override_changes_value_and_keeps_type() -> None:
    config = _load_repo(
        {
            "ENGINE__RISK__PRESET": "aggressive",
            "ENGINE__ENGINE__ACTIVE_COINS": "50",
            "ENGINE__ENGINE__TIMEFRAMES": "[1h]",
            "ENGINE__REGIME_GATES__TREND__ENABLED_ENGINES": "[trend_v1]",
            "ENGINE__COST_MODEL__FEE_SCHEDULE__BINANCE__TAKER_BPS": "3.5",
            "UNRELATED": "x",
        }
    )
    assert config.risk.preset == "aggressive"
    assert config.active_risk_preset.max_leverage == 3.0
    assert config.engine.active_coins == 50
    assert config.engine.timeframes == ("1h",)
    assert config.regime_gates.TREND.enabled_engines == ("trend_v1",)
    assert config.cost_model.fee_schedule["binance"].taker_bps == 3.5


def test_env_override_bad_value_names_variable() -> None:
    with pytest.raises(ConfigError, match="environment variable ENGINE__RISK__PRESET"):
        _load_repo({"ENGINE__RISK__PRESET": "agressive"})


def test_env_override_unknown_key_names_allowed() -> None:
    with pytest.raises(ConfigError, match=r"allowed here: .*preset"):
        _load_repo({"ENGINE__RISK__PRESSET": "balanced"})


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"exchange": {"api_key": "abc"}}},
        {"data": {"exchange": {"api_secret": "abc"}}},
        {"training": {"model_versioning": {"brain_library_dsn": "postgresql://u:pw@h/db"}}},
    ],
)
def test_secret_in_file_is_refused(tmp_path: Path, body: dict) -> None:
    path = _write(tmp_path, "main.yaml", body)
    with pytest.raises(ConfigError, match="environment"):
        load_config([path], env={})


def test_secrets_from_env_are_masked_in_show() -> None:
    env = {
        "ENGINE__DATA__EXCHANGE__API_KEY": "key-123456",
        "ENGINE__DATA__EXCHANGE__API_SECRET": "sec-abcdef",
        "ENGINE__TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN": "postgresql+psycopg2://u:hunter2@h/db",
    }
    config = _load_repo(env)
    shown = repr(config_as_dict(config)) + repr(config)
    for secret in ("key-123456", "sec-abcdef", "hunter2"):
        assert secret not in shown
    assert set(secret_values(config)) == {"key-123456", "sec-abcdef", "hunter2"}
    assert config.data.exchange.api_key is not None
    assert config.data.exchange.api_key.get_secret_value() == "key-123456"


def test_mask_dsn_hides_password_only() -> None:
    assert (
        mask_dsn("postgresql+psycopg2://u:pw@host:5432/db")
        == "postgresql+psycopg2://u:***@host:5432/db"
    )
    assert mask_dsn("sqlite:///data/brain.db") == "sqlite:///data/brain.db"


def test_config_is_frozen() -> None:
    config = _load_repo()
    with pytest.raises(ValueError, match="frozen"):
        config.risk.preset = "aggressive"  # type: ignore[misc]


def test_missing_file_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config([tmp_path / "nope.yaml"], env={})


def test_cli_validate_bad_file_exits_nonzero_with_message(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", {"risk": {"preset": "yolo"}})
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 1
    assert "risk.preset" in result.output


def test_cli_show_masks_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE__DATA__EXCHANGE__API_SECRET", "topsecret-xyz")
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert "topsecret-xyz" not in result.output
    assert "**********" in result.output
