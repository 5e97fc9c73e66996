"""Shared helpers for the market tests: candle frames, the real data folder, small markets."""

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import structlog

from trading_core.config.models import SyntheticMarketSection
from trading_core.market.synthetic import SyntheticMarket

REPO = Path(__file__).resolve().parents[2]
REAL_DATA = REPO.parent / "shared" / "data" / "real"
REAL_OHLCV = REAL_DATA / "ohlcv"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def fresh_structlog() -> Iterator[None]:
    """structlog back to its defaults around each test: a CLI test run through CliRunner leaves
    it configured to write to the runner's stream, which is closed once the runner is done.
    Import this into a test module to make it apply there."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def require_real_data() -> Path:
    """The real candles folder (shared/data/real beside the repo); skip with the reason if
    this checkout has none."""
    if not REAL_OHLCV.is_dir():
        pytest.skip(f"real market data not found at {REAL_OHLCV}")
    return REAL_OHLCV


@cache
def manifest() -> dict[str, dict[str, str]]:
    """manifest.csv rows keyed by file name (e.g. 'BTC_USDT-1h.parquet')."""
    with (REAL_DATA / "manifest.csv").open(encoding="utf-8") as handle:
        return {Path(row["file"]).name: row for row in csv.DictReader(handle)}


def candles(
    n: int = 6, *, start: datetime = T0, step: timedelta = HOUR, price: float = 100.0
) -> pl.DataFrame:
    """``n`` clean, consistent hourly candles starting at ``start``."""
    rows: list[dict[str, Any]] = []
    for i in range(n):
        o = price + i
        c = o + 0.5
        rows.append(
            {
                "timestamp": start + i * step,
                "open": o,
                "high": c + 1.0,
                "low": o - 1.0,
                "close": c,
                "volume": 10.0 + i,
            }
        )
    return pl.DataFrame(rows).with_columns(pl.col("timestamp").dt.cast_time_unit("ms"))


def with_row(frame: pl.DataFrame, index: int, **values: Any) -> pl.DataFrame:
    """``frame`` with row ``index`` changed."""
    rows = frame.to_dicts()
    rows[index] = {**rows[index], **values}
    return pl.DataFrame(rows, schema=frame.schema)


def small_section(**overrides: Any) -> SyntheticMarketSection:
    """A small synthetic market (fast in tests); same coin i as the default 450-coin market."""
    values: dict[str, Any] = {"n_coins": 60, "days": 120, "seed": 7, "end_date": date(2026, 11, 1)}
    values.update(overrides)
    return SyntheticMarketSection(**values)


@cache
def shared_market(
    mode: str = "structured", n_coins: int = 60, days: int = 120, seed: int = 7
) -> SyntheticMarket:
    """One cached market per parameter set, shared by the tests of a session."""
    return SyntheticMarket(small_section(mode=mode, n_coins=n_coins, days=days, seed=seed))
