"""Resampling 1h candles to 4h and 1d: complete buckets only, UTC-aligned, OHLCV aggregation."""

from datetime import timedelta

import polars as pl
import pytest

from tests.unit.market_fixtures import (
    HOUR,
    T0,
    candles,
    fresh_structlog,  # noqa: F401  (autouse)
    require_real_data,
)
from trading_core.market.resample import resample_ohlcv
from trading_core.market.validation import validate_ohlcv


def test_eight_hours_make_two_known_4h_candles() -> None:
    out = resample_ohlcv(candles(8), "1h", "4h")
    # candles(): open = 100 + i, close = open + 0.5, high = close + 1, low = open - 1,
    # volume = 10 + i
    assert out.to_dicts() == [
        {
            "timestamp": T0,
            "open": 100.0,
            "high": 104.5,
            "low": 99.0,
            "close": 103.5,
            "volume": 46.0,
        },
        {
            "timestamp": T0 + 4 * HOUR,
            "open": 104.0,
            "high": 108.5,
            "low": 103.0,
            "close": 107.5,
            "volume": 62.0,
        },
    ]


def test_incomplete_first_and_last_buckets_dropped() -> None:
    frame = candles(9, start=T0 + HOUR)  # 01:00 .. 09:00: buckets 00-04 and 08-12 are partial
    out = resample_ohlcv(frame, "1h", "4h")
    assert out["timestamp"].to_list() == [T0 + 4 * HOUR]


def test_bucket_with_a_gap_dropped() -> None:
    frame = candles(8).filter(pl.col("timestamp") != T0 + 2 * HOUR)
    out = resample_ohlcv(frame, "1h", "4h")
    assert out["timestamp"].to_list() == [T0 + 4 * HOUR]


@pytest.mark.parametrize(("source", "target"), [("4h", "1h"), ("1h", "1h")])
def test_resample_to_finer_or_same_timeframe_rejected(source: str, target: str) -> None:
    with pytest.raises(ValueError, match="whole multiple"):
        resample_ohlcv(candles(8), source, target)


def test_real_btc_daily_candles_match_calendar_day_aggregation() -> None:
    folder = require_real_data()
    hourly = validate_ohlcv(
        pl.read_parquet(folder / "BTC_USDT-1h.parquet"),
        symbol="BTC/USDT",
        timeframe="1h",
        now=T0,
    ).frame
    daily = resample_ohlcv(hourly, "1h", "1d")
    by_day = (
        hourly.group_by(pl.col("timestamp").dt.truncate("1d"))
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            pl.len().alias("n"),
        )
        .filter(pl.col("n") == 24)
        .drop("n")
        .sort("timestamp")
    )
    assert daily.height == by_day.height > 200
    assert daily.drop("volume").equals(by_day.drop("volume"))
    assert (daily["volume"] - by_day["volume"]).abs().max() < 1e-6  # type: ignore[operator]
    assert (daily["timestamp"].dt.hour() == 0).all()
    assert daily["timestamp"].diff().drop_nulls().min() == timedelta(days=1)
