"""newest_bar_features (numpy, one row per coin) equals compute_features' last row (polars).

Tolerance: 1e-9 relative or absolute (features are O(1) ratios except dollar volumes); the
two differ only in floating-point summation order (observed ~1e-12). Null in polars is NaN
here, on exactly the same bars.

One known deviation, on purpose: when a rolling window of returns is exactly zero right after
non-zero ones (a coin that did not trade for 12+ bars), polars' incremental rolling mean keeps
a rounding residue (a tiny +/- value, whose square root is NaN when negative); the fast path
gives the exact 0. The random walks below keep flat runs short, or flat from the start.
"""

from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.market_fixtures import require_real_data
from trading_core.errors import DataValidationError
from trading_core.features import FEATURE_COLUMNS, compute_features, warmup_bars
from trading_core.features.lastbar import BAR_FIELDS, newest_bar_features

FloatArray = npt.NDArray[np.float64]
FULL_BARS = warmup_bars() + 1
REAL_COINS = ("BTC", "ETH", "ADA", "XRP", "DOGE", "LINK", "EOS", "BAT", "ANKR", "CHZ")


def random_walk(n_bars: int, seed: int, *, flat_share: float = 0.0) -> FloatArray:
    """(5, n_bars) consistent OHLCV: a log-normal walk, some flat bars and zero volumes."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, rng.uniform(0.002, 0.03), n_bars)
    steps[rng.random(n_bars) < flat_share] = 0.0
    close = rng.uniform(0.01, 5e4) * np.exp(np.cumsum(steps))
    open_ = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0.0, 0.004, (2, n_bars)))
    wick[:, rng.random(n_bars) < flat_share] = 0.0
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = rng.lognormal(3.0, 1.5, n_bars)
    volume[rng.random(n_bars) < flat_share / 2] = 0.0
    return np.stack([open_, high, low, close, volume])


def reference_last_row(bars: FloatArray) -> FloatArray:
    """compute_features on one coin's (5, n) bars: its last row, null as NaN."""
    frame = pl.DataFrame(
        {"timestamp": np.arange(bars.shape[1], dtype=np.int64) * 3_600_000}
        | {name: bars[j] for j, name in enumerate(BAR_FIELDS)}
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("ms", "UTC")))
    row = compute_features(frame).select(FEATURE_COLUMNS).row(-1)
    return np.array([np.nan if v is None else v for v in row])


def assert_same_features(fast: FloatArray, reference: FloatArray) -> None:
    nulls = np.isnan(reference)
    mismatched = [
        c for c, a, b in zip(FEATURE_COLUMNS, np.isnan(fast), nulls, strict=True) if a != b
    ]
    assert not mismatched, f"null on different bars: {mismatched}"
    np.testing.assert_allclose(fast[~nulls], reference[~nulls], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n_bars", [1, 2, 13, 25, 49, 76, 169, 373, 374, 375, 379, 380, 420])
def test_newest_row_equals_compute_features_last_row_for_each_window_length(n_bars: int) -> None:
    coins = [random_walk(n_bars, seed, flat_share=0.05) for seed in range(6)]
    fast = newest_bar_features(np.stack(coins, axis=1))
    assert fast.shape == (6, len(FEATURE_COLUMNS))
    for i, bars in enumerate(coins):
        assert_same_features(fast[i], reference_last_row(bars))


def test_a_full_window_has_every_feature_and_a_short_one_only_the_warm_ones() -> None:
    full = newest_bar_features(random_walk(FULL_BARS, 1)[:, None, :])
    short = newest_bar_features(random_walk(30, 1)[:, None, :])
    assert np.isfinite(full).all()
    assert np.isnan(short).any() and np.isfinite(short).any()


def _real_windows(folder: Path, coin: str, n_windows: int, seed: int) -> list[FloatArray]:
    frame = pl.read_parquet(folder / f"{coin}_USDT-1h.parquet")
    values = frame.select(BAR_FIELDS).to_numpy().T.astype(np.float64)
    ends = np.random.default_rng(seed).integers(FULL_BARS, values.shape[1], n_windows)
    return [np.ascontiguousarray(values[:, end - FULL_BARS : end]) for end in ends]


def test_newest_row_equals_compute_features_on_real_binance_candles() -> None:
    folder = require_real_data()
    windows = [w for i, c in enumerate(REAL_COINS) for w in _real_windows(folder, c, 4, i)]
    fast = newest_bar_features(np.stack(windows, axis=1))
    for i, bars in enumerate(windows):
        assert_same_features(fast[i], reference_last_row(bars))


@settings(max_examples=40, deadline=None)
@given(
    n_bars=st.integers(min_value=1, max_value=FULL_BARS + 20),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    flat_share=st.sampled_from([0.0, 0.2, 1.0]),
)
def test_newest_row_equals_compute_features_on_any_random_walk(
    n_bars: int, seed: int, flat_share: float
) -> None:
    bars = random_walk(n_bars, seed, flat_share=flat_share)
    assert_same_features(newest_bar_features(bars[:, None, :])[0], reference_last_row(bars))


def test_a_flat_run_after_moves_gives_exactly_zero_volatility() -> None:
    bars = random_walk(FULL_BARS, 11)
    bars[:, -30:] = bars[3, -31]  # 30 bars at the previous close, no range, some volume
    bars[4, -30:] = 5.0
    row = newest_bar_features(bars[:, None, :])[0]
    for name in ("realized_vol_12", "realized_vol_24", "log_ret_24", "hl_range_log"):
        assert row[FEATURE_COLUMNS.index(name)] == 0.0, name
    assert row[FEATURE_COLUMNS.index("close_z_24")] == 0.0  # 0 / 0 std: the neutral value


def test_a_coins_row_does_not_depend_on_the_other_coins_of_its_batch() -> None:
    coins = [random_walk(FULL_BARS, seed) for seed in range(40)]
    batch = newest_bar_features(np.stack(coins, axis=1))
    alone = np.vstack([newest_bar_features(c[:, None, :]) for c in coins[:5]])
    np.testing.assert_array_equal(batch[:5], alone)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        (3, np.nan, DataValidationError),
        (1, 0.0, DataValidationError),
        (2, -1.0, DataValidationError),
        (4, -5.0, DataValidationError),
        (4, np.inf, DataValidationError),
    ],
)
def test_bad_bars_are_refused_naming_the_value(field: int, value: float, error: type) -> None:
    bars = random_walk(50, 3)[:, None, :].copy()
    bars[field, 0, 17] = value
    with pytest.raises(error, match=BAR_FIELDS[field] if field < 4 else "volume"):
        newest_bar_features(bars)


@pytest.mark.parametrize("shape", [(4, 2, 10), (5, 2, 0), (5, 10)])
def test_arrays_of_the_wrong_shape_are_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="n_bars"):
        newest_bar_features(np.ones(shape))
