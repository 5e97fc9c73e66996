"""Bars for the features / engines / regime tests: real candles, seeded random walks, scenarios."""

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_core.features import compute_features
from trading_core.market.schema import OHLCV_SCHEMA

REAL_OHLCV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real" / "ohlcv"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@cache
def _read_real(name: str) -> pl.DataFrame:
    return pl.read_parquet(REAL_OHLCV / f"{name}_USDT-1h.parquet")


def real_bars(name: str = "BTC") -> pl.DataFrame:
    """Real Binance 1h candles (Dec 2020 - Jul 2021); skip if this checkout has none."""
    if not (REAL_OHLCV / f"{name}_USDT-1h.parquet").is_file():
        pytest.skip(f"real market data not found at {REAL_OHLCV}")
    return _read_real(name)


@cache
def _real_features(name: str) -> pl.DataFrame:
    return compute_features(_read_real(name))


def real_features(name: str = "BTC") -> pl.DataFrame:
    real_bars(name)
    return _real_features(name)


def bars_from_close(
    close: np.ndarray,
    *,
    volume: np.ndarray | None = None,
    wick: float = 0.002,
    start: datetime = T0,
) -> pl.DataFrame:
    """Hourly OHLCV with open = previous close and highs/lows ``wick`` beyond the body."""
    close = np.asarray(close, dtype=np.float64)
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1.0 + wick)
    low = np.minimum(open_, close) * (1.0 - wick)
    vol = np.full(close.size, 1_000.0) if volume is None else np.asarray(volume, np.float64)
    stamps = [start + timedelta(hours=i) for i in range(close.size)]
    return pl.DataFrame(
        {
            "timestamp": stamps,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": vol,
        },
    ).cast(OHLCV_SCHEMA)  # type: ignore[arg-type]


def random_walk_bars(n: int, seed: int, *, vol: float = 0.01, drift: float = 0.0) -> pl.DataFrame:
    """Seeded geometric random walk with random wicks and log-normal volume."""
    rng = np.random.default_rng(seed)
    log_close = np.log(100.0) + np.cumsum(drift + vol * rng.standard_normal(n))
    close = np.exp(log_close)
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, vol / 2, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, vol / 2, n)))
    volume = np.exp(rng.normal(7.0, 0.5, n))
    stamps = [T0 + timedelta(hours=i) for i in range(n)]
    return pl.DataFrame(
        {
            "timestamp": stamps,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    ).cast(OHLCV_SCHEMA)  # type: ignore[arg-type]


def noise_then(
    path: np.ndarray, *, n_noise: int = 600, seed: int = 3, vol: float = 0.004
) -> np.ndarray:
    """A quiet random walk of ``n_noise`` bars (past every warm-up) followed by ``path``, where
    ``path`` is relative (multiplicative) to the last noisy close."""
    rng = np.random.default_rng(seed)
    noise = 100.0 * np.exp(np.cumsum(vol * rng.standard_normal(n_noise)))
    return np.r_[noise, noise[-1] * np.asarray(path, dtype=np.float64)]
