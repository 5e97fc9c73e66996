"""The forward-return label defined in time: equal to the row shift on gapless bars, dropped
where its horizon crosses a gap, and its end times as the leakage checks read them."""

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.features_fixtures import random_walk_bars
from trading_core.errors import DataValidationError
from trading_core.features import NO_LABEL_END_MS, forward_return_bps, label_end_ms

HOUR_MS = 3_600_000


def _row_shift_label(bars: pl.DataFrame, horizon: int) -> np.ndarray:
    """The label as it was defined before (rows ahead, not time ahead)."""
    log_close = pl.col("close").cast(pl.Float64).log()
    expr = (log_close.shift(-horizon) - log_close) * 10_000.0
    return bars.select(expr).to_series().to_numpy()


@pytest.mark.parametrize("horizon", [1, 4, 12])
def test_gapless_series_time_label_equals_row_shift_bit_for_bit(horizon: int) -> None:
    bars = random_walk_bars(2_000, seed=11)
    new = forward_return_bps(bars, horizon, bar_ms=HOUR_MS).to_numpy()
    old = _row_shift_label(bars, horizon)
    assert np.array_equal(np.isnan(new), np.isnan(old))
    assert new[np.isfinite(new)].tobytes() == old[np.isfinite(old)].tobytes()
    assert int(np.isnan(new).sum()) == horizon


def test_label_crossing_a_gap_is_null_known_answers() -> None:
    # open times in hours: 0 1 2 [3 4 missing] 5 6
    bars = pl.DataFrame(
        {
            "timestamp": [h * HOUR_MS for h in (0, 1, 2, 5, 6)],
            "close": [100.0, 110.0, 121.0, 50.0, 25.0],
        }
    )
    got = forward_return_bps(bars, 1, bar_ms=HOUR_MS).to_list()
    assert got[0] == pytest.approx(953.10179804, rel=1e-9)
    assert got[1] == pytest.approx(953.10179804, rel=1e-9)
    assert got[2] is None  # the bar at hour 3 is missing: not stretched to hour 5
    assert got[3] == pytest.approx(-6931.4718056, rel=1e-9)
    assert got[4] is None
    ends = label_end_ms(bars["timestamp"].to_numpy(), 1, HOUR_MS)
    assert ends.tolist() == [HOUR_MS, 2 * HOUR_MS, NO_LABEL_END_MS, 6 * HOUR_MS, NO_LABEL_END_MS]


def test_datetime_open_times_give_the_same_label_as_epoch_ms() -> None:
    bars = random_walk_bars(300, seed=5)
    gappy = bars.filter(~pl.int_range(pl.len()).is_in([40, 41, 42, 200]))
    as_ms = gappy.with_columns(pl.col("timestamp").dt.epoch("ms"))
    a = forward_return_bps(gappy, 4, bar_ms=HOUR_MS).to_numpy()
    b = forward_return_bps(as_ms, 4, bar_ms=HOUR_MS).to_numpy()
    assert np.array_equal(a, b, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(10, 400),
    horizon=st.integers(1, 8),
    drop=st.lists(st.integers(0, 399), max_size=40),
    seed=st.integers(0, 2**16),
)
def test_random_gaps_label_ends_exactly_horizon_later_or_is_dropped(
    n: int, horizon: int, drop: list[int], seed: int
) -> None:
    bars = random_walk_bars(n, seed=seed)
    bars = bars.filter(~pl.int_range(pl.len()).is_in([d for d in drop if d < n]))
    ts = bars["timestamp"].dt.epoch("ms").to_numpy().astype(np.int64)
    label = forward_return_bps(bars, horizon, bar_ms=HOUR_MS).to_numpy()
    ends = label_end_ms(ts, horizon, HOUR_MS)
    has_label = ends != NO_LABEL_END_MS
    assert np.array_equal(np.isfinite(label), has_label)
    assert np.all(ends[has_label] == ts[has_label] + horizon * HOUR_MS)
    close = bars["close"].to_numpy()
    rows = np.flatnonzero(has_label)
    end_rows = np.searchsorted(ts, ends[rows])
    want = (np.log(close[end_rows]) - np.log(close[rows])) * 10_000.0
    assert np.allclose(label[rows], want, rtol=1e-12, atol=1e-9)


def test_by_group_labels_use_each_groups_own_times() -> None:
    frame = pl.DataFrame(
        {
            "symbol": ["A", "A", "A", "B", "B"],
            "timestamp": [0, HOUR_MS, 3 * HOUR_MS, 0, HOUR_MS],
            "close": [1.0, 2.0, 4.0, 10.0, 5.0],
        }
    )
    got = forward_return_bps(frame, 1, bar_ms=HOUR_MS, by="symbol").to_list()
    assert got[0] == pytest.approx(6931.4718056)
    assert got[1] is None  # A has no bar at hour 2
    assert got[2] is None
    assert got[3] == pytest.approx(-6931.4718056)
    assert got[4] is None


def test_bars_without_open_times_raise_naming_the_columns() -> None:
    with pytest.raises(DataValidationError, match="timestamp"):
        forward_return_bps(pl.DataFrame({"close": [1.0, 2.0]}), 1, bar_ms=HOUR_MS)


def test_repeated_open_times_raise() -> None:
    bars = pl.DataFrame({"timestamp": [0, HOUR_MS, HOUR_MS], "close": [1.0, 2.0, 3.0]})
    with pytest.raises(DataValidationError, match="repeated open times"):
        forward_return_bps(bars, 1, bar_ms=HOUR_MS)


@pytest.mark.parametrize("bar_ms", [0, -5, True])
def test_bad_bar_length_raises_quoting_it(bar_ms: int) -> None:
    with pytest.raises(ValueError, match=f"bar_ms {bar_ms!r}"):
        label_end_ms(np.arange(3, dtype=np.int64), 1, bar_ms)


def test_unsorted_open_times_for_label_ends_raise() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        label_end_ms(np.array([0, 2, 1], dtype=np.int64), 1, 1)


def test_no_bars_give_no_label_ends() -> None:
    assert label_end_ms(np.zeros(0, dtype=np.int64), 4, HOUR_MS).shape == (0,)
