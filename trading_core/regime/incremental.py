"""The regime of each coin's newest bar from a carried per-coin memory (numpy, no polars).

:func:`~trading_core.regime.detector.detect_regimes` labels a whole frame; a live service needs
the label of one new bar per coin. The label needs the raw labels of the last
``state_memory_bars + hysteresis_bars`` bars (the hysteresis) and each raw label needs the
trailing percentiles of ``percentile_window_bars`` volatility and dollar-volume values:
recomputing them from the window every bar costs ~27 quantiles of 720 values per coin. A
:class:`RegimeMemory` carries them instead: the volatility and dollar volume of the last
``percentile_window_bars`` bars and the raw labels (with their confirmations) of the last
``state_memory_bars + hysteresis_bars`` bars. Each new bar adds one of each
(:func:`advance_regimes`), and the hysteresis runs on the carried raw labels with
:func:`~trading_core.regime.detector.apply_hysteresis` itself.

The inputs are those declared in :mod:`trading_core.regime.inputs` (their newest-bar
functions). Every carried value is a function of a fixed trailing run of bars, computed by the same
reductions whether built from a window (:func:`regime_memory_from_window`) or advanced bar by
bar, so both give bit-identical memories (tests assert it). They equal ``detect_regimes``' on
the trailing ``frame_bars``-bar frame Hamilton's reference path uses (the warm-up counted from
that frame's start, as ``detect_regimes`` counts it) up to floating-point summation order; the
percentile is polars' linear rule ``a + (b - a) * t`` exactly.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trading_core.config.models import RegimeDetectionSection
from trading_core.regime import inputs
from trading_core.regime.detector import (
    ILLIQUID,
    PANIC,
    RANGE,
    TREND,
    apply_hysteresis,
    raw_warmup_bars,
)

FloatArray = npt.NDArray[np.float64]
RegimeCodes = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class RegimeMemory:
    """What the regime of a coin's next bar needs from its past.

    ``bars_seen``: bars of the coin folded in (its window's ``bars_seen`` at the last one);
    ``vol`` and ``dollar_volume``: those inputs of the last ``<= percentile_window_bars`` bars
    (NaN where a bar had too little history); ``raw`` and ``confirmed``: raw codes of the last
    ``<= state_memory_bars + hysteresis_bars`` bars and whether each confirms its label at once
    (a jump into PANIC, or a bar still in the detector's warm-up).
    """

    bars_seen: int
    vol: FloatArray
    dollar_volume: FloatArray
    raw: RegimeCodes
    confirmed: BoolArray

    def __post_init__(self) -> None:
        if self.vol.shape != self.dollar_volume.shape or self.raw.shape != self.confirmed.shape:
            raise ValueError(
                f"vol {self.vol.shape} / dollar_volume {self.dollar_volume.shape} and raw "
                f"{self.raw.shape} / confirmed {self.confirmed.shape} must pair up"
            )
        if self.bars_seen < self.raw.size:
            raise ValueError(f"bars_seen {self.bars_seen} < {self.raw.size} carried labels")


def tail_bars(detection: RegimeDetectionSection) -> int:
    """Closes and volumes :func:`advance_regimes` needs per coin: the newest bar's inputs."""
    return inputs.tail_bars(inputs.RegimeWindows.of(detection))


def _label_memory(detection: RegimeDetectionSection) -> int:
    return detection.state_memory_bars + detection.hysteresis_bars


def _raw_warmup(detection: RegimeDetectionSection) -> int:
    return raw_warmup_bars(
        detection,
        vol_window_bars=detection.vol_window_bars,
        dollar_volume_window_bars=detection.dollar_volume_window_bars,
    )


def _bar_inputs(
    close: FloatArray, volume: FloatArray, detection: RegimeDetectionSection
) -> dict[str, FloatArray]:
    """Each raw input (:data:`~trading_core.regime.inputs.RAW_INPUTS`) of the bar at the end of
    each trailing window (last axis; NaN where a window lacks bars)."""
    return inputs.newest_inputs(close, volume, inputs.RegimeWindows.of(detection))


def linear_quantile(values: FloatArray, q: float) -> FloatArray:
    """polars' ``rolling_quantile(q, "linear")`` of each row of the last axis."""
    index = (values.shape[-1] - 1) * q
    lo, hi = int(np.floor(index)), int(np.ceil(index))
    # One selection, then the neighbour order statistic from the short side of it (exact).
    if index - lo >= 0.5:
        part = np.partition(values, hi, axis=-1)
        a, b = part[..., :hi].max(axis=-1), part[..., hi]
    else:
        part = np.partition(values, lo, axis=-1)
        a = part[..., lo]
        b = part[..., lo + 1 :].min(axis=-1) if hi > lo else a
    result: FloatArray = a + (b - a) * (index - lo)
    return result


def _raw_codes(
    values: Mapping[str, FloatArray],
    vol_prev: FloatArray,
    vol_history: FloatArray,
    dv_history: FloatArray,
    warming: BoolArray,
    detection: RegimeDetectionSection,
) -> tuple[RegimeCodes, BoolArray]:
    """Raw codes and confirmations (the detector's priority rule) of bars whose histories end
    at them; ``warming`` bars are ILLIQUID and confirmed."""
    abs_return, vol = values["abs_return"], values["vol"]
    dollar_volume, efficiency = values["dollar_volume"], values["efficiency"]
    raw = np.full(vol.shape, ILLIQUID, dtype=np.int8)
    confirmed = np.ones(vol.shape, dtype=bool)
    if warming.all():
        return raw, confirmed
    warm = ~warming
    vol_q = linear_quantile(vol_history[warm], detection.panic_vol_percentile)
    dv_q = linear_quantile(dv_history[warm], detection.illiquid_volume_percentile)
    dv = dollar_volume[warm]
    illiquid = (dv <= 0.0) | (dv < dv_q) | (dv < detection.min_dollar_volume_usd_per_bar)
    jump = abs_return[warm] > detection.panic_jump_sigma * vol_prev[warm]
    panic = (vol[warm] > vol_q) | jump
    trend = efficiency[warm] >= detection.trend_strength_threshold
    codes = np.select([illiquid, panic, trend], [ILLIQUID, PANIC, TREND], RANGE)
    raw[warm] = codes
    confirmed[warm] = jump & (codes == PANIC)
    return raw, confirmed


def _frame_position(
    window_length: int | npt.NDArray[np.int64], frame_bars: int
) -> npt.NDArray[np.int64]:
    return np.minimum(np.asarray(window_length, dtype=np.int64), frame_bars) - 1


def newest_regimes(
    memories: Sequence[RegimeMemory], detection: RegimeDetectionSection
) -> RegimeCodes:
    """The regime code of each memory's newest bar: the hysteresis over its carried raw labels
    (one ``apply_hysteresis`` call for all coins, each coin a block of rows)."""
    if not memories:
        return np.zeros(0, dtype=np.int8)
    if any(m.raw.size == 0 for m in memories):
        raise ValueError("a memory holds no bar yet: fold one in before asking its regime")
    raw = np.concatenate([m.raw for m in memories])
    confirmed = np.concatenate([m.confirmed for m in memories])
    sizes = np.array([m.raw.size for m in memories])
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    position = np.arange(raw.size) - np.repeat(starts, sizes)
    labels = apply_hysteresis(
        raw,
        confirmed,
        hysteresis_bars=detection.hysteresis_bars,
        state_memory_bars=detection.state_memory_bars,
        warmup_bars=0,
        bar_index=position,
    )
    newest: RegimeCodes = labels[starts + sizes - 1]
    return newest


def advance_regimes(
    memories: Sequence[RegimeMemory],
    close: FloatArray,
    volume: FloatArray,
    window_lengths: npt.ArrayLike,
    detection: RegimeDetectionSection,
    *,
    frame_bars: int,
) -> tuple[RegimeMemory, ...]:
    """Fold one new bar per coin into its memory (read the regimes with :func:`newest_regimes`).

    ``close`` and ``volume`` are (n_coins, :func:`tail_bars`) arrays: each coin's last bars
    ending at the new one, left-padded with NaN when the coin has fewer. ``window_lengths``:
    bars in each coin's window now (with ``frame_bars`` they give the bar's position in the
    trailing frame whose start the warm-up counts from).
    """
    n = len(memories)
    k = tail_bars(detection)
    if close.shape != (n, k) or volume.shape != (n, k):
        raise ValueError(f"close/volume must be ({n}, {k}); got {close.shape}/{volume.shape}")
    if n == 0:
        return ()
    with np.errstate(divide="ignore", invalid="ignore"):
        newest = _bar_inputs(close, volume, detection)
    pw, keep = detection.percentile_window_bars, _label_memory(detection)
    vol_rows, vol_table = _append_rows([m.vol for m in memories], newest["vol"], pw)
    dv_rows, dv_table = _append_rows(
        [m.dollar_volume for m in memories], newest["dollar_volume"], pw
    )
    vol_prev = np.array([m.vol[-1] if m.vol.size else np.nan for m in memories])
    frame_pos = _frame_position(np.asarray(window_lengths), frame_bars)
    # the tables hold the rows that were full before this bar (a coin is warm only long after)
    has_history = np.array([m.vol.size == pw for m in memories])
    warming = (frame_pos < _raw_warmup(detection)) | ~has_history
    raw, confirmed = _raw_codes(newest, vol_prev, vol_table, dv_table, warming, detection)
    raw_rows, _ = _append_rows([m.raw for m in memories], raw, keep)
    confirmed_rows, _ = _append_rows([m.confirmed for m in memories], confirmed, keep)
    return tuple(
        RegimeMemory(m.bars_seen + 1, vol_rows[i], dv_rows[i], raw_rows[i], confirmed_rows[i])
        for i, m in enumerate(memories)
    )


def _append_rows(
    rows: Sequence[npt.NDArray[Any]], new: npt.NDArray[Any], keep: int
) -> tuple[list[npt.NDArray[Any]], npt.NDArray[Any]]:
    """Each row with its new value appended, the last ``keep`` kept; and the rows that were
    full as one read-only (n, keep) table (zeros elsewhere), which the full rows view."""
    table = np.zeros((len(rows), keep), dtype=new.dtype)
    full = np.array([row.size == keep for row in rows], dtype=bool)
    if full.any():
        table[full, :-1] = np.stack([row[1:] for row, f in zip(rows, full, strict=True) if f])
        table[full, -1] = new[full]
    table.flags.writeable = False
    out = [
        table[i] if full[i] else np.append(row, new[i])[-keep:].astype(new.dtype)
        for i, row in enumerate(rows)
    ]
    return out, table


def empty_memory() -> RegimeMemory:
    """The memory of a coin before its first bar."""
    return RegimeMemory(0, np.zeros(0), np.zeros(0), np.zeros(0, np.int8), np.zeros(0, bool))


def regime_memory_from_window(
    close: FloatArray,
    volume: FloatArray,
    bars_seen: int,
    detection: RegimeDetectionSection,
    *,
    frame_bars: int,
) -> RegimeMemory:
    """The memory after a coin's window (1-D ``close``, ``volume``, oldest first), as if every
    bar of it had been folded in by :func:`advance_regimes`.

    The window must hold the coin's whole history (``bars_seen == len(close)``) or at least
    ``frame_bars`` bars (older bars no longer matter); ``bars_seen`` counts every bar the coin
    ever had (a trimmed window's first bar is bar ``bars_seen - len(close)``).
    """
    length = close.shape[0]
    if close.shape != volume.shape or close.ndim != 1 or length == 0:
        raise ValueError(f"close {close.shape} and volume {volume.shape}: one 1-D non-empty shape")
    if bars_seen < length or (bars_seen > length and length < frame_bars):
        raise ValueError(
            f"a window of {length} bars with bars_seen={bars_seen} cannot rebuild the memory: "
            f"it needs the whole history or at least frame_bars={frame_bars} bars"
        )
    k = tail_bars(detection)
    pad = np.full(k - 1, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_bar = _bar_inputs(
            _sliding(np.r_[pad, close], k), _sliding(np.r_[pad, volume], k), detection
        )
    pw, keep = detection.percentile_window_bars, _label_memory(detection)
    labelled = np.arange(max(length - keep, 0), length)
    trimmed = bars_seen - length
    frame_pos = _frame_position(np.minimum(trimmed + 1 + labelled, length), frame_bars)
    has_history = labelled - pw + 1 >= 0
    warming = (frame_pos < _raw_warmup(detection)) | ~has_history
    starts = np.maximum(labelled - pw + 1, 0)
    vol, dollar_volume = per_bar["vol"], per_bar["dollar_volume"]
    raw, confirmed = _raw_codes(
        {name: x[labelled] for name, x in per_bar.items()},
        np.r_[np.nan, vol][labelled],
        _history(vol, starts, pw),
        _history(dollar_volume, starts, pw),
        warming,
        detection,
    )
    return RegimeMemory(
        bars_seen=bars_seen,
        vol=vol[-pw:].copy(),
        dollar_volume=dollar_volume[-pw:].copy(),
        raw=raw,
        confirmed=confirmed,
    )


def _sliding(x: FloatArray, width: int) -> FloatArray:
    view = np.lib.stride_tricks.sliding_window_view(x, width)
    return np.ascontiguousarray(view)


def _history(values: FloatArray, starts: npt.NDArray[np.int64], width: int) -> FloatArray:
    """Rows ``values[s : s + width]`` (zeros past the end: those rows are warming)."""
    padded = np.r_[values, np.zeros(width)]
    return (
        np.stack([padded[s : s + width] for s in starts]) if starts.size else np.zeros((0, width))
    )
