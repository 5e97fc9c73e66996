"""The feature registry: every declared feature is parity-tested with no edit of this file.

For each :data:`~trading_core.features.registry.FEATURES` entry: the compiled kernel's column
equals its polars definition (1e-9), the newest-bar function equals the polars definition's
last row (1e-9, null on the same bars), and both are null on exactly the declared warm-up.
"""

from functools import cache

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest

from tests.unit.features_fixtures import REAL_OHLCV, random_walk_bars
from trading_core.features import compute_features, compute_features_polars
from trading_core.features.compiled import feature_matrix
from trading_core.features.lastbar import BAR_FIELDS, newest_bar_features
from trading_core.features.registry import (
    FEATURE_COLUMNS,
    FEATURE_WARMUP_BARS,
    FEATURES,
    KERNEL_COLUMNS,
    Feature,
    Stage,
    warmup_bars,
)

FloatArray = npt.NDArray[np.float64]
RTOL = ATOL = 1e-9
BY_NAME = pytest.mark.parametrize("feature", FEATURES, ids=[f.name for f in FEATURES])
# window lengths for the newest bar: inside and around every warm-up, and a full window
NEWEST_LENGTHS = (1, 2, 13, 16, 25, 49, 73, 76, 169, 374, 379, warmup_bars() + 1, 420)


@cache
def _histories() -> tuple[pl.DataFrame, ...]:
    frames = [
        random_walk_bars(1_500, seed=1),
        random_walk_bars(1_500, seed=2, vol=0.03, drift=0.001),
        random_walk_bars(600, seed=3, vol=0.002, drift=-0.0005),
    ]
    if (REAL_OHLCV / "DOGE_USDT-1h.parquet").is_file():
        frames.append(pl.read_parquet(REAL_OHLCV / "DOGE_USDT-1h.parquet").tail(2_000))
    return tuple(frames)


@cache
def _kernel_and_polars() -> tuple[tuple[pl.DataFrame, pl.DataFrame], ...]:
    return tuple((compute_features(b), compute_features_polars(b)) for b in _histories())


@cache
def _newest_and_polars() -> tuple[FloatArray, FloatArray]:
    """newest_bar_features rows and the polars definition's last rows, window by window."""
    fast, reference = [], []
    for seed, n_bars in enumerate(NEWEST_LENGTHS):
        bars = random_walk_bars(n_bars, seed=100 + seed, vol=0.01 + 0.002 * (seed % 5))
        arrays = bars.select(BAR_FIELDS).to_numpy().T[:, None, :]
        fast.append(newest_bar_features(np.ascontiguousarray(arrays))[0])
        row = compute_features_polars(bars).select(FEATURE_COLUMNS).row(-1)
        reference.append([np.nan if v is None else v for v in row])
    return np.array(fast), np.array(reference, dtype=np.float64)


def _values(frame: pl.DataFrame, name: str) -> FloatArray:
    return frame.get_column(name).fill_null(np.nan).to_numpy().astype(np.float64)


def test_registry_declares_each_name_and_kernel_slot_once() -> None:
    assert len(set(FEATURE_COLUMNS)) == len(FEATURES)
    assert sorted(f.kernel_slot for f in FEATURES) == list(range(len(FEATURES)))
    assert all(KERNEL_COLUMNS[f.kernel_slot] == f.name for f in FEATURES)
    assert dict(FEATURE_WARMUP_BARS) == {f.name: f.warmup_bars for f in FEATURES}
    assert warmup_bars() == max(f.warmup_bars for f in FEATURES)


def test_kernel_matrix_has_one_column_per_registry_slot() -> None:
    bars = random_walk_bars(30, seed=4).select(BAR_FIELDS).to_numpy().T
    ohlcv = tuple(np.ascontiguousarray(x) for x in bars)
    warm = np.zeros(len(FEATURES), dtype=np.int64)
    matrix = feature_matrix(ohlcv, np.array([0, 30]), warm)  # type: ignore[arg-type]
    assert matrix.shape == (30, len(KERNEL_COLUMNS))


@BY_NAME
def test_kernel_column_equals_polars_definition(feature: Feature) -> None:
    for fast, reference in _kernel_and_polars():
        got, want = _values(fast, feature.name), _values(reference, feature.name)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=feature.name)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True)


@BY_NAME
def test_newest_bar_equals_polars_definition_last_row(feature: Feature) -> None:
    fast, reference = _newest_and_polars()
    j = FEATURE_COLUMNS.index(feature.name)
    got, want = fast[:, j], reference[:, j]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=feature.name)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True)


@BY_NAME
def test_nulls_fall_exactly_in_the_declared_warmup(feature: Feature) -> None:
    for fast, reference in _kernel_and_polars():
        for frame in (fast, reference):
            column = frame.get_column(feature.name)
            assert column.head(feature.warmup_bars).null_count() == feature.warmup_bars
            tail = column.slice(feature.warmup_bars)
            assert tail.null_count() == 0 and tail.is_finite().all(), feature.name
    fast_rows, _ = _newest_and_polars()
    j = FEATURE_COLUMNS.index(feature.name)
    warm = np.array([n - 1 >= feature.warmup_bars for n in NEWEST_LENGTHS])
    np.testing.assert_array_equal(np.isfinite(fast_rows[:, j]), warm, err_msg=feature.name)


@BY_NAME
def test_polars_definition_is_one_expression_of_its_stage(feature: Feature) -> None:
    assert isinstance(feature.stage, Stage)
    assert isinstance(feature.polars(), pl.Expr)
