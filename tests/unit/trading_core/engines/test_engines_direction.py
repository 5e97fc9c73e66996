"""Each engine points the way its idea says on a hand-built market (known-direction tests)."""

from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from tests.unit.features_fixtures import bars_from_close, noise_then
from trading_core.engines import ENGINE_REGISTRY, EngineContext
from trading_core.features import compute_features

N_NOISE = 600


def _uptrend(bars_in: int = 30) -> pl.DataFrame:
    """Quiet noise then a clean +0.3%/bar climb; evaluated ``bars_in`` bars into it."""
    return bars_from_close(noise_then(np.exp(0.003 * np.arange(1, bars_in + 1))))


def _downtrend() -> pl.DataFrame:
    return bars_from_close(noise_then(np.exp(-0.003 * np.arange(1, 31))))


def _spike_up(n_up: int = 5, step: float = 0.02, volume_mult: float = 1.0) -> pl.DataFrame:
    close = noise_then(np.exp(step * np.arange(1, n_up + 1)))
    volume = np.full(close.size, 1_000.0)
    volume[-1] *= volume_mult
    return bars_from_close(close, volume=volume)


def _spike_then_pullback() -> pl.DataFrame:
    return bars_from_close(noise_then(np.exp(np.r_[0.01 * np.arange(1, 6), 0.03])))


def _small_spike() -> pl.DataFrame:
    return bars_from_close(noise_then(np.exp([0.01, 0.02])))


def _crash_with_volatility() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    moves = -0.004 + 0.03 * rng.standard_normal(12)
    moves[-4:] = [-0.02, -0.03, -0.01, -0.02]
    return bars_from_close(noise_then(np.exp(np.cumsum(moves))))


def _edit_last(bars: pl.DataFrame, **values: float) -> pl.DataFrame:
    last = bars.height - 1
    return bars.with_columns(
        pl.when(pl.int_range(pl.len()) == last).then(pl.lit(v)).otherwise(pl.col(k)).alias(k)
        for k, v in values.items()
    )


def _support_bounce() -> pl.DataFrame:
    """The last bar opens just above the previous 72-bar low, dips to it and closes near its
    high."""
    bars = bars_from_close(noise_then(np.ones(1)))
    support = bars["low"].slice(bars.height - 73, 72).min()
    assert isinstance(support, float)
    return _edit_last(
        bars,
        open=support * 1.003,
        low=support * 1.0003,
        high=support * 1.0045,
        close=support * 1.004,
    )


def _long_lower_wick() -> pl.DataFrame:
    bars = bars_from_close(noise_then(np.ones(1)))
    price = bars["close"][-2]
    return _edit_last(bars, open=price, close=price * 1.0005, high=price * 1.001, low=price * 0.98)


def _bullish_engulfing() -> pl.DataFrame:
    bars = bars_from_close(noise_then(np.array([0.99, 1.0])))
    prev_open, prev_close = bars["close"][-3], bars["close"][-2]
    assert prev_close < prev_open
    return _edit_last(
        bars,
        open=prev_close * 0.999,
        close=prev_open * 1.004,
        high=prev_open * 1.005,
        low=prev_close * 0.998,
    )


def _squeeze_release() -> pl.DataFrame:
    """A tight oscillation (Bollinger inside Keltner), then a break up."""
    rng = np.random.default_rng(1)
    calm = 1.0 + 0.0005 * np.sign(rng.standard_normal(80))
    return bars_from_close(noise_then(np.r_[calm, 1.012, 1.02, 1.03]), wick=0.003)


Scenario = Callable[[], pl.DataFrame]
FLAT_BTC: Callable[[int], np.ndarray] = lambda n: np.full(n, 30_000.0)  # noqa: E731

CASES: list[tuple[str, Scenario, float]] = [
    ("trend_v1", _uptrend, +1),
    ("trend_v1", _downtrend, -1),
    ("trend_v2", _uptrend, +1),
    ("trend_v2", _downtrend, -1),
    ("breakout", _uptrend, +1),
    ("breakout", _downtrend, -1),
    ("momentum", _uptrend, +1),
    ("momentum", _downtrend, -1),
    ("macd", _uptrend, +1),
    ("ema_ribbon", _uptrend, +1),
    ("ema_ribbon", _downtrend, -1),
    ("obv_trend", _uptrend, +1),
    ("order_flow_imbalance", _uptrend, +1),
    ("variance_ratio", _uptrend, +1),
    ("relative_strength_btc", _uptrend, +1),
    ("relative_strength_btc", _downtrend, -1),
    ("mean_reversion", _spike_up, -1),
    ("vwap_reversion", _spike_up, -1),
    ("rsi_oscillator", _spike_up, -1),
    ("range_trading", _small_spike, -1),
    ("liquidity", lambda: _spike_up(1, 0.03, 30.0), -1),
    ("stochastic", _spike_then_pullback, -1),
    ("support_resistance", _support_bounce, +1),
    ("scalping", _long_lower_wick, +1),
    ("candle_pattern", _bullish_engulfing, +1),
    ("volatility", _crash_with_volatility, -1),
    ("volatility_squeeze", _squeeze_release, +1),
]


@pytest.mark.parametrize(("engine", "scenario", "direction"), CASES)
def test_engine_points_the_expected_way(engine: str, scenario: Scenario, direction: float) -> None:
    bars = compute_features(scenario())
    ctx = EngineContext(btc_close=FLAT_BTC(bars.height))
    out = ENGINE_REGISTRY[engine].fn(bars, ctx)
    assert np.sign(out.signal[-1]) == direction, out.signal[-5:]
    assert abs(out.signal[-1]) > 0.05
    assert out.confidence[-1] > 0.0


@pytest.mark.parametrize(("funding", "direction"), [(5e-4, -1.0), (-5e-4, 1.0), (0.0, 0.0)])
def test_funding_carry_leans_against_the_paying_side(funding: float, direction: float) -> None:
    bars = compute_features(bars_from_close(noise_then(np.ones(10))))
    ctx = EngineContext(funding_rate=np.full(bars.height, funding))
    out = ENGINE_REGISTRY["funding_carry"].fn(bars, ctx)
    assert np.sign(out.signal[-1]) == direction
    assert out.signal[-1] == pytest.approx(-np.tanh(funding / 3e-4))


@pytest.mark.parametrize("engine", ["funding_carry", "relative_strength_btc", "ml_brain"])
def test_engines_without_their_context_abstain(engine: str) -> None:
    bars = compute_features(_uptrend())
    out = ENGINE_REGISTRY[engine].fn(bars, EngineContext())
    assert not out.signal.any() and not out.confidence.any()


def test_ml_brain_maps_prediction_with_tanh() -> None:
    bars = compute_features(_uptrend())
    ctx = EngineContext(ml_predictor=lambda f: np.full(f.height, 25.0), ml_scale_bps=50.0)
    out = ENGINE_REGISTRY["ml_brain"].fn(bars, ctx)
    warm = ENGINE_REGISTRY["ml_brain"].warmup_bars
    assert not out.signal[:warm].any()
    np.testing.assert_allclose(out.signal[warm:], np.tanh(0.5))
    np.testing.assert_allclose(out.confidence[warm:], np.tanh(0.5))
