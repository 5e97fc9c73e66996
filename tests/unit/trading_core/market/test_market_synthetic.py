"""The synthetic market: deterministic, consistent candles, a realistic liquidity spread that the
coin filters cut, regimes, and structure that exists in ``structured`` mode only."""

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from tests.unit.market_fixtures import (
    fresh_structlog,  # noqa: F401  (autouse)
    shared_market,
    small_section,
)
from trading_core.config.models import CoinSelectionSection, SyntheticMarketSection
from trading_core.errors import DataSourceError
from trading_core.market.ranking import liquidity_ranking
from trading_core.market.resample import resample_ohlcv
from trading_core.market.synthetic import SyntheticMarket, synthetic_bases
from trading_core.market.synthetic_model import RANGE, TREND
from trading_core.types import Regime


def _all(market: SyntheticMarket, symbol: str, timeframe: str = "1h") -> pl.DataFrame:
    return market.fetch_ohlcv(
        symbol, timeframe, start=market.end - timedelta(days=4000), end=market.end
    )


def test_default_universe_lists_450_pairs_btc_eth_first() -> None:
    symbols = SyntheticMarket(SyntheticMarketSection()).list_symbols()  # no simulation needed
    assert len(symbols) == len(set(symbols)) == 450
    assert symbols[:2] == ["BTC/USDT", "ETH/USDT"]
    assert all(s.endswith("/USDT") for s in symbols)


def test_same_seed_identical_frames_different_seed_different() -> None:
    one = SyntheticMarket(small_section(n_coins=5, days=20))
    two = SyntheticMarket(small_section(n_coins=5, days=20))
    other = SyntheticMarket(small_section(n_coins=5, days=20, seed=8))
    for symbol in one.list_symbols():
        assert _all(one, symbol).equals(_all(two, symbol))
        assert not _all(one, symbol).equals(_all(other, symbol))
    assert one.funding_rates("ETH/USDT", start=one.end - timedelta(days=5), end=one.end).equals(
        two.funding_rates("ETH/USDT", start=two.end - timedelta(days=5), end=two.end)
    )


def test_coin_bars_do_not_depend_on_how_many_coins_exist() -> None:
    few = SyntheticMarket(small_section(n_coins=4, days=20))
    many = SyntheticMarket(small_section(n_coins=40, days=20))
    assert synthetic_bases(4) == synthetic_bases(40)[:4]
    for symbol in few.list_symbols():
        assert _all(few, symbol).equals(_all(many, symbol))
        assert few.true_regimes(symbol).equals(many.true_regimes(symbol))


def test_candles_consistent_positive_and_validated() -> None:
    m = shared_market().market
    listed = np.arange(m.close.shape[1])[None, :] >= m.first_bar[:, None]
    assert np.all(m.high[listed] >= np.maximum(m.open, m.close)[listed])
    assert np.all(m.low[listed] <= np.minimum(m.open, m.close)[listed])
    assert np.all(m.low[listed] > 0) and np.all(m.volume[listed] > 0)
    assert np.isfinite(m.high[listed]).all()


def test_young_coins_have_bars_from_listing_only() -> None:
    market = shared_market()
    snapshot = market.universe_snapshot(market.end)
    young = snapshot.filter(pl.col("age_days") < 30)
    assert young.height >= 1
    for row in young.iter_rows(named=True):
        bars = _all(market, row["symbol"])
        assert bars.height == row["age_days"] * 24
        assert bars["timestamp"][0].date() == row["listing_date"]


def test_liquidity_is_power_law_and_spread_widens_as_volume_falls() -> None:
    market = shared_market()
    snap = market.universe_snapshot(market.end)
    volume = snap["daily_volume_usd"].to_numpy()
    assert volume.max() > 5e9  # BTC: billions a day
    assert (volume < 1e6).mean() > 0.15  # a long tail far below 1M
    assert (volume < 2e5).any()
    rank_corr = snap.select(pl.corr("daily_volume_usd", "spread_bps", method="spearman")).item()
    assert rank_corr < -0.7


def test_default_filters_cut_the_default_universe_by_every_filter() -> None:
    market = SyntheticMarket(SyntheticMarketSection(days=30))  # all 450 coins, a short history
    snapshot = market.universe_snapshot(market.end)
    assert snapshot.height == 450
    ranking = liquidity_ranking(snapshot, CoinSelectionSection())
    removed = ranking.removed_by_filter
    assert removed["min_daily_volume_usd"] > 0
    assert removed["max_spread_bps"] > 0  # liquid enough by volume, yet too wide
    assert removed["min_age_days"] > 0
    assert 30 < ranking.ranked.height < 450 - 30
    assert ranking.symbols[:2] == ["BTC/USDT", "ETH/USDT"]


def test_snapshot_volume_is_trailing_24h_quote_volume() -> None:
    market = shared_market()
    as_of = market.end - timedelta(days=3, hours=5)
    snap = market.universe_snapshot(as_of).filter(pl.col("symbol") == "ETH/USDT")
    day = market.fetch_ohlcv("ETH/USDT", "1h", start=as_of - timedelta(days=1), end=as_of)
    assert day.height == 24
    assert snap["daily_volume_usd"].item() == pytest.approx((day["close"] * day["volume"]).sum())
    assert snap["last_price"].item() == day["close"][-1]


def test_all_four_regimes_present_with_panic_short_and_range_long() -> None:
    market = shared_market()
    lengths: dict[str, list[int]] = {r.value: [] for r in Regime}
    for symbol in market.list_symbols()[:30]:
        regimes = market.true_regimes(symbol)
        runs = regimes.select(pl.col("regime").rle()).unnest("regime")
        for value, length in zip(runs["value"], runs["len"], strict=True):
            lengths[value].append(length)
    assert all(lengths[r.value] for r in Regime)
    assert np.mean(lengths["PANIC"]) < 24 < np.mean(lengths["RANGE"])


def test_higher_timeframes_are_resampled_hours() -> None:
    market = shared_market()
    hourly = _all(market, "BTC/USDT")
    for timeframe in ("4h", "1d"):
        assert _all(market, "BTC/USDT", timeframe).equals(resample_ohlcv(hourly, "1h", timeframe))


def test_funding_every_8h_near_base_rate() -> None:
    market = shared_market()
    rates = market.funding_rates("BTC/USDT", start=market.end - timedelta(days=30), end=market.end)
    assert rates.height == 90
    assert set(rates["timestamp"].dt.hour().unique()) == {0, 8, 16}
    assert rates["funding_rate"].abs().max() <= 0.0075  # type: ignore[operator]
    assert 0.0 < rates["funding_rate"].median() < 0.0005  # type: ignore[operator]


@pytest.mark.parametrize(
    ("symbol", "timeframe", "message"),
    [("NOPE/USDT", "1h", "not in the synthetic market"), ("BTC/USDT", "5m", "serves timeframes")],
)
def test_unknown_symbol_or_timeframe_rejected(symbol: str, timeframe: str, message: str) -> None:
    market = shared_market()
    with pytest.raises(DataSourceError, match=message):
        market.fetch_ohlcv(symbol, timeframe, start=market.end - timedelta(days=1), end=market.end)


def _tight_coins(market: SyntheticMarket) -> np.ndarray:
    # Coins with a tight spread: bid-ask bounce adds its own negative autocorrelation (Roll,
    # 1984), which would blur the statistics below on wide-spread coins.
    return np.flatnonzero(market.market.params.base_spread_bps < 3.0)[:25]


def _pairs_in_regime(
    market: SyntheticMarket, regime: int, signal: str
) -> tuple[np.ndarray, np.ndarray]:
    """(x, next 1h log return) over consecutive bars both in ``regime``, pooled over the tight
    coins; x is the previous return (``signal="return"``) or the gap between the log close and
    its exponential moving average with alpha 1/48 (``signal="gap"``)."""
    m = market.market
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for i in _tight_coins(market):
        log_close = np.log(m.close[i, m.first_bar[i] :])
        regimes = m.regimes[i, m.first_bar[i] :]
        r = np.diff(log_close)
        if signal == "return":
            x, y, reg = r[:-1], r[1:], regimes[1:]
        else:
            ema = pl.Series(log_close).ewm_mean(alpha=1 / 48, adjust=False).to_numpy()
            x, y, reg = (log_close - ema)[:-1], r, regimes
        both = (reg[1:] == regime) & (reg[:-1] == regime)
        xs.append(x[both])
        ys.append(y[both])
    return np.concatenate(xs), np.concatenate(ys)


def _z_correlation(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Pearson correlation and its z-score under independence (standard error 1/sqrt(n))."""
    corr = float(np.corrcoef(x, y)[0, 1])
    return corr, corr * float(np.sqrt(x.size))


def test_structured_mode_has_momentum_and_reversion_null_mode_has_none() -> None:
    # Stated statistics, pooled over tight-spread coins, bars inside one regime:
    #   momentum  = corr(r_t, r_t+1) in TREND (lag-1 autocorrelation of 1h log returns);
    #   reversion = corr(log close_t - EMA48_t, r_t+1) in RANGE.
    # Structured mode: momentum > 0.05 and reversion < -0.05, each beyond 8 standard errors.
    # Null mode (same regimes and volatility, independent returns): both within 3.5 s.e. of 0.
    structured = shared_market("structured", n_coins=120, days=365)
    null = shared_market("no_edge", n_coins=120, days=365)
    assert len(_tight_coins(structured)) >= 10
    momentum, z_momentum = _z_correlation(*_pairs_in_regime(structured, TREND, "return"))
    reversion, z_reversion = _z_correlation(*_pairs_in_regime(structured, RANGE, "gap"))
    assert momentum > 0.05 and z_momentum > 8
    assert reversion < -0.05 and z_reversion < -8
    for regime, signal in ((TREND, "return"), (RANGE, "gap"), (RANGE, "return")):
        _, z_null = _z_correlation(*_pairs_in_regime(null, regime, signal))
        assert abs(z_null) < 3.5, (regime, signal, z_null)
