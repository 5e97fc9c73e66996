"""Incremental regimes (a carried memory per coin, numpy) equal detect_regimes (polars) on the
trailing frame Hamilton's reference path uses, bar by bar; a memory rebuilt from a window is
bit-identical to the one advanced bar by bar."""

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.unit.market_fixtures import require_real_data
from trading_core.config.models import RegimeDetectionSection
from trading_core.regime import detect_regimes, regime_warmup_bars
from trading_core.regime.incremental import (
    RegimeMemory,
    advance_regimes,
    empty_memory,
    linear_quantile,
    newest_regimes,
    regime_memory_from_window,
    tail_bars,
)

FloatArray = npt.NDArray[np.float64]
DETECTION = RegimeDetectionSection()
FRAME = regime_warmup_bars(DETECTION) + 1
CAPACITY = 800  # Hamilton's default window


def regime_walk(n_bars: int, seed: int) -> tuple[FloatArray, FloatArray]:
    """Close and volume switching between calm, trending, volatile and thin stretches."""
    rng = np.random.default_rng(seed)
    phase = (np.arange(n_bars) + rng.integers(0, 300)) // rng.integers(80, 200) % 4
    vol = np.array([0.006, 0.008, 0.03, 0.01])[phase]
    drift = np.array([0.0, 0.004, 0.0, 0.0])[phase] * rng.choice([-1, 1])
    close = 50.0 * np.exp(np.cumsum(rng.normal(drift, vol)))
    close[rng.random(n_bars) < 0.003] *= 1.15  # jumps
    volume = rng.lognormal(4.0, 0.6, n_bars) * np.where(phase == 3, 0.02, 1.0)
    return close, volume


def tails(series: list[tuple[FloatArray, FloatArray]], t: int) -> tuple[FloatArray, FloatArray]:
    """Each coin's last tail_bars() bars ending at bar t, NaN-padded on the left."""
    k = tail_bars(DETECTION)
    close, volume = np.full((len(series), k), np.nan), np.full((len(series), k), np.nan)
    first = max(0, t + 1 - k)
    for i, (c, v) in enumerate(series):
        close[i, k - (t + 1 - first) :] = c[first : t + 1]
        volume[i, k - (t + 1 - first) :] = v[first : t + 1]
    return close, volume


def reference(close: FloatArray, volume: FloatArray, t: int) -> int:
    first = max(0, t + 1 - min(FRAME, CAPACITY))
    frame = pl.DataFrame({"close": close[first : t + 1], "volume": volume[first : t + 1]})
    return int(detect_regimes(frame, DETECTION)[-1])


def advance_all(series: list[tuple[FloatArray, FloatArray]], n_bars: int) -> list[list[int]]:
    """Codes of every bar of every coin, advancing one memory per coin."""
    memories: tuple[RegimeMemory, ...] = tuple(empty_memory() for _ in series)
    codes = []
    for t in range(n_bars):
        close, volume = tails(series, t)
        lengths = np.full(len(series), min(t + 1, CAPACITY))
        memories = advance_regimes(memories, close, volume, lengths, DETECTION, frame_bars=FRAME)
        codes.append(newest_regimes(memories, DETECTION).tolist())
    return codes


def test_advanced_regimes_equal_detect_regimes_bar_by_bar() -> None:
    n_bars = 1100
    series = [regime_walk(n_bars, seed) for seed in range(4)]
    codes = advance_all(series, n_bars)
    checked = [*range(0, n_bars, 9), *range(n_bars - 40, n_bars)]
    seen = set()
    for t in checked:
        for i, (close, volume) in enumerate(series):
            assert codes[t][i] == reference(close, volume, t), (t, i)
            seen.add(codes[t][i])
    assert len(seen) == 4  # the comparison covers every regime


def test_advanced_regimes_equal_detect_regimes_on_real_candles() -> None:
    folder = require_real_data()
    series = []
    for coin in ("BTC", "DOGE", "ANKR"):
        frame = pl.read_parquet(folder / f"{coin}_USDT-1h.parquet").tail(1000)
        series.append((frame["close"].to_numpy(), frame["volume"].to_numpy()))
    codes = advance_all(series, 1000)
    for t in [*range(760, 1000, 7), 999]:
        for i, (close, volume) in enumerate(series):
            assert codes[t][i] == reference(close, volume, t), (t, i)


def assert_same_memory(a: RegimeMemory, b: RegimeMemory) -> None:
    assert a.bars_seen == b.bars_seen
    np.testing.assert_array_equal(a.vol, b.vol)
    np.testing.assert_array_equal(a.dollar_volume, b.dollar_volume)
    np.testing.assert_array_equal(a.raw, b.raw)
    np.testing.assert_array_equal(a.confirmed, b.confirmed)


@settings(max_examples=12, deadline=None)
@example(n_bars=1000, seed=3)  # a trimmed window (800 of 1000 bars)
@example(n_bars=771, seed=5)  # the first bars past the regime warm-up
@given(
    n_bars=st.integers(min_value=1, max_value=1000),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_a_rebuilt_memory_is_bit_identical_to_the_advanced_one(n_bars: int, seed: int) -> None:
    close, volume = regime_walk(n_bars, seed)
    memory = empty_memory()
    for t in range(n_bars):
        c, v = tails([(close, volume)], t)
        (memory,) = advance_regimes(
            (memory,), c, v, [min(t + 1, CAPACITY)], DETECTION, frame_bars=FRAME
        )
    window = slice(max(0, n_bars - CAPACITY), n_bars)
    rebuilt = regime_memory_from_window(
        close[window], volume[window], n_bars, DETECTION, frame_bars=FRAME
    )
    assert_same_memory(rebuilt, memory)
    assert newest_regimes([rebuilt], DETECTION)[0] == newest_regimes([memory], DETECTION)[0]


def test_a_window_that_cannot_rebuild_the_memory_is_refused() -> None:
    close, volume = regime_walk(500, 1)
    with pytest.raises(ValueError, match="whole history"):
        regime_memory_from_window(close, volume, 900, DETECTION, frame_bars=FRAME)


def test_tails_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ValueError, match="close/volume"):
        advance_regimes(
            (empty_memory(),), np.ones((1, 3)), np.ones((1, 3)), [3], DETECTION, frame_bars=FRAME
        )


def test_a_memory_without_a_bar_has_no_regime() -> None:
    with pytest.raises(ValueError, match="no bar"):
        newest_regimes([empty_memory()], DETECTION)


@pytest.mark.parametrize("q", [0.0, 0.05, 0.33, 0.5, 0.95, 1.0])
def test_the_percentile_is_polars_linear_rolling_quantile_bit_for_bit(q: float) -> None:
    rng = np.random.default_rng(int(q * 100))
    values = rng.lognormal(size=2000) * 1e-2
    values[rng.random(2000) < 0.2] = 0.01  # ties
    width = DETECTION.percentile_window_bars
    expected = pl.Series(values).rolling_quantile(q, "linear", width, min_samples=width)
    windows = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(values, width))
    np.testing.assert_array_equal(linear_quantile(windows, q), expected.to_numpy()[width - 1 :])
