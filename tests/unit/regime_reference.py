"""The regime detector as it was before its numba kernels: polars expressions and numpy, kept
frozen as the oracle the kernels must reproduce bit for bit
(tests/unit/trading_core/regime/test_regime_kernels.py).

The body is the pre-kernel ``trading_core/regime/detector.py`` (raw stage and hysteresis) with
only renames; do not "fix" it: it is the definition of the expected output.
"""

import numpy as np
import numpy.typing as npt
import polars as pl

from trading_core.config.models import RegimeDetectionSection
from trading_core.regime.detector import ILLIQUID, PANIC, RANGE, TREND, raw_warmup_bars

RegimeCodes = npt.NDArray[np.int8]
_PRIORITY = {ILLIQUID: 3, PANIC: 2, TREND: 1, RANGE: 0}


def input_expressions(
    detection: RegimeDetectionSection, vol_window_bars: int, dollar_volume_window_bars: int
) -> list[pl.Expr]:
    """bar_index, abs_return, vol, dv, efficiency: the trailing inputs of a bar."""
    lookback = detection.lookback_bars
    log_close = pl.col("close").cast(pl.Float64).log()
    lr1 = log_close.diff()
    dollar_volume = (pl.col("close") * pl.col("volume")).cast(pl.Float64)
    path = lr1.abs().rolling_sum(lookback, min_samples=lookback)
    return [
        pl.int_range(pl.len(), dtype=pl.Int64).alias("bar_index"),
        lr1.abs().alias("abs_return"),
        lr1.pow(2).rolling_mean(vol_window_bars, min_samples=vol_window_bars).sqrt().alias("vol"),
        dollar_volume.rolling_mean(
            dollar_volume_window_bars, min_samples=dollar_volume_window_bars
        ).alias("dv"),
        ((log_close - log_close.shift(lookback)).abs() / path).fill_nan(0.0).alias("efficiency"),
    ]


def rolling_linear_quantile(x: pl.Expr, q: float, window: int) -> pl.Expr:
    """polars' null-aware rolling quantile, computed on the null-filled column."""
    hole = x.is_null().cast(pl.Int32).rolling_sum(window, min_samples=1) > 0
    filled = x.fill_null(0.0).rolling_quantile(q, "linear", window, min_samples=window)
    return pl.when(hole).then(None).otherwise(filled)


def _flag_expressions(
    detection: RegimeDetectionSection, min_dollar_volume_usd_per_bar: float
) -> list[pl.Expr]:
    window = detection.percentile_window_bars
    vol, dv = pl.col("vol"), pl.col("dv")
    vol_q = rolling_linear_quantile(vol, detection.panic_vol_percentile, window)
    dv_q = rolling_linear_quantile(dv, detection.illiquid_volume_percentile, window)
    return [
        pl.col("bar_index"),
        ((dv <= 0.0) | (dv < dv_q) | (dv < min_dollar_volume_usd_per_bar)).alias("illiquid"),
        (vol > vol_q).alias("high_vol"),
        (pl.col("abs_return") > detection.panic_jump_sigma * vol.shift(1)).alias("jump"),
        (pl.col("efficiency") >= detection.trend_strength_threshold).alias("trend"),
    ]


def reference_raw(
    bars: pl.DataFrame,
    detection: RegimeDetectionSection,
    *,
    by: str | None = None,
    windows: tuple[int, int] = (24, 24),
    min_dollar_volume_usd_per_bar: float = 0.0,
) -> tuple[RegimeCodes, npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Raw codes, immediate confirmations and bar index, the polars way."""
    inputs = input_expressions(detection, *windows)
    flag_exprs = _flag_expressions(detection, min_dollar_volume_usd_per_bar)
    frame = bars.select("close", "volume")
    if by is not None:
        frame = bars.select("close", "volume", by)
        inputs = [e.over(by) for e in inputs]
        flag_exprs = [e.over(by) for e in flag_exprs]
    flags = frame.with_columns(inputs).select(flag_exprs)

    def flag(name: str) -> npt.NDArray[np.bool_]:
        return flags.get_column(name).fill_null(False).to_numpy().astype(bool)

    illiquid, jump = flag("illiquid"), flag("jump")
    raw = np.select(
        [illiquid, flag("high_vol") | jump, flag("trend")], [ILLIQUID, PANIC, TREND], RANGE
    ).astype(np.int8)
    bar_index = flags.get_column("bar_index").to_numpy()
    warming = bar_index < raw_warmup_bars(
        detection, vol_window_bars=windows[0], dollar_volume_window_bars=windows[1]
    )
    raw[warming] = ILLIQUID
    return raw, jump & ~warming & (raw == PANIC), bar_index


def _rolling_mode(raw: RegimeCodes, window: int, first_row: npt.NDArray[np.int64]) -> RegimeCodes:
    codes = np.array(sorted(_PRIORITY, key=_PRIORITY.__getitem__), dtype=np.int8)
    one_hot = (raw[:, None] == codes[None, :]).astype(np.int64)
    cumulative = np.vstack([np.zeros((1, codes.size), np.int64), np.cumsum(one_hot, axis=0)])
    idx = np.arange(raw.size)
    counts = cumulative[idx + 1] - cumulative[np.maximum(idx + 1 - window, first_row)]
    best = np.argmax(counts * codes.size + np.arange(codes.size)[None, :], axis=1)
    mode: RegimeCodes = codes[best]
    return mode


def reference_hysteresis(
    raw: RegimeCodes,
    immediate: npt.NDArray[np.bool_],
    *,
    hysteresis_bars: int,
    state_memory_bars: int = 24,
    warmup_bars: int = 0,
    bar_index: npt.NDArray[np.int64] | None = None,
) -> RegimeCodes:
    """The vectorised numpy hysteresis."""
    n = raw.size
    if n == 0:
        return raw.copy()
    idx = np.arange(n)
    position = idx if bar_index is None else bar_index
    first_row = np.maximum.accumulate(np.where(position == 0, idx, 0))
    starts_run = np.r_[True, raw[1:] != raw[:-1]] | (position == 0)
    run_start = np.maximum.accumulate(np.where(starts_run, idx, 0))
    confirmed = (idx - run_start + 1 >= hysteresis_bars) | immediate | (position < warmup_bars)
    last = np.maximum.accumulate(np.where(confirmed, idx, -1))
    fresh = (last >= first_row) & (idx - last <= state_memory_bars)
    fallback = _rolling_mode(raw, state_memory_bars + 1, first_row)
    return np.where(fresh, raw[np.maximum(last, 0)], fallback).astype(np.int8)


def reference_detect(
    bars: pl.DataFrame,
    detection: RegimeDetectionSection,
    *,
    by: str | None = None,
    windows: tuple[int, int] = (24, 24),
    state_memory_bars: int = 24,
    min_dollar_volume_usd_per_bar: float = 0.0,
) -> RegimeCodes:
    """``detect_regimes`` before the kernels (windows given explicitly)."""
    raw, immediate, bar_index = reference_raw(
        bars,
        detection,
        by=by,
        windows=windows,
        min_dollar_volume_usd_per_bar=min_dollar_volume_usd_per_bar,
    )
    return reference_hysteresis(
        raw,
        immediate,
        hysteresis_bars=detection.hysteresis_bars,
        state_memory_bars=state_memory_bars,
        warmup_bars=raw_warmup_bars(
            detection, vol_window_bars=windows[0], dollar_volume_window_bars=windows[1]
        ),
        bar_index=bar_index,
    )
