"""The training LABEL: the forward log return, defined in time. Non-causal by design; never a
feature.

``forward_return_bps(bars, h, bar_ms=B)[t] = 1e4 * ln(close[t'] / close[t])`` where ``t'`` is the
bar whose open time is exactly ``open_time[t] + h * B``: it looks ``h`` bars *of time* into the
future, which is exactly what a label must do and what a feature must never do. When that bar is
missing (an exchange outage, a weekend on a market that closes) the label is null: a label whose
horizon crosses a gap is dropped, never stretched to the next bar that exists, so it always ends
exactly ``h * B`` after its bar, the span the walk-forward purge is sized on. On gapless bars it
equals ``close.shift(-h)`` bit for bit.

:func:`label_end_ms` gives, per bar, the open time of the bar whose close the label uses (or
:data:`NO_LABEL_END_MS` when there is no label); the leakage checks
(``trading_core.validation``) verify the purge against these real ends, not an assumption.
Walk-forward validation purges/embargoes around the label; nothing in
``trading_core.features.core`` imports this module.
"""

from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from trading_core.errors import DataValidationError
from trading_core.market.schema import TIMESTAMP

NO_LABEL_END_MS: Final[int] = int(np.iinfo(np.int64).min)
"""The label end of a bar that has no label (it sorts before every real time)."""

_MS = "_label_open_ms"
_LOG_CLOSE = "_label_log_close"
_END_LOG_CLOSE = "_label_end_log_close"
_ROW = "_label_row"


def forward_return_bps(
    bars: pl.DataFrame, horizon_bars: int, *, bar_ms: int, by: str | None = None
) -> pl.Series:
    """Log return in bps from the close of each bar to the close of the bar opening exactly
    ``horizon_bars * bar_ms`` later (of the same ``by`` group); null where that bar is missing.

    ``bars`` needs ``close`` and ``timestamp`` (open time: datetime or integer epoch ms) columns
    with unique open times per group.
    """
    _check_horizon(horizon_bars, bar_ms)
    needed = ["close", TIMESTAMP, *([by] if by is not None else [])]
    missing = [c for c in needed if c not in bars.columns]
    if missing:
        raise DataValidationError(
            f"bars lack the columns {missing}; forward_return_bps needs {needed}"
        )
    keys = [by] if by is not None else []
    open_ms = pl.col(TIMESTAMP)
    if bars.schema[TIMESTAMP].is_temporal():
        open_ms = open_ms.dt.epoch("ms")
    rows = bars.select(
        *[pl.col(k) for k in keys],
        open_ms.cast(pl.Int64).alias(_MS),
        pl.col("close").cast(pl.Float64).log().alias(_LOG_CLOSE),
    ).with_row_index(_ROW)
    # each bar is the label end of the bar opening horizon earlier: key it by that open time
    ends = rows.select(
        *[pl.col(k) for k in keys],
        (pl.col(_MS) - horizon_bars * bar_ms).alias(_MS),
        pl.col(_LOG_CLOSE).alias(_END_LOG_CLOSE),
    )
    joined = rows.join(ends, on=[*keys, _MS], how="left").sort(_ROW)
    if joined.height != bars.height:
        raise DataValidationError(
            f"bars hold repeated open times{' per ' + repr(by) if by else ''} "
            f"({joined.height - bars.height} extra matches); each bar needs a unique open time"
        )
    label = (pl.col(_END_LOG_CLOSE) - pl.col(_LOG_CLOSE)) * 10_000.0
    return joined.select(label.alias(f"forward_return_{horizon_bars}_bps")).to_series()


def label_end_ms(
    timestamps_ms: npt.ArrayLike, horizon_bars: int, bar_ms: int
) -> npt.NDArray[np.int64]:
    """Per bar of sorted open times ``timestamps_ms``: the open time of the bar whose close its
    label (:func:`forward_return_bps`) uses, or :data:`NO_LABEL_END_MS` where that bar is
    missing."""
    _check_horizon(horizon_bars, bar_ms)
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    if ts.ndim != 1 or (ts.size > 1 and np.any(np.diff(ts) <= 0)):
        raise ValueError(
            f"timestamps_ms (shape {ts.shape}) must be a strictly increasing 1-D array of open "
            "times"
        )
    target = ts + horizon_bars * bar_ms
    pos = np.minimum(np.searchsorted(ts, target), max(ts.size - 1, 0))
    found = ts[pos] == target if ts.size else np.zeros(0, dtype=np.bool_)
    ends: npt.NDArray[np.int64] = np.where(found, target, NO_LABEL_END_MS).astype(np.int64)
    return ends


def _check_horizon(horizon_bars: int, bar_ms: int) -> None:
    if isinstance(horizon_bars, bool) or not isinstance(horizon_bars, int) or horizon_bars < 1:
        raise ValueError(f"horizon_bars {horizon_bars!r} must be an integer >= 1")
    if isinstance(bar_ms, bool) or not isinstance(bar_ms, int) or bar_ms < 1:
        raise ValueError(f"bar_ms {bar_ms!r} must be a positive integer (milliseconds per bar)")
