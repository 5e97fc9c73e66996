"""The feature matrix of :mod:`trading_core.features.core`, computed by one numba kernel.

The polars expressions of :mod:`~trading_core.features.core` are the definition; this module
evaluates the same formulas bar by bar in compiled code, because a year of 1h bars per coin
spends most of its polars time in fixed per-expression costs (about 90 expressions in five
stages), not in arithmetic. Both are tested equal on synthetic and real candles
(``tests/unit/trading_core/features/test_features_compiled.py``) to 1e-9 relative; nulls of the
warm-up are NaN here and become nulls in :func:`~trading_core.features.compute.compute_features`.

The kernel's column order is :data:`KERNEL_COLUMNS`, derived from the registry
(:mod:`trading_core.features.registry`: each feature's ``kernel_slot``); the kernel code below
writes each feature into its slot by number (``out[t, 9]``: ``dollar_volume_usd``). Numbers
and not constants imported from the registry, because numba caches compiled code per file: a
constant imported from another module would not invalidate the cache when it changes. After
editing a kernel here or in :mod:`trading_core.features.rolling`, delete the
``*.nbi``/``*.nbc`` files under ``trading_core/features/__pycache__``.
"""

import math
from typing import Final

import numba
import numpy as np
import numpy.typing as npt

from trading_core.features.registry import KERNEL_COLUMNS
from trading_core.features.rolling import (
    ewm_mean_adjusted,
    rolling_max,
    rolling_mean,
    rolling_min,
    rolling_sum,
    rolling_var,
    time_correlation,
)
from trading_core.pooled import pooled_empty

FloatArray = npt.NDArray[np.float64]

_N_FEATURES: Final = len(KERNEL_COLUMNS)
_RIBBON_COLUMN: Final = KERNEL_COLUMNS.index("ema_ribbon_score")
_CS_K: Final = 3.0 - 2.0 * math.sqrt(2.0)
_CS_BETA: Final = (math.sqrt(2.0) - 1.0) / _CS_K


@numba.njit(cache=True, error_model="numpy", inline="always")
def _sdiv(num: float, den: float, default: float) -> float:
    """core._safe_div: num / den where den > 0; NaN (polars orders it above 0) stays NaN."""
    if den > 0.0 or math.isnan(den):
        return num / den
    return default


@numba.njit(cache=True, error_model="numpy", inline="always")
def _sign(x: float) -> float:
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return x * 0.0  # 0, or NaN for NaN


@numba.njit(cache=True, error_model="numpy")
def _channels(h: FloatArray, lo: FloatArray) -> FloatArray:
    """Trailing highest highs (rows 0-2) and lowest lows (rows 3-5) over 48, 72 and 14 bars.

    One call site per deque kernel, in a loop: six inlined copies measured 3x slower in all."""
    out = np.empty((6, h.shape[0]))
    windows = (48, 72, 14)
    for i in range(3):
        rolling_max(h, windows[i], out[i])
        rolling_min(lo, windows[i], out[3 + i])
    return out


@numba.njit(cache=True, error_model="numpy")
def _spread_pairs(
    h: FloatArray, lo: FloatArray, c: FloatArray, lc: FloatArray, hl: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Corwin-Schultz two-bar spreads and Abdi-Ranaldo two-bar moments (NaN at bar 0) from
    the bars and their log ranges ``hl``; the formulas and references are those of
    :mod:`trading_core.features.spread`."""
    m = c.shape[0]
    cs, ar = np.full(m, np.nan), np.full(m, np.nan)
    eta_prev = (math.log(h[0]) + math.log(lo[0])) / 2.0 if m else 0.0
    for t in range(1, m):
        cp = c[t - 1]
        gap = max(lo[t] - cp, 0.0) + min(h[t] - cp, 0.0)
        h_adj, lo_adj = h[t] - gap, lo[t] - gap
        # without a gap the adjusted log range is the bar's own (computed once, in ``hl``)
        range_adj = hl[t] if gap == 0.0 else math.log(h_adj / lo_adj)
        beta = hl[t - 1] ** 2 + range_adj**2
        gamma = math.log(max(h[t - 1], h_adj) / min(lo[t - 1], lo_adj)) ** 2
        alpha = math.sqrt(beta) * _CS_BETA - math.sqrt(gamma / _CS_K)
        cs[t] = max(2.0 * math.tanh(alpha / 2.0), 0.0)
        eta = (math.log(h[t]) + math.log(lo[t])) / 2.0
        ar[t] = 4.0 * (lc[t - 1] - eta_prev) * (lc[t - 1] - eta)
        eta_prev = eta
    return cs, ar


@numba.njit(cache=True, error_model="numpy")
def _candle_columns(
    o: FloatArray, h: FloatArray, lo: FloatArray, c: FloatArray, v: FloatArray, out: FloatArray
) -> None:
    """Element-wise candle features and the engulfing pattern (columns 9, 14-16, 43)."""
    for t in range(c.shape[0]):
        rng = h[t] - lo[t]
        out[t, 9] = c[t] * v[t]
        out[t, 14] = math.log(h[t] / lo[t])
        out[t, 15] = _sdiv((c[t] - lo[t]) - (h[t] - c[t]), rng, 0.0)
        body_lo, body_hi = min(o[t], c[t]), max(o[t], c[t])
        out[t, 16] = _sdiv((body_lo - lo[t]) - (h[t] - body_hi), rng, 0.0)
        if t == 0:
            out[t, 43] = np.nan
            continue
        po, pc = o[t - 1], c[t - 1]
        bull = pc < po and c[t] > o[t] and c[t] >= po and o[t] <= pc
        bear = pc > po and c[t] < o[t] and c[t] <= po and o[t] >= pc
        out[t, 43] = 1.0 if bull else (-1.0 if bear else 0.0)


_RIBBON_PAIRS: Final = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))


@numba.njit(cache=True, error_model="numpy")
def _ribbon_ratios(emas: tuple[FloatArray, ...], atr: FloatArray, ratios: FloatArray) -> None:
    """(EMA_a - EMA_b) / (ATR / 4) for the six ordered pairs of EMAs 5/8/13/21; their tanh is
    taken by numpy afterwards (its vectorised tanh is 7x faster than a scalar one per bar)."""
    for p in range(6):
        a, b = _RIBBON_PAIRS[p]
        for t in range(atr.shape[0]):
            ratios[t, p] = _sdiv(emas[a][t] - emas[b][t], 0.25 * atr[t], 0.0)


@numba.njit(cache=True, error_model="numpy")
def _return_columns(c: FloatArray, lc: FloatArray, out: FloatArray) -> None:
    """Log returns, realised volatilities and the features built on them (columns 0-7, 13,
    19, 23, 24, 28, 39). Rolling results go straight into their columns or one scratch row
    each: a year of bars per temporary is 70 KB of memory traffic."""
    m = c.shape[0]
    horizons = (1, 4, 12, 24, 72)
    for j in range(5):
        k = horizons[j]
        for t in range(m):
            out[t, j] = lc[t] - lc[t - k] if t >= k else np.nan
    scratch = np.empty((4, m))
    sq, rv48, path24, ms4_72 = scratch[0], scratch[1], scratch[2], scratch[3]
    for t in range(m):
        sq[t] = out[t, 0] * out[t, 0]
    rolling_mean(sq, 12, 1, out[:, 5])
    rolling_mean(sq, 24, 1, out[:, 6])
    rolling_mean(sq, 72, 1, out[:, 7])
    rolling_mean(sq, 48, 1, rv48)
    for t in range(m):
        sq[t] = abs(c[t] - c[t - 1]) if t > 0 else np.nan
    rolling_sum(sq, 24, 1, path24)
    for t in range(m):
        sq[t] = out[t, 1] * out[t, 1]
    rolling_mean(sq, 72, 4, ms4_72)
    time_correlation(lc, 48, out[:, 19])
    for t in range(m):
        ms72 = out[t, 7]
        rv12, rv24, rv72 = math.sqrt(out[t, 5]), math.sqrt(out[t, 6]), math.sqrt(ms72)
        out[t, 5], out[t, 6], out[t, 7] = rv12, rv24, rv72
        out[t, 13] = _sdiv(abs(c[t] - c[t - 24]) if t >= 24 else np.nan, path24[t], 0.0)
        out[t, 23] = _sdiv(out[t, 3], rv24 * math.sqrt(24.0), 0.0)
        out[t, 24] = _sdiv(out[t, 2], math.sqrt(rv48[t]) * math.sqrt(12.0), 0.0)
        if rv12 > 0.0 and rv72 > 0.0:
            out[t, 28] = math.log(rv12 / rv72)
        else:
            out[t, 28] = rv72 * 0.0  # 0, or NaN in the warm-up
        out[t, 39] = _sdiv(ms4_72[t], 4.0 * rv72 * rv72, 1.0)


@numba.njit(cache=True, error_model="numpy")
def _atr(h: FloatArray, lo: FloatArray, c: FloatArray) -> FloatArray:
    """Wilder's ATR(14): adjusted EMA of the true range (bar 0: its high - low)."""
    tr = h - lo
    for t in range(1, c.shape[0]):
        tr[t] = max(tr[t], abs(h[t] - c[t - 1]), abs(lo[t] - c[t - 1]))
    atr = np.empty(c.shape[0])
    ewm_mean_adjusted(tr, 1.0 / 14.0, 0, atr)
    return atr


@numba.njit(cache=True, error_model="numpy")
def _channel_columns(
    h: FloatArray, lo: FloatArray, c: FloatArray, atr: FloatArray, out: FloatArray
) -> None:
    """Donchian / range position, support and resistance distances, stochastic %K and %D
    (columns 21, 22, 26, 27, 33, 34)."""
    m = c.shape[0]
    channels = _channels(h, lo)
    hh48, hh72, hh14 = channels[0], channels[1], channels[2]
    ll48, ll72, ll14 = channels[3], channels[4], channels[5]
    for t in range(m):
        # the previous 48 / 72 bars' channel: the trailing extreme of bar t - 1
        hp, lp = (hh48[t - 1], ll48[t - 1]) if t >= 48 else (np.nan, np.nan)
        out[t, 21] = _sdiv(c[t] - (hp + lp) / 2.0, (hp - lp) / 2.0, 0.0)
        out[t, 22] = _sdiv(c[t] - ll48[t], hh48[t] - ll48[t], 0.5)
        hp72, lp72 = (hh72[t - 1], ll72[t - 1]) if t >= 72 else (np.nan, np.nan)
        out[t, 26] = _sdiv(c[t] - lp72, atr[t], 0.0)
        out[t, 27] = _sdiv(hp72 - c[t], atr[t], 0.0)
        out[t, 33] = _sdiv(c[t] - ll14[t], hh14[t] - ll14[t], 0.5) * 100.0
    rolling_mean(out[:, 33], 3, 13, out[:, 34])


@numba.njit(cache=True, error_model="numpy")
def _average_columns(
    o: FloatArray, c: FloatArray, atr: FloatArray, out: FloatArray, ribbon: FloatArray
) -> None:
    """Moving-average, EMA, RSI and squeeze features (columns 8, 20, 25, 29-32, 35, 38, 42;
    the ribbon's ratios)."""
    m = c.shape[0]
    s = np.empty((14, m))  # scratch rows, one allocation
    up, down, gain, loss = s[0], s[1], s[2], s[3]
    e5, e8, e13, e21, macd, signal = s[4], s[5], s[6], s[7], s[8], s[9]
    sma20, sma24, sma100, var20 = s[10], s[11], s[12], s[13]
    for t in range(m):
        d = c[t] - c[t - 1] if t > 0 else np.nan
        up[t], down[t] = max(d, 0.0), max(-d, 0.0)
    ewm_mean_adjusted(up, 1.0 / 14.0, 1, gain)
    ewm_mean_adjusted(down, 1.0 / 14.0, 1, loss)
    spans = (5.0, 8.0, 13.0, 21.0)
    for i in range(4):
        ewm_mean_adjusted(c, 2.0 / (spans[i] + 1.0), 0, s[4 + i])
    ewm_mean_adjusted(c, 2.0 / 13.0, 0, macd)
    ewm_mean_adjusted(c, 2.0 / 27.0, 0, up)  # up is free again: the EMA(26)
    for t in range(m):
        macd[t] -= up[t]
    ewm_mean_adjusted(macd, 2.0 / 10.0, 0, signal)
    rolling_mean(c, 20, 0, sma20)
    rolling_mean(c, 24, 0, sma24)
    rolling_mean(c, 100, 0, sma100)
    rolling_var(c, 20, 0, 1, var20)
    rolling_var(c, 24, 0, 1, down)  # down is free again: the 24-bar variance
    for t in range(m):
        a = atr[t]
        out[t, 8] = a / c[t]
        out[t, 20] = _sdiv(sma20[t] - sma100[t], a, 0.0)
        out[t, 25] = _sdiv(c[t] - sma24[t], math.sqrt(down[t]), 0.0)
        out[t, 29] = _sdiv(2.0 * math.sqrt(var20[t]), 1.5 * a, 1.0)
        out[t, 31] = _sdiv(c[t] - sma20[t], a, 0.0)
        out[t, 32] = _sdiv(gain[t], gain[t] + loss[t], 0.5) * 100.0
        out[t, 35] = _sdiv(macd[t] - signal[t], a, 0.0)
        out[t, 38] = _sdiv(e5[t] - e21[t], a, 0.0)
        out[t, 42] = _sdiv(c[t] - o[t], a, 0.0)
    for t in range(m):
        # squeeze_recent_6: Bollinger inside Keltner on any of the last 6 bars (the ratio is
        # defined from bar 19, with the 20-bar std)
        recent = np.nan
        if t >= 24:
            recent = 0.0
            for k in range(t - 5, t + 1):
                if out[k, 29] < 1.0:
                    recent = 1.0
        out[t, 30] = recent
    _ribbon_ratios((e5, e8, e13, e21), atr, ribbon)


@numba.njit(cache=True, error_model="numpy")
def _volume_columns(
    h: FloatArray,
    lo: FloatArray,
    c: FloatArray,
    v: FloatArray,
    lc: FloatArray,
    atr: FloatArray,
    out: FloatArray,
) -> None:
    """Dollar-volume, flow and spread features (columns 10-12, 17, 18, 36, 40, 41; reads the
    candle columns 9, 14 and 15)."""
    m = c.shape[0]
    s = np.empty((10, m))  # scratch rows, one allocation
    vol24, vol12, ldv, ldv_mean, ldv_var = s[0], s[1], s[2], s[3], s[4]
    work, mf12, obv24, tpv24, ar_mean = s[5], s[6], s[7], s[8], s[9]
    rolling_mean(out[:, 9], 24, 0, out[:, 10])
    rolling_sum(v, 24, 0, vol24)
    rolling_sum(v, 12, 0, vol12)
    for t in range(m):
        ldv[t] = math.log1p(out[t, 9])
        work[t] = out[t, 15] * v[t]
    rolling_mean(ldv, 168, 0, ldv_mean)
    rolling_var(ldv, 168, 0, 1, ldv_var)
    rolling_sum(work, 12, 0, mf12)
    for t in range(m):
        work[t] = _sign(lc[t] - lc[t - 1]) * v[t] if t > 0 else np.nan
    rolling_sum(work, 24, 1, obv24)
    for t in range(m):
        work[t] = (h[t] + lo[t] + c[t]) / 3.0 * v[t]
    rolling_sum(work, 24, 0, tpv24)
    cs, ar = _spread_pairs(h, lo, c, lc, out[:, 14])
    rolling_mean(cs, 24, 1, out[:, 17])
    rolling_mean(ar, 24, 1, ar_mean)
    for t in range(m):
        out[t, 11] = _sdiv(v[t] * 24.0, vol24[t], 0.0)
        out[t, 12] = _sdiv(ldv[t] - ldv_mean[t], math.sqrt(ldv_var[t]), 0.0)
        out[t, 17] *= 10_000.0
        out[t, 18] = math.sqrt(max(ar_mean[t], 0.0)) * 10_000.0
        if math.isnan(ar_mean[t]):
            out[t, 18] = np.nan
        if vol24[t] > 0.0:
            out[t, 36] = _sdiv(c[t] - tpv24[t] / vol24[t], atr[t], 0.0)
        else:
            out[t, 36] = vol24[t] * 0.0  # 0, or NaN in the warm-up
        out[t, 40] = _sdiv(mf12[t], vol12[t], 0.0)
        out[t, 41] = _sdiv(obv24[t], vol24[t], 0.0)


@numba.njit(cache=True, error_model="numpy")
def _coin_features(
    o: FloatArray,
    h: FloatArray,
    lo: FloatArray,
    c: FloatArray,
    v: FloatArray,
    out: FloatArray,
    ribbon: FloatArray,
) -> None:
    lc = np.log(c)
    atr = _atr(h, lo, c)
    _candle_columns(o, h, lo, c, v, out)
    _return_columns(c, lc, out)
    _channel_columns(h, lo, c, atr, out)
    _average_columns(o, c, atr, out, ribbon)
    _volume_columns(h, lo, c, v, lc, atr, out)


@numba.njit(cache=True, error_model="numpy")
def _feature_matrix(
    o: FloatArray,
    h: FloatArray,
    lo: FloatArray,
    c: FloatArray,
    v: FloatArray,
    starts: npt.NDArray[np.int64],
    out: FloatArray,
) -> FloatArray:
    ribbon = np.empty((6, c.shape[0])).T  # column-major: the six tanh columns add element-wise
    for g in range(starts.shape[0] - 1):
        s, e = starts[g], starts[g + 1]
        _coin_features(o[s:e], h[s:e], lo[s:e], c[s:e], v[s:e], out[s:e], ribbon[s:e])
    return ribbon


@numba.njit(cache=True, error_model="numpy")
def _mask_warmup(
    out: FloatArray, starts: npt.NDArray[np.int64], warmup: npt.NDArray[np.int64]
) -> None:
    for g in range(starts.shape[0] - 1):
        s, e = starts[g], starts[g + 1]
        for j in range(warmup.shape[0]):
            out[s : s + min(warmup[j], e - s), j] = np.nan


def feature_matrix(
    ohlcv: tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray],
    starts: npt.NDArray[np.int64],
    warmup: npt.NDArray[np.int64],
) -> FloatArray:
    """(n_rows, len(KERNEL_COLUMNS)) column-major features of validated bars ``ohlcv`` (open,
    high, low, close, volume: float64 arrays of n_rows), one coin per block
    ``starts[g]:starts[g + 1]`` (each sorted by time); NaN where a feature is in its warm-up
    (the first ``warmup[j]`` bars of each block)."""
    shapes = [np.shape(x) for x in ohlcv][:6]
    if len(shapes) != 5 or len(set(shapes)) != 1 or len(shapes[0]) != 1:
        raise ValueError(
            f"ohlcv must be 5 one-dimensional arrays of one length (open, high, low, close, "
            f"volume); got shapes {shapes}"
        )
    n = shapes[0][0]
    if warmup.shape != (_N_FEATURES,):
        raise ValueError(f"warmup must hold {_N_FEATURES} bar counts, got {warmup.shape}")
    if starts.size < 1 or starts[0] != 0 or starts[-1] != n or np.any(np.diff(starts) < 0):
        raise ValueError(f"starts must rise from 0 to {n}, got {starts!r}")
    arrays = [np.ascontiguousarray(x, dtype=np.float64) for x in ohlcv]
    starts, warmup = starts.astype(np.int64), warmup.astype(np.int64)
    o, h, lo, c, v = arrays
    # column-major, each feature one contiguous column; pooled: see trading_core.pooled
    matrix = pooled_empty((n, _N_FEATURES), fortran=True)
    ribbon = _feature_matrix(o, h, lo, c, v, starts, matrix)
    terms = np.tanh(ribbon, out=ribbon)
    ribbon_score = matrix[:, _RIBBON_COLUMN]
    np.add(terms[:, 0], terms[:, 1], out=ribbon_score)
    for p in range(2, 6):
        ribbon_score += terms[:, p]
    ribbon_score /= 6.0
    _mask_warmup(matrix, starts, warmup)
    result: FloatArray = matrix
    return result
