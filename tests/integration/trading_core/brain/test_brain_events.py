"""Decision events, trade outcomes, rankings, reliability, shadow results and gate overrides
on SQLite and PostgreSQL."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.integration.brain_fixtures import (
    BTC_TREND_1H,
    T0,
    brain,
    brain_dsn,
    day_of_events,
    make_event,
    pg_schema_dsn,
    register,
    sqlite_template,
)
from trading_core.brain import BrainLibrary, EngineReliability, decision_event_id
from trading_core.brain.data_store import RANKING_SCHEMA
from trading_core.config import CoinSelectionSection, RegimeGatesSection
from trading_core.errors import BrainLibraryError
from trading_core.events import DecisionEvent
from trading_core.market.ranking import liquidity_ranking
from trading_core.market.schema import universe_frame

# Fixtures are found as attributes of the test module: importing them registers them.
FIXTURES = (brain, brain_dsn, pg_schema_dsn, sqlite_template)


# --- decision events -------------------------------------------------------------------------


def test_append_events_reflush_never_duplicates(brain: BrainLibrary) -> None:
    events = day_of_events()
    assert brain.append_decision_events(events, release_id=None) == 24
    assert brain.append_decision_events(events, release_id=None) == 0
    assert brain.append_decision_events(events[:5] + events[:5], release_id=None) == 0
    assert len(brain.query_decision_events()) == 24


def test_append_events_partial_overlap_counts_only_new(brain: BrainLibrary) -> None:
    events = day_of_events()
    brain.append_decision_events(events[:10], release_id=None)
    assert brain.append_decision_events(events[5:15], release_id=None) == 5


def test_shadow_and_live_events_are_distinct(brain: BrainLibrary) -> None:
    events = [make_event("BTC/USDT", 0, "buy")]
    assert brain.append_decision_events(events, release_id=None) == 1
    assert brain.append_decision_events(events, release_id=None, shadow=True) == 1
    assert len(brain.query_decision_events(shadow=True)) == 1
    assert len(brain.query_decision_events(shadow=False)) == 1


def test_events_roundtrip_payload_and_ids(brain: BrainLibrary) -> None:
    model = register(brain)
    release = brain.create_release(date(2025, 1, 15), production=[model.name], created_by="d")
    event = make_event("BTC/USDT", 3, "buy")
    brain.append_decision_events([event.to_dict()], release_id=release.id)
    (stored,) = brain.query_decision_events()
    assert stored["event_id"] == decision_event_id(event, shadow=False)
    assert stored["release_id"] == release.id and stored["shadow"] is False
    payload = {k: v for k, v in stored.items() if k not in {"event_id", "release_id", "shadow"}}
    assert DecisionEvent.from_dict(payload) == event


def test_query_events_filters_and_orders(brain: BrainLibrary) -> None:
    brain.append_decision_events(list(reversed(day_of_events())), release_id=None)
    btc = brain.query_decision_events(symbol="BTC/USDT")
    assert [e["timestamp"] for e in btc] == [
        (T0 + timedelta(hours=h)).isoformat() for h in range(12)
    ]
    window = brain.query_decision_events(
        symbol="ETH/USDT", since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=6)
    )
    assert [e["timestamp"] for e in window] == [
        (T0 + timedelta(hours=h)).isoformat() for h in range(2, 6)
    ]
    buys = brain.query_decision_events(action="buy")
    assert len(buys) == 6 and {e["action"] for e in buys} == {"buy"}
    assert len(brain.query_decision_events(limit=5)) == 5
    with pytest.raises(ValueError, match="allowed"):
        brain.query_decision_events(action="short")


def test_invalid_event_dict_refused_and_nothing_written(brain: BrainLibrary) -> None:
    good = make_event("BTC/USDT", 0).to_dict()
    bad = {**make_event("BTC/USDT", 1).to_dict(), "net_edge_bps": 99.0}
    with pytest.raises(ValueError, match="#1"):
        brain.append_decision_events([good, bad], release_id=None)
    assert brain.query_decision_events() == []


def test_trade_outcome_recorded_once_and_linked(brain: BrainLibrary) -> None:
    event = make_event("BTC/USDT", 0, "buy")
    brain.append_decision_events([event], release_id=None)
    event_id = decision_event_id(event, shadow=False)
    closed = T0 + timedelta(hours=5)
    assert brain.record_trade_outcome(event_id, fill_price=42000.0, pnl_usd=12.5,
                                      closed_at=closed, fees_usd=0.4)  # fmt: skip
    assert not brain.record_trade_outcome(event_id, fill_price=42000.0, pnl_usd=12.5,
                                          closed_at=closed)  # fmt: skip
    (outcome,) = brain.trade_outcomes(symbol="BTC/USDT")
    assert (outcome["event_id"], outcome["pnl_usd"], outcome["closed_at"]) == (
        event_id,
        12.5,
        closed,
    )
    assert brain.trade_outcomes(since=closed + timedelta(seconds=1)) == []
    with pytest.raises(BrainLibraryError, match="no decision event"):
        brain.record_trade_outcome("0" * 64, fill_price=1.0, pnl_usd=0.0, closed_at=closed)


# --- rankings and reliability ----------------------------------------------------------------


def _ranking(symbols: list[str]) -> pl.DataFrame:
    n = len(symbols)
    return pl.DataFrame(
        {
            "symbol": symbols,
            "rank": list(range(1, n + 1)),
            "liquidity_score": [1.0 - i / n for i in range(n)],
            "daily_volume_usd": [1e9 / (i + 1) for i in range(n)],
            "spread_bps": [1.0 + i for i in range(n)],
            "age_days": [1000 - i for i in range(n)],
            "selected": [i < 2 for i in range(n)],
        }
    )


def test_save_ranking_replaces_same_date_only(brain: BrainLibrary) -> None:
    day1, day2 = date(2025, 1, 15), date(2025, 1, 16)
    brain.save_ranking(day1, _ranking(["BTC", "ETH", "SOL"]))
    brain.save_ranking(day2, _ranking(["ETH", "BTC"]))
    replacement = _ranking(["SOL", "BTC"])
    assert brain.save_ranking(day1, replacement) == 2
    assert_frame_equal(brain.load_ranking(day1), replacement.cast(RANKING_SCHEMA))
    assert brain.load_ranking(day2)["symbol"].to_list() == ["ETH", "BTC"]
    empty = brain.load_ranking(date(2025, 1, 17))
    assert empty.is_empty() and empty.schema == RANKING_SCHEMA


def test_save_ranking_accepts_market_liquidity_ranking_frame(brain: BrainLibrary) -> None:
    # The producer's real output (trading_core.market.ranking), not a hand-made frame.
    rows = [
        {"symbol": f"{c}/USDT", "base": c, "quote": "USDT", "last_price": 1.0,
         "daily_volume_usd": volume, "spread_bps": spread, "listing_date": date(2020, 1, 1),
         "age_days": 1000}
        for c, volume, spread in (("BTC", 2e9, 0.5), ("ETH", 1e9, 1.0), ("SOL", 5e8, 2.0))
    ]  # fmt: skip
    ranked = liquidity_ranking(universe_frame(rows), CoinSelectionSection()).ranked
    assert brain.save_ranking(date(2025, 1, 15), ranked, selected_top=2) == 3
    stored = brain.load_ranking(date(2025, 1, 15))
    assert stored["symbol"].to_list() == ranked["symbol"].to_list()
    assert stored["liquidity_score"].to_list() == ranked["liquidity_score"].to_list()
    assert stored["selected"].to_list() == [True, True, False]


def test_engine_reliability_replaced_per_key(brain: BrainLibrary) -> None:
    first = [
        EngineReliability("trend_v1", 0.7, 0.56, 300),
        EngineReliability("breakout", 0.2, 0.5, 80),
    ]
    brain.save_engine_reliability(BTC_TREND_1H, first, updated_at=T0)
    stored = brain.load_engine_reliability(BTC_TREND_1H)
    assert set(stored) == {"trend_v1", "breakout"}
    assert stored["trend_v1"].reliability == 0.7 and stored["trend_v1"].updated_at == T0
    brain.save_engine_reliability(BTC_TREND_1H, [EngineReliability("momentum", 0.5, 0.52, 90)])
    assert list(brain.load_engine_reliability(BTC_TREND_1H)) == ["momentum"]


# --- shadow results and gates ----------------------------------------------------------------


def test_shadow_results_recorded_and_replaced_per_period(brain: BrainLibrary) -> None:
    champion, challenger = register(brain, tag="a"), register(brain, tag="b")
    start, end = T0, T0 + timedelta(days=14)
    common: dict[str, Any] = {"challenger": challenger.name, "champion": champion.name,
              "period_start": start, "period_end": end}  # fmt: skip
    brain.record_shadow_result(**common, challenger_returns=[0.01, -0.002],
                               champion_returns=[0.0, 0.001], statistics={"p_value": 0.2},
                               decision="continue")  # fmt: skip
    brain.record_shadow_result(**common, challenger_returns=[0.01, 0.02],
                               champion_returns=[0.0, 0.001], statistics={"p_value": 0.01},
                               decision="promote")  # fmt: skip
    (result,) = brain.shadow_results(BTC_TREND_1H)
    assert (result.challenger, result.champion, result.decision) == (
        challenger.name, champion.name, "promote",
    )  # fmt: skip
    assert result.challenger_returns == (0.01, 0.02) and result.statistics == {"p_value": 0.01}
    with pytest.raises(ValueError, match="decision"):
        brain.record_shadow_result(**common, challenger_returns=[], champion_returns=[],
                                   statistics={}, decision="maybe")  # fmt: skip


def test_regime_gates_latest_effective_override_wins_and_history_kept(brain: BrainLibrary) -> None:
    monday1, monday2 = date(2025, 1, 13), date(2025, 1, 20)
    defaults = RegimeGatesSection()
    brain.set_regime_gates(monday1, {"TREND": defaults.TREND, "PANIC": defaults.PANIC},
                           actor="leaderboard", reason="weekly refresh")  # fmt: skip
    brain.set_regime_gates(monday2, {"TREND": {"enabled_engines": ["trend_v1"],
                                               "disabled_engines": ["breakout"]}},
                           actor="alice", reason="breakout misfires")  # fmt: skip
    in_week1 = brain.current_regime_gates(as_of=date(2025, 1, 15))
    assert in_week1["TREND"].enabled_engines == defaults.TREND.enabled_engines
    in_week2 = brain.current_regime_gates(as_of=date(2025, 1, 21))
    assert (in_week2["TREND"].disabled_engines, in_week2["TREND"].actor) == (("breakout",), "alice")
    assert in_week2["PANIC"].week_start == monday1
    assert [g.actor for g in brain.regime_gate_history(regime="TREND")] == ["leaderboard", "alice"]
    with pytest.raises(ValueError, match="Monday"):
        brain.set_regime_gates(date(2025, 1, 21), {"TREND": {}}, actor="a", reason="r")


def test_current_regime_gates_defaults_to_clock_date(brain: BrainLibrary) -> None:
    # The fixture clock starts on 2025-01-15: an override from next Monday is not yet in force.
    brain.set_regime_gates(date(2025, 1, 20), {"RANGE": {}}, actor="a", reason="r")
    assert brain.current_regime_gates() == {}
    assert set(brain.current_regime_gates(as_of=datetime(2025, 1, 20, tzinfo=UTC).date())) == {
        "RANGE"
    }
