"""``compute_features``: validate OHLCV bars, then append every feature column.

The values come from the compiled kernel (:mod:`trading_core.features.compiled`), its columns
named and ordered by the registry (:mod:`trading_core.features.registry`);
:func:`compute_features_polars` evaluates the polars expressions that define them
(:mod:`trading_core.features.core`) and is the reference the kernel is tested against.
"""

import numpy as np
import numpy.typing as npt
import polars as pl

from trading_core.errors import DataValidationError
from trading_core.features.compiled import feature_matrix
from trading_core.features.core import apply_feature_stages
from trading_core.features.registry import (
    FEATURE_COLUMNS,
    FEATURE_WARMUP_BARS,
    FEATURES,
    KERNEL_COLUMNS,
)
from trading_core.market.blocks import block_starts, is_contiguous
from trading_core.market.schema import OHLCV_COLUMNS, PRICE_COLUMNS, TIMESTAMP

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
OhlcvArrays = tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]


def _check_numeric(bars: pl.DataFrame) -> None:
    not_numeric = [c for c in (*PRICE_COLUMNS, "volume") if not bars.schema[c].is_numeric()]
    if not_numeric:
        raise DataValidationError(f"columns {not_numeric} must be numeric (float64)")


def validate_bars(bars: pl.DataFrame, *, by: str | None = None) -> None:
    """Raise DataValidationError unless ``bars`` has the OHLCV columns, numeric values, positive
    finite prices, non-negative volume and strictly increasing timestamps (per ``by`` group)."""
    needed = (*OHLCV_COLUMNS, by) if by is not None else OHLCV_COLUMNS
    missing = [c for c in needed if c not in bars.columns]
    if missing:
        raise DataValidationError(
            f"bars lack columns {missing}; required: {list(needed)}, got {bars.columns}"
        )
    _check_numeric(bars)
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
    ``by="symbol"`` (each coin sorted; features never cross coins). Raises DataValidationError
    on bars :func:`validate_bars` rejects.
    """
    if by is not None and by in bars.columns and not is_contiguous(bars, by):
        # the kernel wants each coin in one block: compute in coin order, then restore rows
        ordered = bars.with_row_index("__row").sort(by, maintain_order=True)
        return compute_features(ordered.drop("__row"), by=by).sort(ordered["__row"])
    ohlcv, starts = _checked_arrays(bars, by)
    matrix = feature_matrix(ohlcv, starts, _KERNEL_WARMUP)
    features = [pl.Series(f.name, matrix[:, f.kernel_slot], nan_to_null=True) for f in FEATURES]
    kept = bars.drop(*(c for c in FEATURE_COLUMNS if c in bars.columns))
    cast = [pl.col(c).cast(pl.Float64) for c in _OHLCV if kept.schema[c] != pl.Float64]
    return (kept.with_columns(cast) if cast else kept).hstack(features)


def _checked_arrays(bars: pl.DataFrame, by: str | None) -> tuple[OhlcvArrays, IntArray]:
    """The OHLCV columns as float64 arrays and the coin blocks' row offsets, after the checks of
    :func:`validate_bars` (run on numpy; on a failure the polars check names the rows)."""
    needed = (*OHLCV_COLUMNS, by) if by is not None else OHLCV_COLUMNS
    if any(c not in bars.columns for c in needed) or any(bars[c].null_count() for c in needed):
        validate_bars(bars, by=by)  # raises with the exact reason, or accepts nulls-free data
    _check_numeric(bars)
    o, h, lo, c, v = (bars.get_column(n).cast(pl.Float64).to_numpy() for n in _OHLCV)
    starts = block_starts(bars, by)
    ts = bars.get_column(TIMESTAMP).to_physical().to_numpy()
    steps = np.diff(ts) > 0
    steps[starts[1:-1] - 1] = True  # a new coin's first bar may start earlier
    prices_ok = all(bool(np.all(np.isfinite(x) & (x > 0.0))) for x in (o, h, lo, c))
    if not (prices_ok and np.all(np.isfinite(v) & (v >= 0.0)) and np.all(steps)):
        validate_bars(bars, by=by)
        raise DataValidationError(f"bars failed validation: {bars.head(3)}")  # pragma: no cover
    return (o, h, lo, c, v), starts


def compute_features_polars(bars: pl.DataFrame, *, by: str | None = None) -> pl.DataFrame:
    """:func:`compute_features` by the polars expressions of :mod:`~trading_core.features.core`
    (the definition; slower: about 90 expressions in five stages)."""
    validate_bars(bars, by=by)
    keep = [*bars.columns, *(c for c in FEATURE_COLUMNS if c not in bars.columns)]
    cast = [pl.col(c).cast(pl.Float64) for c in (*PRICE_COLUMNS, "volume")]
    return apply_feature_stages(bars.with_columns(cast), by).select(keep)


_OHLCV = ("open", "high", "low", "close", "volume")
# the warm-up of each kernel column (the kernel masks it), in kernel-slot order
_KERNEL_WARMUP = np.array([FEATURE_WARMUP_BARS[c] for c in KERNEL_COLUMNS], dtype=np.int64)
