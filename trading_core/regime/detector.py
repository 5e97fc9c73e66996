"""Causal regime detector: TREND / RANGE / PANIC / ILLIQUID per bar, with hysteresis.

Raw label of bar t (every input is a trailing window ending at t), by priority
ILLIQUID > PANIC > TREND > RANGE (the safest reading wins: no trading beats panic trading beats
trend following beats range trading):

* ILLIQUID: the mean dollar volume of the last ``dollar_volume_window_bars`` bars is zero, below
  the trailing ``illiquid_volume_percentile`` quantile of itself over ``percentile_window_bars``,
  or below ``min_dollar_volume_usd_per_bar``.
* PANIC: realised volatility (root mean square log return over ``vol_window_bars``) above its
  trailing ``panic_vol_percentile`` quantile over ``percentile_window_bars``, or a jump: the bar's
  |log return| above ``panic_jump_sigma`` x the previous bar's realised volatility.
* TREND: Kaufman efficiency ratio of log close over ``lookback_bars`` at or above
  ``trend_strength_threshold``.
* RANGE: otherwise.

Hysteresis: a raw label is *confirmed* at bar t when it has held ``hysteresis_bars`` consecutive
bars (a jump confirms PANIC at once: a crash must not wait). The output is the label of the most
recent confirmation. Memory is bounded so a trailing window reproduces the full-history answer:
if nothing was confirmed in the last ``state_memory_bars`` bars (raw labels flapping without
settling), the output is the most frequent raw label of those bars (ties to the higher
priority). So the label at t depends on bars [t - regime_warmup_bars(...), t] only, and a
trailing window of ``regime_warmup_bars(...) + 1`` bars gives the same label at its last bar
(770 bars with the defaults; Hamilton keeps 800).

Bars before the raw warm-up (not enough history for the percentiles) are ILLIQUID: no engine
votes until the detector can tell.

The raw inputs (|log return|, volatility, mean dollar volume, efficiency ratio), their kernel
rows, warm-ups and percentiles are declared once in :mod:`trading_core.regime.inputs`, which
this batch path and the incremental one (:mod:`trading_core.regime.incremental`) both read.

The per-bar work runs in numba (:mod:`trading_core.regime.kernels`, ~5x the polars expressions
it replaced), reproducing polars' rolling arithmetic bit for bit so that no label moves: the
rules above were defined, and are tested, as polars ``rolling_*`` expressions with their null
semantics (a window holding a null is null, a null flag is False).
"""

from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from trading_core.config.models import RegimeDetectionSection
from trading_core.market.blocks import block_starts
from trading_core.regime import inputs, kernels, rolling_quantile
from trading_core.types import REGIME_CODES, Regime

RegimeCodes = npt.NDArray[np.int8]

TREND: Final = REGIME_CODES[Regime.TREND]
RANGE: Final = REGIME_CODES[Regime.RANGE]
PANIC: Final = REGIME_CODES[Regime.PANIC]
ILLIQUID: Final = REGIME_CODES[Regime.ILLIQUID]
# Tie-break rank for the fallback mode: higher wins (ILLIQUID > PANIC > TREND > RANGE).
_PRIORITY: Final = {ILLIQUID: 3, PANIC: 2, TREND: 1, RANGE: 0}
_BY_PRIORITY: Final = np.array(sorted(_PRIORITY, key=_PRIORITY.__getitem__), dtype=np.int8)

VOL_WINDOW_BARS: Final = 24
DOLLAR_VOLUME_WINDOW_BARS: Final = 24
STATE_MEMORY_BARS: Final = 24


def raw_warmup_bars(
    detection: RegimeDetectionSection,
    *,
    vol_window_bars: int = VOL_WINDOW_BARS,
    dollar_volume_window_bars: int = DOLLAR_VOLUME_WINDOW_BARS,
) -> int:
    """First bar index at which every raw input is defined (from the declarations of
    :data:`~trading_core.regime.inputs.RAW_INPUTS`)."""
    return inputs.raw_warmup_bars(
        inputs.RegimeWindows.of(
            detection,
            vol_window_bars=vol_window_bars,
            dollar_volume_window_bars=dollar_volume_window_bars,
        )
    )


def regime_warmup_bars(
    detection: RegimeDetectionSection,
    *,
    vol_window_bars: int = VOL_WINDOW_BARS,
    dollar_volume_window_bars: int = DOLLAR_VOLUME_WINDOW_BARS,
    state_memory_bars: int = STATE_MEMORY_BARS,
) -> int:
    """Bars of history the label at t depends on: a trailing window one bar longer than this
    reproduces the full-history label at its last bar."""
    raw = raw_warmup_bars(
        detection,
        vol_window_bars=vol_window_bars,
        dollar_volume_window_bars=dollar_volume_window_bars,
    )
    return raw + state_memory_bars + detection.hysteresis_bars - 1


def _values(series: pl.Series) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Contiguous float64 values and where they are not null."""
    values = np.ascontiguousarray(series.to_numpy(), dtype=np.float64)
    if series.null_count() == 0:
        return values, np.ones(series.len(), dtype=bool)
    return values, series.is_not_null().to_numpy()


def _close_and_dollar_volume(
    bars: pl.DataFrame,
) -> tuple[
    npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.float64], npt.NDArray[np.bool_]
]:
    close, volume = bars.get_column("close"), bars.get_column("volume")
    if close.dtype == pl.Float64 and volume.dtype == pl.Float64:
        # the usual dtypes: numpy's elementwise product is polars', without a polars pass
        price, price_valid = _values(close)
        size, size_valid = _values(volume)
        return price, price_valid, price * size, price_valid & size_valid
    # polars casts and multiplies other dtypes (integers, float32), as the definition does
    columns = bars.select(
        pl.col("close").cast(pl.Float64),
        (pl.col("close") * pl.col("volume")).cast(pl.Float64).alias("dollar_volume"),
    )
    return (
        *_values(columns.get_column("close")),
        *_values(columns.get_column("dollar_volume")),
    )


def _rolling_quantile(
    values: npt.NDArray[np.float64],
    valid: npt.NDArray[np.bool_],
    starts: npt.NDArray[np.int64],
    q: float,
    window: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    out, out_valid = np.empty(values.size), np.empty(values.size, dtype=bool)
    rolling_quantile.rolling_linear_quantile(values, valid, starts, q, window, out, out_valid)
    return out, out_valid


def _raw_with_index(
    bars: pl.DataFrame,
    detection: RegimeDetectionSection,
    by: str | None,
    windows: tuple[int, int],
    min_dollar_volume_usd_per_bar: float,
) -> tuple[RegimeCodes, npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    starts = block_starts(bars, by)
    close, close_valid, dollar_volume, dollar_valid = _close_and_dollar_volume(bars)
    n = close.size
    values = np.empty((inputs.N_INPUTS, n))
    valid = np.empty((inputs.N_INPUTS, n), dtype=bool)
    kernels.bar_inputs(
        close,
        close_valid,
        dollar_volume,
        dollar_valid,
        starts,
        windows[0],
        windows[1],
        detection.lookback_bars,
        values,
        valid,
    )
    # the rolling percentile of each input the rules compare with one
    quantiles = {
        i.name: _rolling_quantile(
            values[i.row], valid[i.row], starts, i.percentile(detection),
            detection.percentile_window_bars,
        )
        for i in inputs.RAW_INPUTS
        if i.percentile is not None
    }  # fmt: skip
    (vol_q, vol_q_valid), (dv_q, dv_q_valid) = quantiles["vol"], quantiles["dollar_volume"]
    raw, immediate = np.empty(n, dtype=np.int8), np.empty(n, dtype=bool)
    kernels.raw_labels(
        values,
        valid,
        vol_q,
        vol_q_valid,
        dv_q,
        dv_q_valid,
        starts,
        detection.panic_jump_sigma,
        detection.trend_strength_threshold,
        min_dollar_volume_usd_per_bar,
        raw_warmup_bars(
            detection, vol_window_bars=windows[0], dollar_volume_window_bars=windows[1]
        ),
        raw,
        immediate,
    )
    bar_index = np.arange(n, dtype=np.int64) - np.repeat(starts[:-1], np.diff(starts))
    return raw, immediate, bar_index


def raw_regimes(
    bars: pl.DataFrame,
    detection: RegimeDetectionSection,
    *,
    by: str | None = None,
    vol_window_bars: int = VOL_WINDOW_BARS,
    dollar_volume_window_bars: int = DOLLAR_VOLUME_WINDOW_BARS,
    min_dollar_volume_usd_per_bar: float = 0.0,
) -> tuple[RegimeCodes, npt.NDArray[np.bool_]]:
    """Per-bar raw labels (before hysteresis; ILLIQUID in warm-up) and the jumps that confirm
    PANIC at once."""
    _check_positive(
        vol_window_bars=vol_window_bars, dollar_volume_window_bars=dollar_volume_window_bars
    )
    raw, immediate, _ = _raw_with_index(
        bars,
        detection,
        by,
        (vol_window_bars, dollar_volume_window_bars),
        min_dollar_volume_usd_per_bar,
    )
    return raw, immediate


def apply_hysteresis(
    raw: RegimeCodes,
    immediate: npt.NDArray[np.bool_],
    *,
    hysteresis_bars: int,
    state_memory_bars: int = STATE_MEMORY_BARS,
    warmup_bars: int = 0,
    bar_index: npt.NDArray[np.int64] | None = None,
) -> RegimeCodes:
    """Label of the latest confirmation within ``state_memory_bars`` (see module docstring).

    ``bar_index`` (position of each row in its coin's history) lets one call cover many coins
    stacked in contiguous blocks; by default the rows are one coin.
    """
    n = raw.size
    if n == 0:
        return raw.copy()
    position = np.arange(n) if bar_index is None else bar_index
    out = np.empty(n, dtype=np.int8)
    kernels.hysteresis(
        np.ascontiguousarray(raw, dtype=np.int8),
        np.ascontiguousarray(immediate, dtype=bool),
        np.ascontiguousarray(position, dtype=np.int64),
        hysteresis_bars,
        state_memory_bars,
        warmup_bars,
        _BY_PRIORITY,
        out,
    )
    return out


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} {value!r} must be an integer >= 1")


def detect_regimes(
    bars_with_features: pl.DataFrame,
    detection: RegimeDetectionSection,
    *,
    by: str | None = None,
    vol_window_bars: int | None = None,
    dollar_volume_window_bars: int | None = None,
    state_memory_bars: int | None = None,
    min_dollar_volume_usd_per_bar: float | None = None,
) -> RegimeCodes:
    """Regime code per bar (``trading_core.types.REGIME_CODES``) of one coin's sorted bars, or
    of many coins in one long frame with ``by="symbol"`` (each coin a contiguous sorted block).

    Needs the ``close`` and ``volume`` columns (any feature columns are ignored). Window
    arguments left as None come from ``detection``.
    """
    if vol_window_bars is None:
        vol_window_bars = detection.vol_window_bars
    if dollar_volume_window_bars is None:
        dollar_volume_window_bars = detection.dollar_volume_window_bars
    if state_memory_bars is None:
        state_memory_bars = detection.state_memory_bars
    if min_dollar_volume_usd_per_bar is None:
        min_dollar_volume_usd_per_bar = detection.min_dollar_volume_usd_per_bar
    _check_positive(
        vol_window_bars=vol_window_bars,
        dollar_volume_window_bars=dollar_volume_window_bars,
        state_memory_bars=state_memory_bars,
    )
    if not min_dollar_volume_usd_per_bar >= 0.0:
        raise ValueError(
            f"min_dollar_volume_usd_per_bar {min_dollar_volume_usd_per_bar!r} must be >= 0"
        )
    missing = [c for c in ("close", "volume") if c not in bars_with_features.columns]
    if missing:
        raise ValueError(f"bars lack {missing}; detect_regimes needs close and volume")
    raw, immediate, bar_index = _raw_with_index(
        bars_with_features,
        detection,
        by,
        (vol_window_bars, dollar_volume_window_bars),
        min_dollar_volume_usd_per_bar,
    )
    warm = raw_warmup_bars(
        detection,
        vol_window_bars=vol_window_bars,
        dollar_volume_window_bars=dollar_volume_window_bars,
    )
    return apply_hysteresis(
        raw,
        immediate,
        hysteresis_bars=detection.hysteresis_bars,
        state_memory_bars=state_memory_bars,
        warmup_bars=warm,
        bar_index=bar_index,
    )
