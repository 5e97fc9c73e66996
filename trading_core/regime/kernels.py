"""The regime detector's per-bar work as numba kernels: trailing inputs, raw labels, hysteresis.

Why: the polars expressions these replace cost ~4-7 ms per coin year (a dozen rolling passes,
two rolling quantiles, a dozen materialised columns) and the detector runs for every coin of
every training and backtest job; a pass per coin block costs a fifth of that.

Why bit-exact: each flag is a comparison (``vol > vol_q``, ``efficiency >= threshold``, ...)
and a last-ulp difference in an input flips it on an exact tie (a flat stretch makes many equal
volatilities), so the kernels reproduce polars' arithmetic instead of approximating it:

* rolling sums and means are polars' ``SumWindow``: one running sum with separate Kahan
  compensations for the values entering and those leaving (the leaving one subtracted first),
  non-finite values counted aside (the sum is then +-inf or NaN), restarted when a window
  shares no row with the previous one (a window of one bar). The compensation also keeps a
  long history of add/remove steps from drifting;
* the rolling quantiles are exact selections (:mod:`trading_core.regime.rolling_quantile`);
* comparisons use polars' total order (NaN equals NaN and exceeds every number);
* ``math.log`` compiles to the C library's ``log``, the one polars calls (numpy's SIMD log
  differs in the last ulp on ~1% of inputs).

Missing values (polars nulls) travel as validity masks: a trailing window holding one is
invalid, as ``min_samples=window`` makes it, and a flag on an invalid input is False (polars'
Kleene logic then ``fill_null(False)``). Coins are contiguous blocks of rows; ``block_starts``
holds each block's first row and, last, the row count.
"""

import math

import numba
import numpy as np
import numpy.typing as npt

from trading_core.types import REGIME_CODES, Regime

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
CodeArray = npt.NDArray[np.int8]

TREND = REGIME_CODES[Regime.TREND]
RANGE = REGIME_CODES[Regime.RANGE]
PANIC = REGIME_CODES[Regime.PANIC]
ILLIQUID = REGIME_CODES[Regime.ILLIQUID]

# Rows of the trailing-input matrix written by :func:`bar_inputs`: each input's ``row`` in the
# declarations of :data:`trading_core.regime.inputs.RAW_INPUTS` (numbers here, in the kernels'
# own file, so that numba's per-file cache sees a change).
I_ABS_RETURN = 0
I_VOL = 1
I_DOLLAR_VOLUME = 2
I_EFFICIENCY = 3


@numba.njit(cache=True, error_model="numpy", inline="always")
def _total_lt(a: float, b: float) -> bool:
    """``a < b`` in polars' total order of floats: NaN equals NaN and exceeds every number."""
    if math.isnan(a):
        return False
    return math.isnan(b) or a < b


@numba.njit(cache=True, error_model="numpy", inline="always")
def _kahan(total: float, err: float, value: float) -> tuple[float, float]:
    y = value - err
    summed = total + y
    return summed, (summed - total) - y


@numba.njit(cache=True, error_model="numpy", inline="always")
def _window_sum(total: float, non_finite: int, pos_inf: int, neg_inf: int) -> float:
    """The finite values' sum, or what the non-finite ones make of it."""
    if non_finite == 0:
        return total
    if non_finite == pos_inf:
        return np.inf
    if non_finite == neg_inf:
        return -np.inf
    return np.nan


@numba.njit(cache=True, error_model="numpy")
def rolling_sum(
    values: FloatArray, valid: BoolArray, window: int, out: FloatArray, out_valid: BoolArray
) -> None:
    """polars' ``rolling_sum(window, min_samples=window)`` of one block, bit for bit;
    ``out_valid`` is False where polars gives null."""
    total, err_add, err_sub = 0.0, 0.0, 0.0
    non_finite, pos_inf, neg_inf, nulls = 0, 0, 0, 0
    for t in range(values.shape[0]):
        first = t + 1 - window
        if first >= t:  # polars restarts a window that shares no row with the last one
            total, err_add, err_sub = 0.0, 0.0, 0.0
            non_finite, pos_inf, neg_inf, nulls = 0, 0, 0, 0
        elif first > 0:
            old = values[first - 1]
            if not valid[first - 1]:
                nulls -= 1
            elif math.isfinite(old):
                # polars subtracts by adding ``0 - old`` (not ``-old``: they differ at zero)
                total, err_sub = _kahan(total, err_sub, 0.0 - old)
            else:
                non_finite -= 1
                pos_inf -= old > 0.0
                neg_inf -= old < 0.0
        new = values[t]
        if not valid[t]:
            nulls += 1
        elif math.isfinite(new):
            total, err_add = _kahan(total, err_add, new)
        else:
            non_finite += 1
            pos_inf += new > 0.0
            neg_inf += new < 0.0
        out_valid[t] = first >= 0 and nulls == 0
        out[t] = _window_sum(total, non_finite, pos_inf, neg_inf)


@numba.njit(cache=True, error_model="numpy")
def bar_inputs(
    close: FloatArray,
    close_valid: BoolArray,
    dollar_volume: FloatArray,
    dollar_valid: BoolArray,
    block_starts: IntArray,
    vol_window: int,
    dollar_volume_window: int,
    lookback: int,
    inputs: FloatArray,
    inputs_valid: BoolArray,
) -> None:
    """Per bar (rows ``I_*`` of ``inputs``): |log return|, realised volatility (root mean
    square log return over ``vol_window``), mean dollar volume over ``dollar_volume_window``
    and the efficiency ratio of log close over ``lookback`` (0 on a flat window)."""
    n = close.shape[0]
    log_close = np.empty(n)
    step = np.empty(n)
    squares = np.empty(n)
    step_valid = np.empty(n, dtype=np.bool_)
    for t in range(n):
        log_close[t] = math.log(close[t]) if close_valid[t] else np.nan
    for b in range(block_starts.shape[0] - 1):
        lo, hi = block_starts[b], block_starts[b + 1]
        for t in range(lo, hi):
            ok = t > lo and close_valid[t] and close_valid[t - 1]
            step_valid[t] = ok
            step[t] = log_close[t] - log_close[t - 1] if ok else 0.0
            inputs[I_ABS_RETURN, t] = abs(step[t])
            inputs_valid[I_ABS_RETURN, t] = ok
            squares[t] = step[t] * step[t]
        vol, vol_valid = inputs[I_VOL, lo:hi], inputs_valid[I_VOL, lo:hi]
        rolling_sum(squares[lo:hi], step_valid[lo:hi], vol_window, vol, vol_valid)
        for t in range(lo, hi):
            inputs[I_VOL, t] = math.sqrt(inputs[I_VOL, t] / vol_window)
        dv = inputs[I_DOLLAR_VOLUME, lo:hi]
        dv_valid = inputs_valid[I_DOLLAR_VOLUME, lo:hi]
        rolling_sum(dollar_volume[lo:hi], dollar_valid[lo:hi], dollar_volume_window, dv, dv_valid)
        for t in range(lo, hi):
            inputs[I_DOLLAR_VOLUME, t] /= dollar_volume_window
        path = inputs[I_EFFICIENCY, lo:hi]
        path_valid = inputs_valid[I_EFFICIENCY, lo:hi]
        rolling_sum(inputs[I_ABS_RETURN, lo:hi], step_valid[lo:hi], lookback, path, path_valid)
        for t in range(lo, hi):
            past = t - lookback
            ok = path_valid[t - lo] and past >= lo and close_valid[t] and close_valid[past]
            inputs_valid[I_EFFICIENCY, t] = ok
            if ok:
                ratio = abs(log_close[t] - log_close[past]) / inputs[I_EFFICIENCY, t]
                inputs[I_EFFICIENCY, t] = 0.0 if math.isnan(ratio) else ratio


@numba.njit(cache=True, error_model="numpy")
def raw_labels(
    inputs: FloatArray,
    inputs_valid: BoolArray,
    vol_q: FloatArray,
    vol_q_valid: BoolArray,
    dv_q: FloatArray,
    dv_q_valid: BoolArray,
    block_starts: IntArray,
    jump_sigma: float,
    trend_threshold: float,
    min_dollar_volume: float,
    warmup_bars: int,
    raw: CodeArray,
    immediate: BoolArray,
) -> None:
    """Raw code of each bar by priority ILLIQUID > PANIC > TREND > RANGE (ILLIQUID during the
    first ``warmup_bars`` of a block) and whether a jump confirms its PANIC at once."""
    for b in range(block_starts.shape[0] - 1):
        lo, hi = block_starts[b], block_starts[b + 1]
        for t in range(lo, hi):
            dv, dv_ok = inputs[I_DOLLAR_VOLUME, t], inputs_valid[I_DOLLAR_VOLUME, t]
            illiquid = dv_ok and (
                not _total_lt(0.0, dv)
                or (dv_q_valid[t] and _total_lt(dv, dv_q[t]))
                or _total_lt(dv, min_dollar_volume)
            )
            vol = inputs[I_VOL, t]
            high_vol = inputs_valid[I_VOL, t] and vol_q_valid[t] and _total_lt(vol_q[t], vol)
            jump = (
                t > lo
                and inputs_valid[I_ABS_RETURN, t]
                and inputs_valid[I_VOL, t - 1]
                and _total_lt(jump_sigma * inputs[I_VOL, t - 1], inputs[I_ABS_RETURN, t])
            )
            trend = inputs_valid[I_EFFICIENCY, t] and not _total_lt(
                inputs[I_EFFICIENCY, t], trend_threshold
            )
            if t - lo < warmup_bars or illiquid:
                code = ILLIQUID
            elif high_vol or jump:
                code = PANIC
            elif trend:
                code = TREND
            else:
                code = RANGE
            raw[t] = code
            immediate[t] = jump and code == PANIC and t - lo >= warmup_bars


@numba.njit(cache=True, error_model="numpy")
def hysteresis(
    raw: CodeArray,
    immediate: BoolArray,
    position: IntArray,
    hysteresis_bars: int,
    state_memory_bars: int,
    warmup_bars: int,
    priority: CodeArray,
    out: CodeArray,
) -> None:
    """The label of the latest confirmation within ``state_memory_bars``, else the trailing
    mode of ``state_memory_bars + 1`` raw codes (ties to the later code of ``priority``); a
    row with ``position`` 0 starts a coin (see :func:`~trading_core.regime.apply_hysteresis`).
    """
    slot = np.full(256, -1, dtype=np.int64)
    for i in range(priority.shape[0]):
        slot[priority[i] & 0xFF] = i
    counts = np.zeros(priority.shape[0], dtype=np.int64)
    first_row, run_start, last, tail = 0, 0, -1, 0
    for t in range(raw.shape[0]):
        if position[t] == 0:
            first_row, tail = t, t
            counts[:] = 0
        if t == 0 or position[t] == 0 or raw[t] != raw[t - 1]:
            run_start = t
        if t - run_start + 1 >= hysteresis_bars or immediate[t] or position[t] < warmup_bars:
            last = t
        s = slot[raw[t] & 0xFF]
        if s >= 0:
            counts[s] += 1
        while tail < t - state_memory_bars:
            s = slot[raw[tail] & 0xFF]
            if s >= 0:
                counts[s] -= 1
            tail += 1
        if last >= first_row and t - last <= state_memory_bars:
            out[t] = raw[last]
            continue
        best = 0
        for i in range(1, counts.shape[0]):
            if counts[i] >= counts[best]:
                best = i
        out[t] = priority[best]
