"""The OHLCV validator: every kind of bad candle is rejected by row, safe repairs are logged,
gaps on real Binance files match the data manifest."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.market_fixtures import (
    HOUR,
    T0,
    candles,
    fresh_structlog,  # noqa: F401  (autouse)
    manifest,
    require_real_data,
    with_row,
)
from trading_core.errors import DataValidationError
from trading_core.market.schema import OHLCV_SCHEMA
from trading_core.market.validation import (
    MAX_LISTED_ROWS,
    REPAIR_EXACT_DUPLICATE,
    Gap,
    ValidatedBars,
    find_gaps,
    validate_ohlcv,
)

LATER = datetime(2030, 1, 1, tzinfo=UTC)


def _validate(frame: pl.DataFrame, now: datetime = LATER, timeframe: str = "1h") -> ValidatedBars:
    return validate_ohlcv(frame, symbol="TST/USDT", timeframe=timeframe, now=now)


def test_clean_candles_pass_unchanged() -> None:
    frame = candles(6)
    result = _validate(frame)
    assert result.frame.equals(frame.cast(pl.Schema(OHLCV_SCHEMA)))
    assert (result.gaps, result.duplicates_dropped, result.open_candle_dropped) == ((), 0, False)
    assert dict(result.frame.schema) == OHLCV_SCHEMA


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"open": float("nan")}, "NaN value"),
        ({"volume": float("nan")}, "NaN value"),
        ({"close": float("inf")}, "inf"),
        ({"low": 0.0}, "non-positive price"),
        ({"open": -1.0, "low": -2.0}, "non-positive price"),
        ({"volume": -0.1}, "negative volume"),
        ({"high": 102.0}, "high < max(open, close)"),  # close is 102.5
        ({"low": 102.4}, "low > min(open, close)"),  # open is 102
        ({"high": 100.0, "low": 105.0}, "high < low"),
        ({"open": None}, "null value"),
        ({"timestamp": T0 + 2 * HOUR + timedelta(minutes=7)}, "off the timeframe grid"),
    ],
)
def test_bad_candle_rejected_naming_the_row(change: dict[str, object], reason: str) -> None:
    frame = with_row(candles(6), 2, **change)
    with pytest.raises(DataValidationError) as caught:
        _validate(frame)
    err = caught.value
    assert len(err.rows) == 1
    moved = change.get("timestamp")
    row_ts = (moved if isinstance(moved, datetime) else T0 + 2 * HOUR).isoformat()
    assert err.rows[0]["timestamp"] == row_ts
    assert reason in err.rows[0]["reason"]
    assert row_ts in str(err) and reason in str(err)


def test_conflicting_duplicate_rejected_listing_both_rows() -> None:
    frame = pl.concat([candles(4), with_row(candles(4), 1, close=101.7).slice(1, 1)])
    with pytest.raises(DataValidationError, match="conflicting duplicate") as caught:
        _validate(frame)
    assert [r["close"] for r in caught.value.rows] == [101.5, 101.7]
    assert {r["timestamp"] for r in caught.value.rows} == {(T0 + HOUR).isoformat()}


def test_exact_duplicates_dropped_and_logged() -> None:
    frame = pl.concat([candles(5), candles(5).slice(1, 2)])
    with structlog.testing.capture_logs() as logs:
        result = _validate(frame)
    assert result.duplicates_dropped == 2
    assert result.frame.height == 5
    event = next(e for e in logs if e.get("reason") == REPAIR_EXACT_DUPLICATE)
    assert event["event"] == "ohlcv_candles_repaired" and event["count"] == 2


def test_open_last_candle_dropped_and_logged() -> None:
    frame = candles(5)
    now = T0 + 4 * HOUR + timedelta(minutes=30)  # inside the last candle
    with structlog.testing.capture_logs() as logs:
        result = _validate(frame, now=now)
    assert result.open_candle_dropped
    assert result.frame.height == 4
    assert any(e["event"] == "ohlcv_open_candle_dropped" and e["reason"] for e in logs)


def test_closed_last_candle_kept_at_exact_close_time() -> None:
    result = _validate(candles(5), now=T0 + 5 * HOUR)
    assert not result.open_candle_dropped and result.frame.height == 5


def test_candles_from_the_future_rejected() -> None:
    with pytest.raises(DataValidationError, match="from the future"):
        _validate(candles(5), now=T0 + 2 * HOUR + timedelta(minutes=1))


def test_many_bad_rows_listed_up_to_cap_with_total_count() -> None:
    frame = candles(50).with_columns(volume=pl.lit(-1.0))
    with pytest.raises(DataValidationError) as caught:
        _validate(frame)
    assert len(caught.value.rows) == MAX_LISTED_ROWS
    assert "50 rows" in str(caught.value) and f"first {MAX_LISTED_ROWS} shown" in str(caught.value)


def test_unsorted_input_sorted_and_integer_epoch_accepted() -> None:
    frame = candles(5).reverse().with_columns(pl.col("timestamp").dt.epoch("ms"))
    result = _validate(frame)
    assert result.frame["timestamp"].is_sorted()
    assert result.frame.equals(candles(5).cast(pl.Schema(OHLCV_SCHEMA)))


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (candles(3).drop("volume"), "lacks columns"),
        (candles(3).with_columns(pl.col("timestamp").dt.replace_time_zone(None)), "naive"),
        (candles(3).with_columns(pl.col("timestamp").cast(pl.String)), "dtype"),
    ],
)
def test_malformed_frame_rejected(frame: pl.DataFrame, message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        _validate(frame)


def test_gap_reported_never_filled() -> None:
    frame = pl.concat([candles(3), candles(2, start=T0 + 6 * HOUR, price=103.0)])
    result = _validate(frame)
    assert result.frame.height == 5
    assert result.gaps == (Gap(start=T0 + 3 * HOUR, end=T0 + 6 * HOUR, missing_bars=3),)
    assert result.missing_bars == 3


@pytest.mark.parametrize(
    "file_name",
    [
        "AAVE_USDT-1h.parquet",
        "BTCST_USDT-1h.parquet",
        "COCOS_USDT-1h.parquet",
        "AR_USDT-1h.parquet",
        "BTC_USDT-5m.parquet",
        "ADA_BTC-5m.parquet",
        "XRP_ETH-1m.parquet",
    ],
)
def test_gaps_on_real_files_match_manifest(file_name: str) -> None:
    folder = require_real_data()
    row = manifest()[file_name]
    base_quote, timeframe = file_name.removesuffix(".parquet").split("-")
    frame = pl.read_parquet(folder / file_name)
    result = validate_ohlcv(
        frame, symbol=base_quote.replace("_", "/"), timeframe=timeframe, now=LATER
    )
    assert result.frame.height == int(row["rows"])
    assert len(result.gaps) == int(row["gap_count"])
    assert result.missing_bars == int(row["missing_candles"])


@settings(max_examples=40, deadline=None)
@given(
    hours=st.lists(st.integers(0, 200), min_size=1, max_size=40),
    repeat=st.lists(st.integers(0, 39), max_size=10),
)
def test_any_order_and_exact_repeats_give_sorted_unique_grid(
    hours: list[int], repeat: list[int]
) -> None:
    unique_hours = sorted(set(hours))
    base = pl.concat([candles(1, start=T0 + h * HOUR, price=100.0 + h) for h in unique_hours])
    extra = [base.slice(i % base.height, 1) for i in repeat]
    shuffled = pl.concat([base, *extra]).sample(fraction=1.0, shuffle=True, seed=1)
    result = _validate(shuffled)
    assert result.frame.equals(base.cast(pl.Schema(OHLCV_SCHEMA)))
    assert result.duplicates_dropped == len(extra)
    assert result.missing_bars + base.height == unique_hours[-1] - unique_hours[0] + 1
    assert find_gaps(result.frame, "1h") == result.gaps
