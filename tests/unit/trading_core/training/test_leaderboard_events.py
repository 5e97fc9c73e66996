"""The leaderboard from logged DecisionEvents, its merge with the bar leaderboard, the shadow
challengers' standing, and the Monday the gates take effect."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from engine_assets.assets.leaderboard import next_monday
from trading_core.brain import ModelKey, ShadowResult
from trading_core.engines import ENGINE_NAMES
from trading_core.regime import LEADERBOARD_SCHEMA
from trading_core.training.leaderboard import (
    event_leaderboard,
    merged_leaderboard,
    shadow_standing,
)

T0 = datetime(2026, 10, 30, tzinfo=UTC)


def _event(hour: int, regime: str, votes: dict[str, float]) -> dict[str, Any]:
    return {
        "timestamp": (T0 + timedelta(hours=hour)).isoformat(),
        "symbol": "BTC/USDT",
        "regime": regime,
        "engine_votes": [
            {"engine": name, "signal": votes.get(name, 0.0), "confidence": 0.5}
            for name in ENGINE_NAMES
        ],
    }


def _ms(hour: int) -> int:
    return int((T0 + timedelta(hours=hour)).timestamp() * 1000)


def test_event_leaderboard_scores_each_logged_vote_against_the_realized_move() -> None:
    events = [
        _event(0, "RANGE", {"mean_reversion": 0.5, "ml_brain": -0.2}),
        _event(1, "RANGE", {"mean_reversion": -0.4, "ml_brain": 0.3}),
        _event(2, "RANGE", {"mean_reversion": 0.9}),  # no realized move known: not counted
        _event(3, "TREND", {"trend_v1": 1.0}),
    ]
    forward = {("BTC/USDT", _ms(0)): 20.0, ("BTC/USDT", _ms(1)): -10.0, ("BTC/USDT", _ms(3)): 5.0}
    board = event_leaderboard(events, forward)
    rows = {(r["regime"], r["engine"]): r for r in board.iter_rows(named=True)}
    reversion = rows[("RANGE", "mean_reversion")]
    assert (reversion["n_votes"], reversion["hit_rate"]) == (2, 1.0)
    assert reversion["pnl_contribution_bps"] == pytest.approx(0.5 * 20 + 0.4 * 10)
    brain = rows[("RANGE", "ml_brain")]
    assert (brain["n_votes"], brain["hit_rate"]) == (2, 0.0)
    assert rows[("TREND", "trend_v1")]["hit_rate"] == 1.0
    assert rows[("RANGE", "mean_reversion")]["rank"] == 1


def test_merged_leaderboard_prefers_logged_votes_with_enough_evidence() -> None:
    live = _board(
        {("RANGE", "mean_reversion"): (0.9, 50.0, 10), ("RANGE", "ml_brain"): (0.2, -5.0, 3)}
    )
    bars = _board(
        {
            ("RANGE", "mean_reversion"): (0.4, -1.0, 500),
            ("RANGE", "range_trading"): (0.6, 30.0, 400),
        },
        names=("mean_reversion", "range_trading"),
    )
    merged = merged_leaderboard(live, bars, min_votes=5)
    rows = {(r["regime"], r["engine"]): r for r in merged.iter_rows(named=True)}
    assert rows[("RANGE", "mean_reversion")]["source"] == "decision_events"
    assert rows[("RANGE", "mean_reversion")]["hit_rate"] == 0.9
    assert rows[("RANGE", "range_trading")]["source"] == "bars"
    assert rows[("RANGE", "ml_brain")]["source"] == "decision_events"  # no bar row for it
    ranks = [
        (r["engine"], r["rank"])
        for r in merged.filter(pl.col("regime") == "RANGE")
        .sort("rank")
        .head(3)
        .iter_rows(named=True)
    ]
    assert ranks == [("mean_reversion", 1), ("range_trading", 2), ("ml_brain", 3)]
    assert merged.height == merged.select("regime", "engine").unique().height
    with pytest.raises(ValueError, match="min_votes"):
        merged_leaderboard(live, bars, min_votes=0)


def _board(
    rows: dict[tuple[str, str], tuple[float, float, int]],
    names: tuple[str, ...] = ("mean_reversion", "ml_brain"),
) -> pl.DataFrame:
    data = [
        {
            "engine": engine,
            "regime": regime,
            "hit_rate": rows.get((regime, engine), (None, 0.0, 0))[0],
            "pnl_contribution_bps": rows.get((regime, engine), (None, 0.0, 0))[1],
            "n_votes": rows.get((regime, engine), (None, 0.0, 0))[2],
            "rank": 0,
        }
        for regime in ("TREND", "RANGE", "PANIC", "ILLIQUID")
        for engine in names
    ]
    return pl.DataFrame(data, schema=LEADERBOARD_SCHEMA)


def test_shadow_standing_sums_recent_paired_differences_per_regime() -> None:
    def result(regime: str, start: datetime, chall: tuple[float, ...]) -> ShadowResult:
        return ShadowResult(
            key=ModelKey("BTC", regime, "1h"),
            challenger=f"BTC_{regime}_1h_v2_20261025_000000",
            champion=None,
            period_start=start,
            period_end=start + timedelta(days=1),
            challenger_returns=chall,
            champion_returns=tuple(0.0 for _ in chall),
            statistics={},
            decision="continue",
            recorded_at=start,
        )

    results = [
        result("RANGE", T0, (0.001, 0.003)),
        result("RANGE", T0 - timedelta(days=40), (0.5, 0.5)),  # before the window
        result("TREND", T0, (-0.002,)),
    ]
    standing = shadow_standing(results, since=T0 - timedelta(days=30))
    rows = {r["regime"]: r for r in standing.iter_rows(named=True)}
    assert rows["RANGE"] == {
        "regime": "RANGE",
        "keys": 1,
        "bars": 2,
        "mean_difference_bps": pytest.approx(20.0),
    }
    assert rows["TREND"]["mean_difference_bps"] == pytest.approx(-20.0)
    assert shadow_standing([], since=T0).height == 0


@pytest.mark.parametrize(
    ("day", "monday"),
    [
        (date(2026, 11, 1), date(2026, 11, 2)),  # a Sunday: the next day
        (date(2026, 11, 2), date(2026, 11, 2)),  # a Monday: itself
        (date(2026, 11, 4), date(2026, 11, 9)),
    ],
)
def test_gates_take_effect_on_the_next_monday(day: date, monday: date) -> None:
    assert next_monday(day) == monday
