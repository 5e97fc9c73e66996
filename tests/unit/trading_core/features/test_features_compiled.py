"""The compiled feature kernel against the polars expressions that define the features."""

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.features_fixtures import REAL_OHLCV, random_walk_bars, real_bars
from trading_core.features import FEATURE_COLUMNS, FEATURE_WARMUP_BARS, compute_features
from trading_core.features.compiled import KERNEL_COLUMNS, feature_matrix
from trading_core.features.compute import compute_features_polars
from trading_core.features.rolling import (
    ewm_mean_adjusted,
    rolling_max,
    rolling_mean,
    rolling_min,
    rolling_sum,
    rolling_var,
    time_correlation,
)

RTOL = ATOL = 1e-9


def _assert_equal_features(bars: pl.DataFrame) -> None:
    fast = compute_features(bars).select(FEATURE_COLUMNS).to_numpy()
    reference = compute_features_polars(bars).select(FEATURE_COLUMNS).to_numpy()
    assert fast.shape == reference.shape
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(reference))
    np.testing.assert_allclose(fast, reference, rtol=RTOL, atol=ATOL, equal_nan=True)


def test_kernel_columns_are_the_feature_columns_in_order() -> None:
    assert KERNEL_COLUMNS == FEATURE_COLUMNS


@pytest.mark.parametrize(
    ("seed", "vol", "drift"), [(1, 0.01, 0.0), (2, 0.03, 0.001), (3, 0.002, -0.0005)]
)
def test_random_walks_equal_polars_definition(seed: int, vol: float, drift: float) -> None:
    _assert_equal_features(random_walk_bars(3_000, seed=seed, vol=vol, drift=drift))


@pytest.mark.parametrize("coin", ["BTC", "ETH", "DOGE", "ADA", "AAVE", "ANKR"])
def test_real_candles_equal_polars_definition(coin: str) -> None:
    _assert_equal_features(real_bars(coin))


@pytest.mark.parametrize("n_bars", [0, 1, 2, 13, 24, 47, 100, 400])
def test_short_histories_equal_polars_definition(n_bars: int) -> None:
    _assert_equal_features(random_walk_bars(400, seed=7).head(n_bars))


def test_unsorted_coin_blocks_equal_per_coin_results() -> None:
    a = random_walk_bars(450, seed=1).with_columns(pl.lit("AAA/USDT").alias("symbol"))
    b = random_walk_bars(420, seed=2, vol=0.03).with_columns(pl.lit("BBB/USDT").alias("symbol"))
    interleaved = pl.concat([a.head(200), b.head(100), a.slice(200), b.slice(100)])
    long = compute_features(interleaved, by="symbol")
    assert long.select("symbol", "timestamp").equals(interleaved.select("symbol", "timestamp"))
    for part in (a, b):
        got = long.filter(pl.col("symbol") == part["symbol"][0])
        assert got.equals(compute_features(part))


def test_flat_stretch_after_moves_gives_exact_neutral_values() -> None:
    # 300 moving bars, then 200 identical ones: running sums must come back to exactly 0 (the
    # kernels count the window's non-zero terms and its run of equal values for this).
    bars = random_walk_bars(500, seed=9).with_columns(
        pl.when(pl.int_range(pl.len()) >= 300).then(123.0).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close")
    )
    tail = compute_features(bars).slice(400)
    for name, neutral in [
        ("realized_vol_12", 0.0),
        ("realized_vol_72", 0.0),
        ("vol_ratio_12_72", 0.0),
        ("close_z_24", 0.0),
        ("trend_corr_48", 0.0),
        ("efficiency_ratio_24", 0.0),
        ("range_pos_48", 0.5),
    ]:
        assert (tail[name] == neutral).all(), name


def test_exchange_halt_in_5m_candles_leaves_no_nan_after_warmup() -> None:
    # Bars 20,717+ of this file repeat one price (an exchange halt): polars' running sum of
    # squared returns ends ~1e-20 below 0 there and its realized_vol_12 is NaN; the kernel's
    # compensated sum with a non-zero count gives exactly 0.
    path = REAL_OHLCV / "BTC_USDT-5m.parquet"
    if not path.is_file():
        pytest.skip(f"real market data not found at {path}")
    out = compute_features(pl.read_parquet(path))
    for name in FEATURE_COLUMNS:
        tail = out[name].slice(FEATURE_WARMUP_BARS[name])
        assert tail.null_count() == 0, name
        assert tail.is_finite().all(), name


@pytest.mark.parametrize(
    ("ohlcv", "starts", "warmup", "message"),
    [
        ((np.ones(3),) * 4, [0, 3], np.zeros(44), "5 one-dimensional arrays"),
        ((np.ones(3),) * 4 + (np.ones(2),), [0, 3], np.zeros(44), "5 one-dimensional arrays"),
        ((np.ones(3),) * 5, [0, 3], np.zeros(3), "warmup must hold 44"),
        ((np.ones(3),) * 5, [0, 2], np.zeros(44), "starts must rise from 0 to 3"),
        ((np.ones(3),) * 5, [0, 2, 1, 3], np.zeros(44), "starts must rise"),
    ],
)
def test_feature_matrix_bad_arguments_raise(
    ohlcv: tuple[np.ndarray, ...], starts: list[int], warmup: np.ndarray, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        feature_matrix(ohlcv, np.array(starts), warmup.astype(np.int64))  # type: ignore[arg-type]


# --- the rolling kernels against polars ----------------------------------------------------

_values = st.lists(
    st.one_of(
        st.floats(-1e3, 1e3, allow_nan=False),
        st.sampled_from([0.0, 1.0, 5.0]),  # repeats: flat windows and zero sums
    ),
    min_size=0,
    max_size=120,
)


def _run(kernel, x: np.ndarray, *args: object) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = np.empty(x.size)
    kernel(x, *args, out)
    return out


def _close(got: np.ndarray, want: pl.Series, scale: float) -> None:
    expected = want.fill_null(np.nan).to_numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * scale, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(values=_values, window=st.integers(1, 30), first=st.integers(0, 3))
def test_rolling_sum_and_mean_equal_polars(values: list[float], window: int, first: int) -> None:
    x = np.array(values, dtype=np.float64)
    series = pl.Series(np.where(np.arange(x.size) < first, np.nan, x)).fill_nan(None)
    scale = float(np.abs(x).sum()) + 1.0
    _close(_run(rolling_sum, x, window, first), series.rolling_sum(window), scale)
    _close(_run(rolling_mean, x, window, first), series.rolling_mean(window), scale)


@settings(max_examples=60, deadline=None)
@given(values=_values, window=st.integers(2, 30), ddof=st.sampled_from([0, 1]))
def test_rolling_var_equals_polars_and_is_zero_on_flat_windows(
    values: list[float], window: int, ddof: int
) -> None:
    x = np.array(values, dtype=np.float64)
    got = _run(rolling_var, x, window, 0, ddof)
    scale = float(np.square(x).max(initial=0.0)) + 1.0
    _close(got, pl.Series(x).rolling_var(window, ddof=ddof), scale)
    for t in range(window - 1, x.size):
        if np.all(x[t - window + 1 : t + 1] == x[t]):
            assert got[t] == 0.0


@settings(max_examples=60, deadline=None)
@given(values=_values, window=st.integers(1, 30), largest=st.booleans())
def test_rolling_extreme_equals_polars(values: list[float], window: int, largest: bool) -> None:
    x = np.array(values, dtype=np.float64)
    series = pl.Series(x)
    want = series.rolling_max(window) if largest else series.rolling_min(window)
    _close(_run(rolling_max if largest else rolling_min, x, window), want, 1.0)


@settings(max_examples=60, deadline=None)
@given(values=_values, alpha=st.floats(0.01, 0.99), first=st.integers(0, 3))
def test_adjusted_ewm_equals_polars(values: list[float], alpha: float, first: int) -> None:
    x = np.array(values, dtype=np.float64)
    series = pl.Series(np.where(np.arange(x.size) < first, np.nan, x)).fill_nan(None)
    want = series.ewm_mean(alpha=alpha, adjust=True)
    _close(_run(ewm_mean_adjusted, x, alpha, first), want, float(np.abs(x).max(initial=1.0)))


@settings(max_examples=60, deadline=None)
@given(values=_values, window=st.integers(3, 30))
def test_time_correlation_equals_direct_pearson(values: list[float], window: int) -> None:
    x = np.array(values, dtype=np.float64)
    got = _run(time_correlation, x, window)
    for t in range(x.size):
        if t < window - 1:
            assert np.isnan(got[t])
            continue
        w = x[t - window + 1 : t + 1]
        if np.all(w == w[0]):
            assert got[t] == 0.0
        elif np.std(w) > 1e-6 * max(1.0, float(np.abs(w).max())):
            expected = np.corrcoef(np.arange(window), w)[0, 1]
            assert got[t] == pytest.approx(expected, abs=1e-9)
