"""Run all 23 engines, and align outside series (BTC close, funding) to a coin's bars."""

import numpy as np
import numpy.typing as npt
import polars as pl

from trading_core.engines.base import (
    EngineContext,
    EngineMatrix,
    FloatArray,
    feature_arrays,
    guard_into,
)
from trading_core.engines.learned import ML_WARMUP_BARS, ml_brain_signal, ml_input_frame
from trading_core.engines.registry import ENGINE_NAMES
from trading_core.engines.rules import RULE_INPUT_COLUMNS, SIGNAL_COLUMNS, rule_signal_arrays
from trading_core.market.blocks import is_contiguous
from trading_core.market.schema import TIMESTAMP


def _check_context(bars: pl.DataFrame, ctx: EngineContext) -> None:
    for what, values in (("btc_close", ctx.btc_close), ("funding_rate", ctx.funding_rate)):
        if values is not None and values.shape != (bars.height,):
            raise ValueError(
                f"EngineContext.{what} has shape {values.shape}; bars have {bars.height} rows "
                "(build it with align_series(bars, other, column))"
            )


def _bar_index(bars: pl.DataFrame, by: str | None) -> npt.NDArray[np.int64]:
    if by is None:
        return np.arange(bars.height, dtype=np.int64)
    if by not in bars.columns:
        raise ValueError(f"bars have no {by!r} column to group coins by: {bars.columns[:8]}")
    if not is_contiguous(bars, by):
        raise ValueError(f"each {by!r} must occupy one contiguous block of rows (sort by it)")
    index = bars.select(pl.int_range(pl.len(), dtype=pl.Int64).over(by)).to_series()
    return index.to_numpy()


def run_engines(
    bars_with_features: pl.DataFrame, ctx: EngineContext, *, by: str | None = None
) -> EngineMatrix:
    """The 23 engines in registry order; ml_brain sees the 22 rule signals (or abstains).

    With ``by`` (e.g. "symbol") the frame holds many coins, each a contiguous sorted block, and
    ctx arrays are aligned row by row (as ``align_series`` per coin, concatenated): warm-up is
    counted per coin, and everything is computed in one vectorised pass.
    """
    _check_context(bars_with_features, ctx)
    bar_index = _bar_index(bars_with_features, by)
    features = feature_arrays(bars_with_features, RULE_INPUT_COLUMNS)
    signals, confidences = rule_signal_arrays(features, ctx, bar_index, columns=len(ENGINE_NAMES))
    if ctx.ml_predictor is None:
        signals[:, -1] = 0.0
        confidences[:, -1] = 0.0
    else:
        rule_signals = signals[:, :-1]
        signals_frame = pl.DataFrame({c: rule_signals[:, j] for j, c in enumerate(SIGNAL_COLUMNS)})
        frame = ml_input_frame(bars_with_features, signals_frame)
        raw_signal, raw_confidence = ml_brain_signal(frame, ctx)
        guard_into(
            raw_signal,
            raw_confidence,
            bar_index,
            ML_WARMUP_BARS,
            signals[:, -1],
            confidences[:, -1],
        )
    return EngineMatrix(names=ENGINE_NAMES, signals=signals, confidences=confidences)


def align_series(bars: pl.DataFrame, other: pl.DataFrame, column: str) -> FloatArray:
    """``other[column]`` as of each bar's timestamp: the latest row with timestamp <= the bar's
    (backward as-of join, so causal), NaN before ``other`` starts. Both sorted by timestamp.

    For another coin's candles both timestamps are open times, so the bar's own close is used
    (known at the same moment as the coin's close); for funding the rate stamped at or before
    the bar's open is used.
    """
    for name, frame in (("bars", bars), ("other", other)):
        if TIMESTAMP not in frame.columns:
            raise ValueError(f"{name} lacks a {TIMESTAMP!r} column: {frame.columns}")
    if column not in other.columns:
        raise ValueError(f"other has no column {column!r}; columns: {other.columns}")
    right = other.select(
        pl.col(TIMESTAMP).cast(bars.schema[TIMESTAMP]), pl.col(column).cast(pl.Float64)
    )
    if not right.get_column(TIMESTAMP).is_sorted():
        raise ValueError("other must be sorted by timestamp")
    joined = bars.select(TIMESTAMP).join_asof(right, on=TIMESTAMP, strategy="backward")
    values = joined.get_column(column).to_numpy().astype(np.float64, copy=False)
    return np.where(np.isnan(values), np.nan, values)
