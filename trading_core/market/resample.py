"""Resample OHLCV candles to a coarser timeframe (e.g. 1h -> 4h or 1d).

Buckets are aligned to the UTC epoch (so 1d buckets start at 00:00 UTC, 4h at 00/04/08...), and a
bucket is emitted only when it is complete: every one of its fine candles is present. An
incomplete bucket (a gap inside it, the first bucket after a listing, the still-forming last
bucket) would carry a misleading range and volume, so it is dropped rather than guessed.
"""

import polars as pl

from trading_core.errors import DataValidationError
from trading_core.market.schema import OHLCV_COLUMNS, OHLCV_SCHEMA, empty_ohlcv
from trading_core.types import timeframe_ms


def resample_ohlcv(frame: pl.DataFrame, timeframe_from: str, timeframe_to: str) -> pl.DataFrame:
    """Aggregate a sorted, validated ``timeframe_from`` OHLCV frame into complete
    ``timeframe_to`` candles (open=first, high=max, low=min, close=last, volume=sum)."""
    fine_ms = timeframe_ms(timeframe_from)
    coarse_ms = timeframe_ms(timeframe_to)
    if coarse_ms <= fine_ms or coarse_ms % fine_ms:
        raise DataValidationError(
            f"cannot resample {timeframe_from!r} to {timeframe_to!r}: the target must be a "
            f"whole multiple (> 1) of the source timeframe"
        )
    if frame.is_empty():
        return empty_ohlcv()
    per_bucket = coarse_ms // fine_ms
    grouped = (
        frame.select(OHLCV_COLUMNS)
        .sort("timestamp")
        .group_by_dynamic(
            "timestamp",
            every=f"{coarse_ms}ms",
            period=f"{coarse_ms}ms",
            closed="left",
            label="left",
            start_by="window",
        )
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            pl.len().alias("n_bars"),
        )
    )
    complete = grouped.filter(pl.col("n_bars") == per_bucket).drop("n_bars")
    return complete.select(pl.col(c).cast(t) for c, t in OHLCV_SCHEMA.items())
