"""Known answers for the candle spread estimators (Corwin-Schultz 2012, Abdi-Ranaldo 2017)."""

import math

import numpy as np
import polars as pl
import pytest

from trading_core.features.spread import abdi_ranaldo_spread_bps, corwin_schultz_spread_bps


def _frame(high: list[float], low: list[float], close: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"high": high, "low": low, "close": close})


def _cs_reference(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """The paper's two-day estimator written out bar pair by bar pair (with its gap rule)."""
    k = 3.0 - 2.0 * math.sqrt(2.0)
    out = [math.nan]
    for t in range(1, high.size):
        h1, l1 = high[t], low[t]
        if l1 > close[t - 1]:
            h1, l1 = h1 - (l1 - close[t - 1]), close[t - 1]
        elif h1 < close[t - 1]:
            h1, l1 = close[t - 1], l1 + (close[t - 1] - h1)
        beta = math.log(high[t - 1] / low[t - 1]) ** 2 + math.log(h1 / l1) ** 2
        gamma = math.log(max(high[t - 1], h1) / min(low[t - 1], l1)) ** 2
        alpha = (math.sqrt(2 * beta) - math.sqrt(beta)) / k - math.sqrt(gamma / k)
        out.append(max(2 * (math.exp(alpha) - 1) / (1 + math.exp(alpha)), 0.0))
    return np.array(out)


def _ar_reference(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    eta = (np.log(high) + np.log(low)) / 2
    c = np.log(close)
    moments = np.r_[np.nan, 4 * (c[:-1] - eta[:-1]) * (c[:-1] - eta[1:])]
    out = np.full(high.size, np.nan)
    for t in range(window, high.size):
        out[t] = math.sqrt(max(moments[t - window + 1 : t + 1].mean(), 0.0)) * 1e4
    return out


@pytest.mark.parametrize("closes_at", ["ask", "bid", "alternating"])
def test_constant_mid_quoted_20bps_corwin_schultz_gives_20bps(closes_at: str) -> None:
    # High = ask and low = bid on every bar, no price move: alpha = ln(ask/bid) exactly, so the
    # estimator returns (ask - bid) / mid = 0.2 / 100 = 20 bps.
    n = 6
    ask, bid = 100.1, 99.9
    close = {"ask": [ask] * n, "bid": [bid] * n, "alternating": [ask, bid] * (n // 2)}[closes_at]
    out = _frame([ask] * n, [bid] * n, close).select(corwin_schultz_spread_bps(3).alias("s"))
    assert out["s"].to_list()[:3] == [None, None, None]
    np.testing.assert_allclose(out["s"].to_numpy()[3:], 20.0, rtol=1e-12)


def test_constant_mid_abdi_ranaldo_gives_log_spread() -> None:
    # eta is constant, c - eta = +-ln(ask/bid)/2, so 4 (c - eta)^2 = ln(ask/bid)^2.
    ask, bid = 100.1, 99.9
    out = _frame([ask] * 6, [bid] * 6, [ask, bid, bid, ask, ask, bid]).select(
        abdi_ranaldo_spread_bps(2).alias("s")
    )
    expected = math.log(ask / bid) * 1e4
    assert out["s"].to_list()[:2] == [None, None]
    np.testing.assert_allclose(out["s"].to_numpy()[2:], expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("high", "low", "close", "expected_bps"),
    [
        # no gap, strongly overlapping bars: most of the range is spread
        ([101.0, 101.2], [99.0, 99.1], [100.0, 100.2], 168.97502777),
        # gap up: L_1 = 100.1 > C_0 = 100, bar 1 shifted down by 0.1 to [100.0, 101.2];
        # by hand: alpha = 0.41421 * 0.023288 / 0.17157 - 0.021979 / 0.41421 = 0.0031587
        ([101.0, 101.3], [99.0, 100.1], [100.0, 100.5], 31.59729794),
        # gap down: H_1 = 99.9 < C_0 = 100, bar 1 shifted up by 0.1 to [98.9, 100.0]
        ([101.0, 99.9], [99.0, 98.8], [100.0, 99.5], 44.52197671),
        # combined range wide against the single-bar ranges: negative estimate floored at 0
        ([101.0, 102.5], [99.0, 100.4], [100.0, 101.0], 0.0),
    ],
)
def test_corwin_schultz_two_bar_known_answers(
    high: list[float], low: list[float], close: list[float], expected_bps: float
) -> None:
    out = _frame(high, low, close).select(corwin_schultz_spread_bps(1).alias("s"))["s"]
    reference = _cs_reference(np.array(high), np.array(low), np.array(close))[1] * 1e4
    assert out[0] is None
    assert out[1] == pytest.approx(reference, rel=1e-12, abs=1e-12)
    assert out[1] == pytest.approx(expected_bps, rel=1e-8, abs=1e-9)


def test_abdi_ranaldo_two_bar_known_answer() -> None:
    high, low, close = [101.0, 102.0], [99.0, 100.0], [100.5, 101.0]
    eta0, eta1 = math.log(101 * 99) / 2, math.log(102 * 100) / 2
    c0 = math.log(100.5)
    expected = math.sqrt(max(4 * (c0 - eta0) * (c0 - eta1), 0.0)) * 1e4
    out = _frame(high, low, close).select(abdi_ranaldo_spread_bps(1).alias("s"))["s"]
    assert out[1] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bars_match_loop_references(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, window = 200, 10
    mid = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    high = mid * np.exp(np.abs(rng.normal(0, 0.006, n)))
    low = mid * np.exp(-np.abs(rng.normal(0, 0.006, n)))
    close = low + (high - low) * rng.uniform(size=n)
    frame = _frame(list(high), list(low), list(close))
    got = frame.select(
        corwin_schultz_spread_bps(window).alias("cs"), abdi_ranaldo_spread_bps(window).alias("ar")
    )
    pairs = _cs_reference(high, low, close)
    cs_expected = np.array(
        [np.nan] * window + [pairs[t - window + 1 : t + 1].mean() * 1e4 for t in range(window, n)]
    )
    np.testing.assert_allclose(got["cs"].to_numpy(), cs_expected, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(
        got["ar"].to_numpy(), _ar_reference(high, low, close, window), rtol=1e-9, equal_nan=True
    )


@pytest.mark.parametrize("window", [0, -1, 2.5, True])
def test_bad_window_raises_value_error(window: object) -> None:
    with pytest.raises(ValueError, match="window_bars"):
        corwin_schultz_spread_bps(window)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window_bars"):
        abdi_ranaldo_spread_bps(window)  # type: ignore[arg-type]
