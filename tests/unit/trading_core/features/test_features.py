"""Features: warm-up contract, strict causality, window reproduction, multi-coin, the label."""

from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.features_fixtures import random_walk_bars, real_bars, real_features
from trading_core.errors import DataValidationError
from trading_core.features import (
    EMA_WARMUP_BARS,
    FEATURE_COLUMNS,
    FEATURE_WARMUP_BARS,
    compute_features,
    forward_return_bps,
    warmup_bars,
)
from trading_core.features.core import ewm_warmup_bars

# Window reproduction of exponential averages: the weight left outside the window is < 1e-12.
WINDOW_RTOL = 1e-9
WINDOW_ATOL = 1e-9
HOUR_MS = 3_600_000


def _values(frame: pl.DataFrame, row: int) -> np.ndarray:
    return frame.select(FEATURE_COLUMNS).row(row)  # type: ignore[return-value]


def _assert_rows_close(got: tuple[float | None, ...], want: tuple[float | None, ...]) -> None:
    for name, a, b in zip(FEATURE_COLUMNS, got, want, strict=True):
        assert (a is None) == (b is None), f"{name}: {a} vs {b}"
        if a is not None and b is not None:
            assert a == pytest.approx(b, rel=WINDOW_RTOL, abs=WINDOW_ATOL), name


def test_feature_table_matches_output_columns_and_warmup_is_longest() -> None:
    out = compute_features(random_walk_bars(50, seed=1))
    assert tuple(c for c in out.columns if c in FEATURE_COLUMNS) == FEATURE_COLUMNS
    assert not [c for c in out.columns if c.startswith("__")]
    assert warmup_bars() == max(FEATURE_WARMUP_BARS.values())
    assert all(out.schema[c] == pl.Float64 for c in FEATURE_COLUMNS)


@pytest.mark.parametrize(("alpha", "expected"), [(0.5, 40), (1 / 14, 373), (2 / 27, 360)])
def test_ewm_warmup_leaves_less_than_1e_12_weight(alpha: float, expected: int) -> None:
    bars = ewm_warmup_bars(alpha)
    assert bars == expected
    assert (1 - alpha) ** bars < 1e-12 <= (1 - alpha) ** (bars - 1)


@pytest.mark.parametrize("coin", ["BTC", "ETH", "DOGE"])
def test_real_candles_nulls_exactly_in_warmup(coin: str) -> None:
    out = real_features(coin)
    for name, warm in FEATURE_WARMUP_BARS.items():
        column = out.get_column(name)
        assert column.head(warm).null_count() == warm, name
        tail = column.slice(warm)
        assert tail.null_count() == 0, name
        assert tail.is_finite().all(), name


def test_flat_zero_volume_bars_give_no_nan_after_warmup() -> None:
    bars = (
        random_walk_bars(500, seed=5)
        .with_columns(
            pl.when(pl.int_range(pl.len()) > 300).then(100.0).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close")
        )
        .with_columns(
            pl.when(pl.int_range(pl.len()) > 300).then(0.0).otherwise("volume").alias("volume")
        )
    )
    out = compute_features(bars).select(FEATURE_COLUMNS).slice(warmup_bars())
    assert out.null_count().sum_horizontal().item() == 0
    assert all(out[c].is_finite().all() for c in FEATURE_COLUMNS)


@pytest.mark.parametrize("t", [0, 30, 99, 374, 380, 1000, 2500, 5481])
def test_truncating_after_t_leaves_value_at_t_unchanged(t: int) -> None:
    # Same start, so even the exponential averages see the same numbers: exact equality.
    full = real_features("BTC")
    cut = compute_features(real_bars("BTC").head(t + 1))
    assert cut.height == t + 1
    assert _values(cut, t) == _values(full, t)


@pytest.mark.parametrize(("t", "extra"), [(900, 1), (1500, 0), (3000, 40), (5481, 200)])
def test_trailing_window_of_warmup_bars_reproduces_value(t: int, extra: int) -> None:
    length = warmup_bars() + 1 + extra
    full = real_features("ETH")
    window = compute_features(real_bars("ETH").slice(t - length + 1, length))
    _assert_rows_close(_values(window, length - 1), _values(full, t))


def test_future_bars_cannot_change_past_values() -> None:
    bars = random_walk_bars(700, seed=11)
    base = compute_features(bars)
    shocked = bars.with_columns(
        pl.when(pl.int_range(pl.len()) >= 600).then(pl.col(c) * 3.0).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close", "volume")
    )
    after = compute_features(shocked)
    assert base.head(600).equals(after.head(600))
    assert not base.slice(600).equals(after.slice(600))


def test_long_frame_by_symbol_equals_per_coin() -> None:
    a = random_walk_bars(450, seed=1).with_columns(pl.lit("AAA/USDT").alias("symbol"))
    b = random_walk_bars(420, seed=2, vol=0.03).with_columns(pl.lit("BBB/USDT").alias("symbol"))
    long = compute_features(pl.concat([a, b]), by="symbol")
    for part in (a, b):
        symbol = part["symbol"][0]
        got = long.filter(pl.col("symbol") == symbol)
        assert got.equals(compute_features(part))


def test_same_input_gives_identical_output() -> None:
    bars = random_walk_bars(600, seed=9)
    assert compute_features(bars).equals(compute_features(bars))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    vol=st.floats(1e-4, 0.2),
    drift=st.floats(-0.01, 0.01),
)
def test_bounded_features_stay_in_range_on_random_walks(
    seed: int, vol: float, drift: float
) -> None:
    out = compute_features(random_walk_bars(EMA_WARMUP_BARS + 60, seed, vol=vol, drift=drift))
    tail = out.slice(EMA_WARMUP_BARS + 6)
    bounds = {
        "close_location_value": (-1, 1),
        "wick_imbalance": (-1, 1),
        "efficiency_ratio_24": (0, 1),
        "range_pos_48": (0, 1),
        "rsi_14": (0, 100),
        "stoch_k_14": (0, 100),
        "trend_corr_48": (-1, 1),
        "ema_ribbon_score": (-1, 1),
        "money_flow_12": (-1, 1),
        "obv_flow_24": (-1, 1),
        "spread_cs_bps": (0, np.inf),
        "spread_ar_bps": (0, np.inf),
        "realized_vol_24": (0, np.inf),
        "atr_14_pct": (0, np.inf),
    }
    for name, (lo, hi) in bounds.items():
        values = tail[name].to_numpy()
        assert np.all((values >= lo - 1e-12) & (values <= hi + 1e-12)), name


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda b: b.drop("volume"), "lack columns"),
        (lambda b: b.reverse(), "strictly increasing"),
        (lambda b: pl.concat([b.head(3), b.slice(2)]), "strictly increasing"),
        (lambda b: b.with_columns(pl.lit(0.0).alias("low")), "prices must be finite and > 0"),
        (lambda b: b.with_columns(pl.lit(float("nan")).alias("close")), "prices must be finite"),
        (lambda b: b.with_columns(pl.lit(-1.0).alias("volume")), "volume must be finite"),
        (lambda b: b.with_columns(pl.lit("x").alias("open")), "must be numeric"),
    ],
)
def test_bad_bars_raise_data_validation_error(mutation, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataValidationError, match=message):
        compute_features(mutation(random_walk_bars(20, seed=0)))


def test_empty_bars_give_empty_features() -> None:
    out = compute_features(random_walk_bars(5, seed=0).head(0))
    assert out.height == 0 and set(FEATURE_COLUMNS) <= set(out.columns)


@pytest.mark.parametrize(
    ("closes", "horizon", "expected"),
    [
        ([100.0, 110.0, 121.0], 1, [953.10179804, 953.10179804, None]),
        ([100.0, 110.0, 121.0], 2, [1906.20359608, None, None]),
        ([50.0, 50.0, 25.0, 100.0], 1, [0.0, -6931.47180560, 13862.94361120, None]),
    ],
)
def test_forward_return_bps_known_answers(
    closes: list[float], horizon: int, expected: list[float | None]
) -> None:
    hourly = pl.DataFrame({"timestamp": [i * HOUR_MS for i in range(len(closes))], "close": closes})
    got = forward_return_bps(hourly, horizon, bar_ms=HOUR_MS).to_list()
    assert (
        got == pytest.approx(expected, rel=1e-9)
        if None not in expected
        else all(
            (g is None and e is None) or g == pytest.approx(e, rel=1e-9)
            for g, e in zip(got, expected, strict=True)
        )
    )


def test_forward_return_is_per_coin_with_by() -> None:
    frame = pl.DataFrame(
        {
            "symbol": ["A", "A", "B", "B"],
            "timestamp": [0, HOUR_MS, 0, HOUR_MS],
            "close": [1.0, 2.0, 10.0, 5.0],
        }
    )
    got = forward_return_bps(frame, 1, bar_ms=HOUR_MS, by="symbol").to_list()
    assert got[1] is None and got[3] is None
    assert got[0] == pytest.approx(6931.4718056) and got[2] == pytest.approx(-6931.4718056)


@pytest.mark.parametrize("horizon", [0, -3, 1.5])
def test_forward_return_bad_horizon_raises(horizon: object) -> None:
    with pytest.raises(ValueError, match="horizon_bars"):
        forward_return_bps(
            pl.DataFrame({"timestamp": [0], "close": [1.0]}),
            horizon,  # type: ignore[arg-type]
            bar_ms=HOUR_MS,
        )


def test_timestamps_are_not_required_to_be_regular() -> None:
    bars = random_walk_bars(100, seed=4)
    gapped = bars.with_columns(
        pl.when(pl.int_range(pl.len()) > 50)
        .then(pl.col("timestamp") + timedelta(hours=5))
        .otherwise(pl.col("timestamp"))
    )
    assert (
        compute_features(gapped)
        .select(FEATURE_COLUMNS)
        .equals(compute_features(bars).select(FEATURE_COLUMNS))
    )
