"""Brain Library pure parts: keys, names, transitions, DSN parsing, validation, event ids."""

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading_core.brain import (
    ALLOWED_TRANSITIONS,
    ModelKey,
    check_transition,
    decision_event_id,
    model_name,
    parse_model_name,
)
from trading_core.brain.data_store import RANKING_SCHEMA, validated_ranking
from trading_core.brain.db import parse_dsn
from trading_core.brain.models_store import (
    params_digest,
    validated_correlation,
    validated_registration,
    validated_reliability,
)
from trading_core.brain.records import EngineReliability, RegimeGateOverride, canonical_json
from trading_core.brain.releases import content_digest, validate_release_lists
from trading_core.errors import StageTransitionError
from trading_core.events import DecisionEvent, EngineVote
from trading_core.types import TIMEFRAMES, Regime, Stage

T0 = datetime(2025, 1, 15, 2, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("key", "version", "created_at", "expected"),
    [
        (ModelKey("BTC", "TREND", "1h"), 1, T0, "BTC_TREND_1h_v1_20250115_020000"),
        (ModelKey("1000PEPE", "PANIC", "4h"), 12, T0 + timedelta(hours=1, seconds=5),
         "1000PEPE_PANIC_4h_v12_20250115_030005"),
    ],
)  # fmt: skip
def test_model_name_known_values_match_seed_convention(
    key: ModelKey, version: int, created_at: datetime, expected: str
) -> None:
    assert model_name(key, version, created_at) == expected


@given(
    coin=st.from_regex(r"[A-Z0-9]{1,20}", fullmatch=True),
    regime=st.sampled_from([r.value for r in Regime]),
    timeframe=st.sampled_from(TIMEFRAMES),
    version=st.integers(min_value=1, max_value=10**6),
    seconds=st.integers(min_value=0, max_value=10**9),
)
def test_model_name_roundtrip_parses_back(
    coin: str, regime: str, timeframe: str, version: int, seconds: int
) -> None:
    key = ModelKey(coin, regime, timeframe)
    created = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    assert parse_model_name(model_name(key, version, created)) == (key, version, created)
    assert ModelKey.parse(key.slug) == key


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("btc", "TREND", "1h"), "coin 'btc'"),
        (("BTC", "SIDEWAYS", "1h"), "regime 'SIDEWAYS'"),
        (("BTC", "TREND", "2h"), "timeframe '2h'"),
    ],
)
def test_model_key_bad_values_raise_naming_value(args: tuple[str, str, str], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        ModelKey(*args)


@pytest.mark.parametrize("bad", ["BTC_TREND", "BTC_TREND_1h_v0_20250115_020000", "x_y_z_w"])
def test_parse_bad_names_raise(bad: str) -> None:
    with pytest.raises(ValueError, match=repr(bad)):
        (ModelKey.parse if bad.count("_") != 5 else parse_model_name)(bad)


@pytest.mark.parametrize(
    "created_at",
    [datetime(2025, 1, 1), datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=2)))],  # noqa: DTZ001
)
def test_model_name_non_utc_datetime_raises(created_at: datetime) -> None:
    with pytest.raises(ValueError, match="timezone-aware UTC"):
        model_name(ModelKey("BTC", "TREND", "1h"), 1, created_at)


ALLOWED = [(a, b) for a in Stage for b in Stage if b in ALLOWED_TRANSITIONS[a]]
REFUSED = [(a, b) for a in Stage for b in Stage if a != b and b not in ALLOWED_TRANSITIONS[a]]


@pytest.mark.parametrize(("from_stage", "to_stage"), ALLOWED)
def test_check_transition_allowed_passes(from_stage: Stage, to_stage: Stage) -> None:
    check_transition("m", from_stage, to_stage)


@pytest.mark.parametrize(("from_stage", "to_stage"), REFUSED)
def test_check_transition_refused_names_from_to_allowed(from_stage: Stage, to_stage: Stage) -> None:
    with pytest.raises(StageTransitionError) as info:
        check_transition("m", from_stage, to_stage)
    message = str(info.value)
    assert f"{from_stage.value} -> {to_stage.value}" in message
    assert "allowed:" in message


def test_transition_table_archived_to_shadow_refused() -> None:
    assert (Stage.ARCHIVED, Stage.SHADOW) in REFUSED
    assert (Stage.ARCHIVED, Stage.PRODUCTION) in ALLOWED


@pytest.mark.parametrize(
    ("dsn", "drivername"),
    [
        ("sqlite:///data/brain/brain.db", "sqlite"),
        ("postgresql://u:pw@db:5432/brain", "postgresql+psycopg2"),
        ("postgresql+psycopg2://u@db/brain", "postgresql+psycopg2"),
    ],
)
def test_parse_dsn_known_values(dsn: str, drivername: str) -> None:
    assert parse_dsn(dsn).drivername == drivername


@pytest.mark.parametrize(
    ("dsn", "fragment"),
    [
        ("mysql://u:secret@db/brain", "allowed sqlite, postgresql"),
        ("postgresql+psycopg://u:secret@db/brain", "allowed postgresql\\+psycopg2"),
        ("sqlite://", "in-memory"),
        ("not a url", "not a database URL"),
    ],
)
def test_parse_dsn_refused_never_shows_password(dsn: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as info:
        parse_dsn(dsn)
    assert "secret" not in str(info.value)


def test_params_digest_ignores_key_order() -> None:
    assert params_digest({"a": 1, "b": [1, 2]}) == params_digest({"b": [1, 2], "a": 1})
    assert params_digest({"a": 1}) != params_digest({"a": 2})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), object()])
def test_canonical_json_refuses_nan_inf_objects(bad: object) -> None:
    with pytest.raises(ValueError, match="params"):
        canonical_json({"x": bad}, "params")


_GOOD_REGISTRATION = {
    "metrics": {"sharpe": 1.0},
    "params": {"max_depth": 4},
    "feature_list": ["a", "b"],
    "data_hash": "abc",
    "created_at": T0,
    "partition_date": date(2025, 1, 15),
    "artifact_format": "ubj",
}


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"metrics": {"sharpe": float("nan")}}, "metrics\\['sharpe'\\]"),
        ({"metrics": {"sharpe": "high"}}, "finite number"),
        ({"params": {"f": float("inf")}}, "params"),
        ({"feature_list": ["a", "a"]}, "twice"),
        ({"feature_list": "ab"}, "sequence"),
        ({"data_hash": ""}, "data_hash"),
        ({"created_at": datetime(2025, 1, 1)}, "created_at"),  # noqa: DTZ001
        ({"partition_date": T0}, "partition_date"),
        ({"artifact_format": "pickle"}, "allowed: \\['ubj', 'json'\\]"),
    ],
)
def test_validated_registration_bad_inputs_raise(
    override: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        validated_registration(**{**_GOOD_REGISTRATION, **override})  # type: ignore[arg-type]


def test_validated_reliability_and_correlation_bounds() -> None:
    assert validated_reliability({"trend": 1}) == {"trend": 1.0}
    with pytest.raises(ValueError, match=">= 0"):
        validated_reliability({"trend": -0.1})
    assert validated_correlation({"a": {"b": 0.5}}) == {"a": {"b": 0.5}}
    with pytest.raises(ValueError, match="\\[-1, 1\\]"):
        validated_correlation({"a": {"b": 1.5}})


def test_engine_reliability_hit_rate_out_of_range_raises() -> None:
    with pytest.raises(ValueError, match="hit_rate"):
        EngineReliability("trend_v1", reliability=0.5, hit_rate=1.2, n_obs=10)


def test_regime_gate_override_requires_monday_and_disjoint() -> None:
    common: dict[str, Any] = {"regime": "TREND", "actor": "a", "reason": "r", "created_at": T0}
    with pytest.raises(ValueError, match="Monday"):
        RegimeGateOverride(date(2025, 1, 14), enabled_engines=(), disabled_engines=(), **common)
    with pytest.raises(ValueError, match="both enabled and disabled"):
        RegimeGateOverride(date(2025, 1, 13), enabled_engines=("x",), disabled_engines=("x",),
                           **common)  # fmt: skip


NAME_A = "BTC_TREND_1h_v1_20250115_020000"
NAME_B = "BTC_TREND_1h_v2_20250115_020000"
NAME_C = "ETH_TREND_1h_v1_20250115_020000"


@pytest.mark.parametrize(
    ("production", "shadow", "fragment"),
    [
        ([NAME_A, NAME_A], [], "more than once"),
        ([NAME_A], [NAME_A], "both production and shadow"),
        ([NAME_A, NAME_B], [], "at most one per key"),
        ([], [], "at least one"),
        ([NAME_A], "not-a-list", "string"),
    ],
)
def test_validate_release_lists_refuses(
    production: list[str], shadow: list[str], fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        validate_release_lists(production, shadow)


def test_content_digest_order_free_and_gate_sensitive() -> None:
    assert content_digest([NAME_A, NAME_C], [], None) == content_digest([NAME_C, NAME_A], [], None)
    assert content_digest([NAME_A], [], None) != content_digest([NAME_A], [], {"TREND": {}})


def _event(shadow_version: str = "m1", minute: int = 0) -> DecisionEvent:
    return DecisionEvent(
        timestamp=T0 + timedelta(minutes=minute),
        symbol="BTC/USDT",
        regime="TREND",
        engine_votes=(EngineVote("trend_v1", 0.5, 0.8, 1.0),),
        consensus_score=0.4,
        action="buy",
        expected_edge_bps=12.0,
        costs_bps=5.0,
        net_edge_bps=7.0,
        risk_preset="balanced",
        model_version=shadow_version,
    )


def test_decision_event_id_depends_on_identity_fields_only() -> None:
    base = decision_event_id(_event(), shadow=False)
    assert base == decision_event_id(_event(), shadow=False)
    assert len({
        base,
        decision_event_id(_event(), shadow=True),
        decision_event_id(_event("m2"), shadow=False),
        decision_event_id(_event(minute=1), shadow=False),
    }) == 4  # fmt: skip


def _ranking(**columns: list[object]) -> pl.DataFrame:
    data: dict[str, list[object]] = {
        "symbol": ["BTC", "ETH"],
        "rank": [1, 2],
        "liquidity_score": [0.9, 0.8],
        "daily_volume_usd": [1e9, 5e8],
        "spread_bps": [1.0, 1.5],
        "age_days": [3000, 2500],
        "selected": [True, True],
    }
    data.update(columns)
    return pl.DataFrame(data)


def test_validated_ranking_good_frame_casts_to_schema() -> None:
    assert validated_ranking(_ranking()).schema == RANKING_SCHEMA


@pytest.mark.parametrize(
    ("columns", "fragment"),
    [
        ({"symbol": ["BTC", "BTC"]}, "'symbol' repeats \\['BTC'\\]"),
        ({"rank": [1, 1]}, "'rank' repeats"),
        ({"rank": [0, 1]}, ">= 1"),
        ({"liquidity_score": [float("nan"), 0.1]}, "'liquidity_score' has NaN"),
        ({"spread_bps": [None, 1.0]}, "nulls"),
    ],
)
def test_validated_ranking_bad_frames_raise(
    columns: dict[str, list[object]], fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        validated_ranking(_ranking(**columns))


@pytest.mark.parametrize(("selected_top", "expected"), [(None, [True, True]), (1, [True, False])])
def test_validated_ranking_without_selected_marks_top_ranks(
    selected_top: int | None, expected: list[bool]
) -> None:
    frame = validated_ranking(_ranking().drop("selected"), selected_top)
    assert frame["selected"].to_list() == expected


def test_validated_ranking_missing_column_named() -> None:
    with pytest.raises(ValueError, match="lacks columns \\['age_days'\\]"):
        validated_ranking(_ranking().drop("age_days"))
