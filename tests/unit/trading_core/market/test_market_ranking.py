"""Liquidity ranking: a known-answer table for each method, filter counts in the documented
order, deterministic tie-breaks, and input checks."""

import math
from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.market_fixtures import fresh_structlog  # noqa: F401  (autouse)
from trading_core.config.models import CoinSelectionSection
from trading_core.market.ranking import FILTER_ORDER, liquidity_ranking
from trading_core.market.schema import universe_frame


def _row(symbol: str, volume: float | None, spread: float | None, age: int) -> dict[str, object]:
    base, quote = symbol.split("/")
    return {
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "last_price": 1.0,
        "daily_volume_usd": volume,
        "spread_bps": spread,
        "listing_date": date(2020, 1, 1),
        "age_days": age,
    }


SNAPSHOT = universe_frame(
    [
        _row("A/USDT", 1e9, 1.0, 1000),
        _row("B/USDT", 1e8, 3.0, 100),
        _row("C/USDT", 1e7, 0.0, 400),
        _row("D/USDT", 5e5, 1.0, 1000),  # volume too low
        _row("E/USDT", 1e9, 9.0, 1000),  # spread too wide
        _row("F/USDT", 1e9, 1.0, 10),  # too young
        _row("G/BTC", 1e9, 1.0, 1000),  # other quote
        _row("H/USDT", 1e8, 1.0, 365),
        _row("I/USDT", 1e9, None, 1000),  # unknown spread
        _row("J/USDT", math.nan, 1.0, 1000),  # unknown volume
        _row("K/USDT", 1e8, 1.0, 365),  # same numbers as H: tie broken by symbol
    ]
)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("liquidity_score", ["A/USDT", "H/USDT", "K/USDT", "C/USDT", "B/USDT"]),
        ("volume", ["A/USDT", "B/USDT", "H/USDT", "K/USDT", "C/USDT"]),
        ("spread", ["C/USDT", "A/USDT", "H/USDT", "K/USDT", "B/USDT"]),
    ],
)
def test_known_answer_order_per_method(method: str, expected: list[str]) -> None:
    ranking = liquidity_ranking(SNAPSHOT, CoinSelectionSection(ranking_method=method))
    assert ranking.symbols == expected
    assert ranking.ranked["rank"].to_list() == [1, 2, 3, 4, 5]


def test_known_answer_scores() -> None:
    ranked = liquidity_ranking(SNAPSHOT, CoinSelectionSection()).ranked
    scores = dict(zip(ranked["symbol"], ranked["liquidity_score"], strict=True))
    assert scores["A/USDT"] == pytest.approx(9 - 2 * math.log10(2))  # 8.39794
    assert scores["H/USDT"] == pytest.approx(8 - 2 * math.log10(2))  # one year old: no penalty
    assert scores["C/USDT"] == pytest.approx(7.0)
    assert scores["B/USDT"] == pytest.approx(8 - 2 * math.log10(4) - 0.5 * (1 - 100 / 365))


def test_filters_counted_in_documented_order_then_cap() -> None:
    ranking = liquidity_ranking(SNAPSHOT, CoinSelectionSection(max_coins=3))
    assert tuple(ranking.removed_by_filter) == FILTER_ORDER
    assert dict(ranking.removed_by_filter) == {
        "quote": 1,
        "min_age_days": 1,
        "min_daily_volume_usd": 2,
        "max_spread_bps": 2,
        "max_coins": 2,
    }
    assert ranking.symbols == ["A/USDT", "H/USDT", "K/USDT"]


def test_markdown_and_top() -> None:
    ranking = liquidity_ranking(SNAPSHOT, CoinSelectionSection())
    assert ranking.top(2)["symbol"].to_list() == ["A/USDT", "H/USDT"]
    text = ranking.to_markdown(2)
    assert "| 1 | A/USDT | 8.398 | 1,000,000,000 | 1.00 | 1000 |" in text
    assert "K/USDT" not in text
    assert "max_spread_bps: 2" in text


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (SNAPSHOT.drop("spread_bps"), "lacks columns"),
        (pl.concat([SNAPSHOT, SNAPSHOT.head(1)]), "more than once"),
    ],
)
def test_bad_snapshot_rejected(frame: pl.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        liquidity_ranking(frame, CoinSelectionSection())


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1e11), st.floats(0, 50), st.integers(0, 3000)),
        min_size=1,
        max_size=30,
    ),
    st.integers(1, 40),
)
def test_every_kept_coin_passes_every_filter(
    coins: list[tuple[float, float, int]], cap: int
) -> None:
    snapshot = universe_frame([_row(f"C{i}/USDT", v, s, a) for i, (v, s, a) in enumerate(coins)])
    selection = CoinSelectionSection(max_coins=cap)
    ranking = liquidity_ranking(snapshot.sample(fraction=1.0, shuffle=True, seed=2), selection)
    kept = ranking.ranked
    assert kept.height <= cap
    assert sum(ranking.removed_by_filter.values()) + kept.height == len(coins)
    assert (kept["daily_volume_usd"] >= selection.min_daily_volume_usd).all()
    assert (kept["spread_bps"] <= selection.max_spread_bps).all()
    assert (kept["age_days"] >= selection.min_age_days).all()
    assert kept["liquidity_score"].is_sorted(descending=True)
    # Deterministic whatever the input order.
    again = liquidity_ranking(snapshot, selection)
    assert again.ranked.equals(kept)
