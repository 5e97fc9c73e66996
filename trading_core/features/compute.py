"""``compute_features``: validate OHLCV bars, then append every feature column."""

import polars as pl

from trading_core.errors import DataValidationError
from trading_core.features.core import FEATURE_COLUMNS, apply_feature_stages
from trading_core.market.schema import OHLCV_COLUMNS, PRICE_COLUMNS, TIMESTAMP


def validate_bars(bars: pl.DataFrame, *, by: str | None = None) -> None:
    """Raise DataValidationError unless ``bars`` has the OHLCV columns, numeric values, positive
    finite prices, non-negative volume and strictly increasing timestamps (per ``by`` group)."""
    needed = (*OHLCV_COLUMNS, by) if by is not None else OHLCV_COLUMNS
    missing = [c for c in needed if c not in bars.columns]
    if missing:
        raise DataValidationError(
            f"bars lack columns {missing}; required: {list(needed)}, got {bars.columns}"
        )
    not_numeric = [c for c in (*PRICE_COLUMNS, "volume") if not bars.schema[c].is_numeric()]
    if not_numeric:
        raise DataValidationError(f"columns {not_numeric} must be numeric (float64)")
    if bars.is_empty():
        return
    increasing = pl.col(TIMESTAMP).to_physical().diff().fill_null(1) > 0
    prices_ok = pl.all_horizontal([pl.col(p).is_finite() & (pl.col(p) > 0) for p in PRICE_COLUMNS])
    volume_ok = pl.col("volume").is_finite() & (pl.col("volume") >= 0)
    ok = bars.select(
        (increasing if by is None else increasing.over(by)).alias("ts"),
        prices_ok.alias("px"),
        volume_ok.alias("vol"),
    )
    for column, what in (
        ("ts", "timestamps must be strictly increasing"),
        ("px", "prices must be finite and > 0"),
        ("vol", "volume must be finite and >= 0"),
    ):
        bad = bars.filter(~ok[column])
        if bad.height:
            raise DataValidationError(
                f"{what}; {bad.height} offending row(s), first: {bad.row(0, named=True)}",
                rows=bad.head(5).to_dicts(),
            )


def compute_features(bars: pl.DataFrame, *, by: str | None = None) -> pl.DataFrame:
    """``bars`` plus one float64 column per name in FEATURE_COLUMNS (nulls only in warm-up).

    ``bars`` holds one coin sorted by timestamp, or several coins in one long frame with
    ``by="symbol"`` (each coin sorted; features never cross coins).
    """
    validate_bars(bars, by=by)
    keep = [*bars.columns, *(c for c in FEATURE_COLUMNS if c not in bars.columns)]
    cast = [pl.col(c).cast(pl.Float64) for c in (*PRICE_COLUMNS, "volume")]
    return apply_feature_stages(bars.with_columns(cast), by).select(keep)
