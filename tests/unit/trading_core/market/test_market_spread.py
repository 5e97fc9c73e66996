"""Candle spread estimates for the parquet universe snapshot: EDGE recovers a simulated spread
and, unlike Corwin–Schultz, stays near true spreads on real hourly candles."""

import numpy as np
import polars as pl
import pytest

from tests.unit.market_fixtures import (
    fresh_structlog,  # noqa: F401  (autouse)
    require_real_data,
)
from trading_core.market.spread import corwin_schultz_window_bps, edge_spread_bps


def test_edge_recovers_a_simulated_roll_spread() -> None:
    rng = np.random.default_rng(3)
    n, spread, vol = 20_000, 0.0020, 0.003
    mid = 100 * np.exp(np.cumsum(vol * rng.standard_normal(n)))
    mid_open = np.concatenate([[100.0], mid[:-1]])
    sides = np.where(rng.random((2, n)) < 0.5, -1.0, 1.0)
    open_ = mid_open * (1 + sides[0] * spread / 2)
    close = mid * (1 + sides[1] * spread / 2)
    high = (
        np.maximum(mid_open, mid)
        * np.exp(0.5 * vol * np.abs(rng.standard_normal(n)))
        * (1 + spread / 2)
    )
    low = (
        np.minimum(mid_open, mid)
        * np.exp(-0.5 * vol * np.abs(rng.standard_normal(n)))
        * (1 - spread / 2)
    )
    assert edge_spread_bps(open_, high, low, close) == pytest.approx(20.0, rel=0.25)


def test_edge_too_few_bars_is_nan_and_bad_shapes_rejected() -> None:
    assert np.isnan(edge_spread_bps([1.0, 1.0], [1.1, 1.1], [0.9, 0.9], [1.0, 1.0]))
    with pytest.raises(ValueError, match="one length"):
        edge_spread_bps([1.0, 1.0, 1.0], [1.1], [0.9], [1.0])


@pytest.mark.parametrize(
    ("ask", "bid", "expected_bps"), [(100.05, 99.95, 10.0), (101.0, 99.0, 200.0)]
)
def test_corwin_schultz_window_without_volatility_is_the_quoted_spread(
    ask: float, bid: float, expected_bps: float
) -> None:
    # Constant mid, highs at the ask, lows at the bid: S = 2 (ask - bid) / (ask + bid).
    bars = pl.DataFrame({"high": [ask] * 10, "low": [bid] * 10, "close": [(ask + bid) / 2] * 10})
    assert corwin_schultz_window_bps(bars) == pytest.approx(expected_bps, rel=1e-9)
    assert np.isnan(corwin_schultz_window_bps(bars.head(1)))


def test_edge_is_tight_where_corwin_schultz_is_not_on_real_btc_hours() -> None:
    week = pl.read_parquet(require_real_data() / "BTC_USDT-1h.parquet").tail(24 * 7)
    edge_bps = edge_spread_bps(week["open"], week["high"], week["low"], week["close"])
    cs_bps = corwin_schultz_window_bps(week)
    # BTC/USDT's quoted spread is a fraction of a bp: EDGE stays within a few bps, CS does not.
    assert 0.0 <= edge_bps < 8.0 < cs_bps
