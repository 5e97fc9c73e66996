"""The regime kernels reproduce their polars/numpy definitions bit for bit: each kernel against
polars (rolling sum, rolling quantile, the trailing inputs) or the old numpy hysteresis on seeded
random series, plus known-answer tables; ``detect_regimes`` and ``raw_regimes`` against the
frozen pre-kernel implementation (tests/unit/regime_reference.py) on the synthetic market, odd
settings and dirty bars. Kernel bodies run compiled, so coverage comes from here."""

import math
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.features_fixtures import random_walk_bars
from tests.unit.regime_reference import (
    input_expressions,
    reference_detect,
    reference_hysteresis,
    reference_raw,
)
from trading_core.config.models import RegimeDetectionSection, SyntheticMarketSection
from trading_core.market.synthetic import SyntheticMarket
from trading_core.regime import apply_hysteresis, detect_regimes, kernels, raw_regimes
from trading_core.regime.inputs import N_INPUTS, RAW_INPUTS
from trading_core.regime.rolling_quantile import rolling_linear_quantile, sort_order

FloatArray = npt.NDArray[np.float64]
NAN, INF = math.nan, math.inf
DETECTION = RegimeDetectionSection()
SETTINGS = settings(max_examples=150, deadline=None)
SPECIAL = st.sampled_from([0.0, -0.0, 1.0, 2.5, 1e-300, 1e300, NAN, INF, -INF, -1.0])
VALUE = st.one_of(st.floats(-1e6, 1e6), SPECIAL)


def same_floats(got: FloatArray, expected: FloatArray) -> bool:
    """Equal values, NaN where NaN, zeros of the same sign."""
    nan = np.isnan(expected)
    return bool(
        np.array_equal(np.isnan(got), nan)
        and np.array_equal(got[~nan], expected[~nan])
        and np.array_equal(np.signbit(got[~nan]), np.signbit(expected[~nan]))
    )


def polars_series(values: list[float], valid: list[bool]) -> pl.Series:
    cells = [v if ok else None for v, ok in zip(values, valid, strict=True)]
    return pl.Series("x", cells, dtype=pl.Float64)


def run_sum(values: list[float], valid: list[bool], window: int) -> tuple[FloatArray, list[bool]]:
    out, out_valid = np.empty(len(values)), np.empty(len(values), dtype=bool)
    kernels.rolling_sum(np.array(values), np.array(valid), window, out, out_valid)
    return out, out_valid.tolist()


def run_quantile(
    values: list[float], valid: list[bool], q: float, window: int
) -> tuple[FloatArray, list[bool]]:
    n = len(values)
    out, out_valid = np.empty(n), np.empty(n, dtype=bool)
    starts = np.array([0, n], dtype=np.int64)
    rolling_linear_quantile(
        np.array(values, dtype=np.float64), np.array(valid), starts, q, window, out, out_valid
    )
    return out, out_valid.tolist()


@pytest.mark.parametrize(
    ("values", "valid", "window", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], "1111", 2, [None, 3.0, 5.0, 7.0]),
        ([1.0, INF, 2.0, 3.0], "1111", 2, [None, INF, INF, 5.0]),
        ([INF, -INF, 1.0], "111", 2, [None, NAN, -INF]),
        ([1.0, 9.0, 3.0, 4.0], "1011", 2, [None, None, None, 7.0]),
        ([5.0, -0.0, NAN], "111", 1, [5.0, 0.0, NAN]),  # a sum starts at +0.0
        ([0.1, 0.2, 0.3], "111", 3, [None, None, 0.6]),  # compensated: not 0.6000000000000001
    ],
)
def test_rolling_sum_known_windows_match_table(
    values: list[float], valid: str, window: int, expected: list[float | None]
) -> None:
    out, out_valid = run_sum(values, [c == "1" for c in valid], window)
    assert out_valid == [e is not None for e in expected]
    known = np.array([e for e in expected if e is not None])
    assert same_floats(out[np.array(out_valid)], known)


@SETTINGS
@given(
    st.lists(st.tuples(VALUE, st.booleans() | st.just(True)), min_size=1, max_size=120),
    st.integers(1, 30),
)
def test_rolling_sum_random_series_equal_polars_bit_for_bit(
    rows: list[tuple[float, bool]], window: int
) -> None:
    values, valid = [v for v, _ in rows], [ok for _, ok in rows]
    out, out_valid = run_sum(values, valid, window)
    expected = polars_series(values, valid).rolling_sum(window, min_samples=window)
    assert out_valid == expected.is_not_null().to_list()
    assert same_floats(out[np.array(out_valid)], expected.drop_nulls().to_numpy())


@pytest.mark.parametrize(
    ("values", "q", "window", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 0.5, 4, 2.5),
        ([4.0, 3.0, 1.0, 2.0], 0.9, 4, 3.0 + 0.7 * (4.0 - 3.0)),
        ([4.0, 3.0, 1.0, 2.0], 0.0, 4, 1.0),
        ([4.0, 3.0, 1.0, 2.0], 1.0, 4, 4.0),
        ([2.0, 2.0, 5.0, 2.0], 0.5, 4, 2.0),
        ([1.0, NAN, 3.0], 1.0, 3, NAN),  # NaN sorts above every number
        ([1.0, NAN, 3.0], 0.5, 3, 3.0),
        ([1.0, NAN, 3.0], 0.25, 3, 2.0),
        ([INF, 1.0, INF], 0.75, 3, NAN),  # inf + 0.5 * (inf - inf)
        ([INF, 1.0, INF], 0.25, 3, INF),
        ([7.0, 8.0, 9.0, 1.0, 2.0], 0.5, 2, 1.5),
    ],
)
def test_rolling_quantile_known_windows_match_table(
    values: list[float], q: float, window: int, expected: float
) -> None:
    out, out_valid = run_quantile(values, [True] * len(values), q, window)
    assert out_valid == [t >= window - 1 for t in range(len(values))]
    assert same_floats(out[-1:], np.array([expected]))


@SETTINGS
@given(
    st.lists(st.tuples(VALUE, st.booleans() | st.just(True)), min_size=1, max_size=150),
    st.floats(0.0, 1.0) | st.sampled_from([0.0, 0.05, 0.5, 0.95, 1.0]),
    st.integers(1, 40),
)
def test_rolling_quantile_random_series_equal_polars(
    rows: list[tuple[float, bool]], q: float, window: int
) -> None:
    values, valid = [v for v, _ in rows], [ok for _, ok in rows]
    out, out_valid = run_quantile(values, valid, q, window)
    series = polars_series(values, valid)
    expected = series.rolling_quantile(q, "linear", window, min_samples=window)
    assert out_valid == expected.is_not_null().to_list()
    # zeros: which of 0.0 / -0.0 a tie selects is arbitrary (they compare equal everywhere)
    got, want = out[np.array(out_valid)], expected.drop_nulls().to_numpy()
    assert np.array_equal(got, want, equal_nan=True)


@pytest.mark.parametrize(
    ("q", "window", "null_rows"),
    [
        (0.9, 720, (0, 1, 23)),  # leading nulls, as a rolling volatility has
        (0.1, 50, (0, 400, 401, 999)),  # nulls mid-series too
        (0.5, 1, (7,)),
        (0.0, 33, ()),
        (1.0, 200, tuple(range(30))),
    ],
)
def test_long_series_with_nulls_quantile_equals_polars_and_numpy(
    q: float, window: int, null_rows: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(window)
    values = np.cumsum(rng.normal(size=2000)) ** 2
    valid = np.ones(values.size, dtype=bool)
    valid[list(null_rows)] = False
    out, out_valid = run_quantile(values.tolist(), valid.tolist(), q, window)
    expected = polars_series(values.tolist(), valid.tolist()).rolling_quantile(
        q, "linear", window, min_samples=window
    )
    assert out_valid == expected.is_not_null().to_list()
    assert np.array_equal(out[np.array(out_valid)], expected.drop_nulls().to_numpy())
    for t in np.flatnonzero(out_valid)[::97]:  # numpy's lerp rounds differently: to 1e-12
        assert out[t] == pytest.approx(np.quantile(values[t - window + 1 : t + 1], q), rel=1e-12)


@SETTINGS
@given(st.lists(VALUE | st.sampled_from([NAN, -0.0, 0.0]), max_size=300))
def test_random_values_sort_stably_in_total_order(values: list[float]) -> None:
    array = np.array(values, dtype=np.float64)
    order = sort_order(array)
    assert sorted(order.tolist()) == list(range(array.size))
    assert np.array_equal(array[order], np.sort(array), equal_nan=True)
    ranked = array[order]
    for i in range(1, array.size):
        tie = ranked[i] == ranked[i - 1] or (np.isnan(ranked[i]) and np.isnan(ranked[i - 1]))
        assert not tie or order[i] > order[i - 1]


def _dirty_bars(seed: int, n: int, blocks: int) -> pl.DataFrame:
    """Random walks with odd values: nulls, NaN, +-inf, zero and negative prices and volumes,
    flat stretches (ties); several symbols stacked."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    close[rng.integers(0, n, 5)] = rng.choice([NAN, INF, 0.0, -3.0, 1e-300], 5)
    close[n // 3 : n // 3 + 40] = close[n // 3]
    volume = rng.lognormal(3.0, 1.0, n)
    volume[rng.integers(0, n, 5)] = rng.choice([NAN, INF, 0.0, -1.0], 5)
    volume[n // 2 : n // 2 + 30] = 0.0
    frame = pl.DataFrame({"close": close, "volume": volume}).with_columns(
        pl.when(pl.int_range(pl.len()).is_in(rng.integers(0, n, 4).tolist()))
        .then(None)
        .otherwise(pl.col("close"))
        .alias("close"),
        pl.when(pl.int_range(pl.len()).is_in(rng.integers(0, n, 4).tolist()))
        .then(None)
        .otherwise(pl.col("volume"))
        .alias("volume"),
        symbol=pl.Series(np.sort(rng.integers(0, blocks, n)).astype(str)),
    )
    return frame


@pytest.mark.parametrize("seed", range(6))
def test_dirty_bars_inputs_equal_polars_bit_for_bit(seed: int) -> None:
    bars = _dirty_bars(seed, 700, blocks=3)
    windows = (1 + seed % 5, 1 + 7 * seed)
    detection = RegimeDetectionSection(lookback_bars=1 + 9 * seed)
    expected = bars.select(e.over("symbol") for e in input_expressions(detection, *windows)[1:])
    runs = bars.get_column("symbol").rle_id().to_numpy()
    starts = np.r_[0, np.flatnonzero(np.diff(runs)) + 1, bars.height].astype(np.int64)
    dollar = bars.select((pl.col("close") * pl.col("volume")).alias("x")).to_series()
    close = bars.get_column("close")
    values = np.empty((N_INPUTS, bars.height))
    valid = np.empty((N_INPUTS, bars.height), dtype=bool)
    kernels.bar_inputs(
        close.to_numpy(), close.is_not_null().to_numpy(), dollar.to_numpy(),
        dollar.is_not_null().to_numpy(), starts, windows[0], windows[1],
        detection.lookback_bars, values, valid,
    )  # fmt: skip
    for raw_input in RAW_INPUTS:
        row, name = raw_input.row, {"dollar_volume": "dv"}.get(raw_input.name, raw_input.name)
        column = expected.get_column(name)
        assert valid[row].tolist() == column.is_not_null().to_list(), name
        assert same_floats(values[row][valid[row]], column.drop_nulls().to_numpy()), name


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 3) | st.just(7), st.booleans()), min_size=1, max_size=90),
    st.sets(st.integers(1, 89), max_size=3),
    st.integers(0, 3),
    st.tuples(st.integers(1, 5), st.integers(1, 30), st.integers(0, 20)),
    st.booleans(),
)
def test_random_codes_hysteresis_equals_numpy_reference(
    rows: list[tuple[int, bool]],
    cuts: set[int],
    first_position: int,
    bars: tuple[int, int, int],
    stacked: bool,
) -> None:
    """Code 7 is no regime (ignored by the fallback mode); a block's position restarts at 0
    (a new coin), the first block may start past 0 (a trailing window)."""
    raw = np.array([c for c, _ in rows], dtype=np.int8)
    immediate = np.array([j for _, j in rows])
    starts = sorted({0, *(c for c in cuts if c < raw.size)})
    position = np.arange(raw.size) - np.repeat(starts, np.diff([*starts, raw.size]))
    position[: starts[1] if len(starts) > 1 else raw.size] += first_position
    kwargs = {"hysteresis_bars": bars[0], "state_memory_bars": bars[1], "warmup_bars": bars[2]}
    index = position if stacked else None
    got = apply_hysteresis(raw, immediate, bar_index=index, **kwargs)
    want = reference_hysteresis(raw, immediate, bar_index=index, **kwargs)
    assert got.dtype == np.int8
    assert got.tolist() == want.tolist()


def test_empty_codes_hysteresis_gives_empty() -> None:
    empty = np.zeros(0, dtype=np.int8)
    assert apply_hysteresis(empty, np.zeros(0, bool), hysteresis_bars=3).size == 0


def _synthetic_market(n_coins: int) -> pl.DataFrame:
    market = SyntheticMarket(SyntheticMarketSection(n_coins=n_coins, days=365))
    start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    return pl.concat(
        market.fetch_ohlcv(s, "1h", start=start, end=end).with_columns(symbol=pl.lit(s))
        for s in market.list_symbols()
    )


def test_synthetic_market_equals_polars_reference_per_coin_and_long() -> None:
    long = _synthetic_market(5)
    expected = reference_detect(long, DETECTION, by="symbol")
    assert detect_regimes(long, DETECTION, by="symbol").tolist() == expected.tolist()
    offset = 0
    for part in long.partition_by("symbol", maintain_order=True):
        want = expected[offset : offset + part.height]
        assert detect_regimes(part, DETECTION).tolist() == want.tolist()
        offset += part.height
    assert len(set(expected.tolist())) == 4  # every regime occurs: the comparison has teeth


@pytest.mark.parametrize(
    ("fields", "windows", "memory", "min_dv"),
    [
        ({"percentile_window_bars": 30, "lookback_bars": 5}, (3, 2), 4, 0.0),
        ({"panic_vol_percentile": 0.0, "illiquid_volume_percentile": 1.0}, (24, 24), 24, 0.0),
        ({"panic_vol_percentile": 1.0, "illiquid_volume_percentile": 0.0}, (1, 1), 1, 0.0),
        ({"percentile_window_bars": 1, "lookback_bars": 1, "hysteresis_bars": 1}, (1, 1), 1, 0),
        ({"trend_strength_threshold": 0.05, "panic_jump_sigma": 1.0}, (12, 48), 8, 5e4),
    ],
)
def test_odd_settings_equal_polars_reference(
    fields: dict[str, float], windows: tuple[int, int], memory: int, min_dv: float
) -> None:
    detection = RegimeDetectionSection(**fields)  # type: ignore[arg-type]
    bars = pl.concat(
        random_walk_bars(1200, seed=s, vol=0.01).with_columns(symbol=pl.lit(str(s)))
        for s in range(3)
    )
    got = detect_regimes(
        bars, detection, by="symbol", vol_window_bars=windows[0],
        dollar_volume_window_bars=windows[1], state_memory_bars=memory,
        min_dollar_volume_usd_per_bar=min_dv,
    )  # fmt: skip
    want = reference_detect(
        bars, detection, by="symbol", windows=windows, state_memory_bars=memory,
        min_dollar_volume_usd_per_bar=min_dv,
    )  # fmt: skip
    assert got.tolist() == want.tolist()


@pytest.mark.parametrize("seed", range(8))
def test_dirty_bars_equal_polars_reference(seed: int) -> None:
    detection = RegimeDetectionSection(percentile_window_bars=50 + 30 * seed, lookback_bars=20)
    bars = _dirty_bars(seed, 1500, blocks=1 + seed % 3)
    single = bars.filter(pl.col("symbol") == bars["symbol"][0])
    assert (
        detect_regimes(single, detection).tolist() == reference_detect(single, detection).tolist()
    )
    got_raw = raw_regimes(bars, detection, by="symbol")
    want_raw = reference_raw(bars, detection, by="symbol")
    assert got_raw[0].tolist() == want_raw[0].tolist()
    assert got_raw[1].tolist() == want_raw[1].tolist()
    got = detect_regimes(bars, detection, by="symbol")
    assert got.tolist() == reference_detect(bars, detection, by="symbol").tolist()


@pytest.mark.parametrize(
    ("close_type", "volume_type"),
    [(pl.Int64, pl.Int64), (pl.Float32, pl.Float32), (pl.Float64, pl.Int32)],
)
def test_other_dtypes_equal_polars_reference(
    close_type: type[pl.DataType], volume_type: type[pl.DataType]
) -> None:
    detection = RegimeDetectionSection(percentile_window_bars=100)
    bars = random_walk_bars(900, seed=4, vol=0.02).with_columns(
        (pl.col("close") * 10).cast(close_type), (pl.col("volume") * 10).cast(volume_type)
    )
    assert detect_regimes(bars, detection).tolist() == reference_detect(bars, detection).tolist()


@pytest.mark.parametrize("by", [None, "symbol"])
def test_empty_frame_gives_no_labels(by: str | None) -> None:
    empty = random_walk_bars(5, seed=0).head(0).with_columns(symbol=pl.lit("A"))
    assert detect_regimes(empty, DETECTION, by=by).size == 0


def test_interleaved_symbols_raise_value_error() -> None:
    bars = random_walk_bars(6, seed=0).with_columns(symbol=pl.Series(list("ABABAB")))
    with pytest.raises(ValueError, match="'symbol' must occupy one contiguous block"):
        detect_regimes(bars, DETECTION, by="symbol")


def test_bars_without_volume_raise_value_error() -> None:
    with pytest.raises(ValueError, match=r"bars lack \['volume'\]"):
        detect_regimes(random_walk_bars(30, seed=0).drop("volume"), DETECTION)


def test_zero_window_raw_regimes_raise_value_error() -> None:
    with pytest.raises(ValueError, match="vol_window_bars 0 must be an integer >= 1"):
        raw_regimes(random_walk_bars(30, seed=0), DETECTION, vol_window_bars=0)
