"""The shadow evaluation and the auto-rollback against a real Brain Library (SQLite and
PostgreSQL): verdicts become stage changes or reviews with their statistics, losing production
models come back out, a release can bring back content it served before."""

from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from tests.integration.brain_fixtures import (
    BTC_TREND_1H,
    T0,
    brain,
    brain_dsn,
    make_event,
    pg_schema_dsn,
    register,
    sqlite_template,
)
from trading_core.brain import BrainLibrary, ModelVersion, decision_event_id
from trading_core.config import EngineConfig
from trading_core.shadow.evaluation import (
    ROLLBACK_ACTOR,
    SHADOW_ACTOR,
    auto_rollback_production,
    evaluate_shadow_models,
)
from trading_core.shadow.periods import ShadowPeriod
from trading_core.types import Stage

FIXTURES = (brain, brain_dsn, pg_schema_dsn, sqlite_template)
HOUR_MS = 3_600_000
DAY0 = T0.replace(hour=0)
CONFIG = EngineConfig.model_validate(
    {
        "shadow_testing": {
            "min_duration_days": 7,
            "max_duration_days": 14,
            "min_trades": 10,
            "bootstrap_samples": 499,
            "auto_rollback": {"window_days": 7, "max_drawdown_pct": 5.0, "min_sharpe": -1.0},
        },
        "risk": {"initial_capital_usd": 10_000.0},
    }
)


def _pair(library: BrainLibrary) -> tuple[ModelVersion, ModelVersion]:
    champion = register(library, BTC_TREND_1H, "champion")
    library.promote(champion.name, actor="tests", reason="first model of the key")
    challenger = register(library, BTC_TREND_1H, "challenger")
    library.set_stage(challenger.name, Stage.SHADOW, actor="tests", reason="beats OOS Sharpe")
    return library.get_model(champion.name), library.get_model(challenger.name)


def _record_days(
    library: BrainLibrary, champion: str, challenger: str, *, days: range, gain: float
) -> None:
    """Hourly paired returns per UTC day as Hamilton records them (seeded)."""
    for day in days:
        rng = np.random.default_rng(day)
        common = rng.normal(0.0, 0.005, 24)
        own = rng.normal(0.0, 0.001, (24, 2))
        first = DAY0 + timedelta(days=day)
        period = ShadowPeriod(
            challenger=challenger,
            champion=champion,
            first_bar_open=first,
            last_bar_open=first + timedelta(hours=23),
            bar_ms=HOUR_MS,
            champion_returns=tuple(common + own[:, 0]),
            challenger_returns=tuple(common + own[:, 1] + gain),
            champion_trades=tuple(np.where(np.arange(4) < 2, 0.01, -0.01)),
            challenger_trades=tuple(np.where(np.arange(4) < (3 if gain else 2), 0.01, -0.01)),
        )
        library.record_shadow_result(**period.record_arguments())


def test_better_challenger_promoted_champion_archived_statistics_in_history(
    brain: BrainLibrary,
) -> None:
    champion, challenger = _pair(brain)
    _record_days(brain, champion.name, challenger.name, days=range(7), gain=0.002)
    (review,) = evaluate_shadow_models(brain, CONFIG)
    assert review.decision == "promote", review.reasons
    assert brain.production_model(BTC_TREND_1H).name == challenger.name  # type: ignore[union-attr]
    assert brain.get_model(champion.name).stage is Stage.ARCHIVED
    entry = brain.stage_history(challenger.name)[-1]
    assert (entry.from_stage, entry.to_stage, entry.actor) == (
        Stage.SHADOW,
        Stage.PRODUCTION,
        SHADOW_ACTOR,
    )
    stats = dict(entry.statistics or {})
    assert stats["decision"] == "promote" and stats["champion"] == champion.name
    assert stats["n_periods"] == 7 * 24 and stats["duration_days"] == pytest.approx(7.0)
    assert stats["p_value_mean_difference"] < stats["promotion_level"]
    assert stats["p_value_sharpe"] < stats["promotion_level"]
    assert "shadow test: promote" in entry.reason
    archived = brain.stage_history(champion.name)[-1]
    assert archived.to_stage is Stage.ARCHIVED and challenger.name in archived.reason
    results = brain.shadow_results(BTC_TREND_1H)
    assert [r.decision for r in results] == ["continue"] * 6 + ["promote"]
    assert results[-1].statistics["verdict"]["decision"] == "promote"


def test_equal_challenger_waits_with_a_review_then_rejected_at_max_duration(
    brain: BrainLibrary,
) -> None:
    champion, challenger = _pair(brain)
    _record_days(brain, champion.name, challenger.name, days=range(7), gain=0.0)
    (first,) = evaluate_shadow_models(brain, CONFIG)
    assert first.decision == "wait"
    review = brain.stage_history(challenger.name)[-1]
    assert (review.from_stage, review.to_stage, review.actor) == (
        Stage.SHADOW,
        Stage.SHADOW,
        SHADOW_ACTOR,
    )
    assert review.statistics is not None and review.statistics["decision"] == "wait"
    _record_days(brain, champion.name, challenger.name, days=range(7, 14), gain=0.0)
    (second,) = evaluate_shadow_models(brain, CONFIG)
    assert second.decision == "reject"
    assert "max duration 14 days reached without promotion" in second.reasons[0]
    assert brain.get_model(challenger.name).stage is Stage.ARCHIVED
    assert brain.production_model(BTC_TREND_1H).name == champion.name  # type: ignore[union-attr]
    assert evaluate_shadow_models(brain, CONFIG) == []


def test_evidence_against_a_former_champion_is_not_used(brain: BrainLibrary) -> None:
    champion, challenger = _pair(brain)
    _record_days(brain, champion.name, challenger.name, days=range(7), gain=0.002)
    newer = register(brain, BTC_TREND_1H, "newer champion")
    brain.promote(newer.name, actor="tests", reason="operator's choice")
    (review,) = evaluate_shadow_models(brain, CONFIG)
    assert review.decision == "wait" and review.champion == newer.name
    assert "only 0 paired bars" in review.reasons[0]


def _trade(brain: BrainLibrary, model: str, hour: int, pnl_usd: float) -> None:
    """A decision of ``model`` at T0 + hour closed one hour later with ``pnl_usd``."""
    event = make_event("BTC/USDT", hour, "buy", version=model)
    brain.append_decision_events([event], release_id=None)
    brain.record_trade_outcome(
        decision_event_id(event, shadow=False),
        fill_price=100.0,
        pnl_usd=pnl_usd,
        closed_at=T0 + timedelta(hours=hour + 1),
    )


def test_losing_production_model_rolled_back_with_reason(brain: BrainLibrary) -> None:
    old = register(brain, BTC_TREND_1H, "old")
    brain.promote(old.name, actor="tests", reason="first")
    new = register(brain, BTC_TREND_1H, "new")
    brain.promote(new.name, actor=SHADOW_ACTOR, reason="shadow test: promote")
    for hour in range(1, 40, 4):
        _trade(brain, new.name, hour, -80.0)  # 10 losses of 0.8% of the capital
    (review,) = auto_rollback_production(brain, CONFIG, as_of=T0 + timedelta(days=2))
    assert review.breached and review.restored == old.name
    assert review.max_drawdown_pct == pytest.approx(100 * (1 - 0.992**10), rel=1e-9)
    assert brain.production_model(BTC_TREND_1H).name == old.name  # type: ignore[union-attr]
    back = brain.stage_history(old.name)[-1]
    assert back.actor == ROLLBACK_ACTOR and "max drawdown" in back.reason
    assert brain.get_model(new.name).stage is Stage.ARCHIVED


def test_healthy_or_idle_production_models_stay(brain: BrainLibrary) -> None:
    old = register(brain, BTC_TREND_1H, "old")
    brain.promote(old.name, actor="tests", reason="first")
    new = register(brain, BTC_TREND_1H, "new")
    brain.promote(new.name, actor="tests", reason="better")
    assert auto_rollback_production(brain, CONFIG, as_of=T0 + timedelta(days=2)) == []
    for hour in range(1, 40, 4):
        _trade(brain, new.name, hour, 15.0 if hour % 8 == 1 else -5.0)
    (review,) = auto_rollback_production(brain, CONFIG, as_of=T0 + timedelta(days=2))
    assert not review.breached and review.restored is None
    assert brain.production_model(BTC_TREND_1H).name == new.name  # type: ignore[union-attr]
    disabled = _with_auto_rollback(enabled=False)
    assert auto_rollback_production(brain, disabled, as_of=T0 + timedelta(days=2)) == []


def test_breach_without_an_earlier_version_is_reviewed_not_rolled_back(
    brain: BrainLibrary,
) -> None:
    only = register(brain, BTC_TREND_1H, "only")
    brain.promote(only.name, actor="tests", reason="first")
    for hour in range(1, 40, 4):
        _trade(brain, only.name, hour, -80.0)
    (review,) = auto_rollback_production(brain, CONFIG, as_of=T0 + timedelta(days=2))
    assert review.breached and review.restored is None
    entry = brain.stage_history(only.name)[-1]
    assert (entry.from_stage, entry.to_stage, entry.actor) == (
        Stage.PRODUCTION,
        Stage.PRODUCTION,
        ROLLBACK_ACTOR,
    )
    assert "no earlier version to restore" in entry.reason


def _with_auto_rollback(**update: Any) -> EngineConfig:
    section = CONFIG.shadow_testing.model_copy(
        update={"auto_rollback": CONFIG.shadow_testing.auto_rollback.model_copy(update=update)}
    )
    return CONFIG.model_copy(update={"shadow_testing": section})


def test_release_content_coming_back_the_same_day_is_a_new_latest_release(
    brain: BrainLibrary,
) -> None:
    a, b = register(brain, BTC_TREND_1H, "a"), register(brain, BTC_TREND_1H, "b")
    day = date(2025, 1, 15)
    first = brain.create_release(day, production=[a.name], created_by="tests")
    second = brain.create_release(day, production=[b.name], created_by="tests")
    back = brain.create_release(day, production=[a.name], created_by="tests")
    assert back.id not in (first.id, second.id) and back.parent_id == second.id
    assert brain.latest_release() == back and back.production == (a.name,)
    assert brain.create_release(day, production=[a.name], created_by="tests") == back
    assert brain.production_model(BTC_TREND_1H).name == a.name  # type: ignore[union-attr]
