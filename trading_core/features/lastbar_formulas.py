"""The newest-bar formulas too long for a one-line declaration in the registry.

Each function maps the :class:`~trading_core.features.lastbar_windows.NewestWindows` of many
coins to one value per coin at the newest bar, the same formula as the feature's polars
expression (:mod:`trading_core.features.registry`) evaluated on that window's last row.
"""

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from trading_core.features.expressions import RIBBON_SPANS, RSI_BARS, SPREAD_WINDOW_BARS
from trading_core.features.lastbar_windows import (
    SQUEEZE_BARS,
    NewestWindows,
    macd_signal_weights,
    safe_div,
    std_about_last,
)

FloatArray = npt.NDArray[np.float64]
NewestFn = Callable[[NewestWindows], FloatArray]
_CS_K = 3.0 - 2.0 * math.sqrt(2.0)


def atr_ratio(num: NewestFn) -> NewestFn:
    """``num / ATR`` (0 where the ATR is 0)."""
    return lambda x: safe_div(num(x), x.atr)


def wick_imbalance(x: NewestWindows) -> FloatArray:
    o, h, lo, c = x.o[:, -1], x.h[:, -1], x.l[:, -1], x.c[:, -1]
    return safe_div((np.minimum(o, c) - lo) - (h - np.maximum(o, c)), h - lo)


def log_dollar_volume_z(x: NewestWindows) -> FloatArray:
    ldv = np.log1p(x.dollar_volume[:, -168:])
    return safe_div(ldv[:, -1] - ldv.mean(axis=1), std_about_last(ldv, ddof=1))


def efficiency_ratio(x: NewestWindows) -> FloatArray:
    move = np.abs(x.c[:, -1] - x.c[:, -25])
    return safe_div(move, np.abs(x.diff[:, -24:]).sum(axis=1))


def corwin_schultz(x: NewestWindows) -> FloatArray:
    """``spread.corwin_schultz_pair_spread`` over the last 24 pairs, averaged, in bps."""
    w = SPREAD_WINDOW_BARS
    h, lo, c_prev = x.h[:, -w:], x.l[:, -w:], x.c[:, -w - 1 : -1]
    h_prev, lo_prev = x.h[:, -w - 1 : -1], x.l[:, -w - 1 : -1]
    gap = np.maximum(lo - c_prev, 0.0) + np.minimum(h - c_prev, 0.0)
    log_range_adj = np.log((h - gap) / (lo - gap))
    beta = np.square(np.log(h_prev / lo_prev)) + np.square(log_range_adj)
    gamma = np.square(np.log(np.maximum(h_prev, h - gap) / np.minimum(lo_prev, lo - gap)))
    alpha = np.sqrt(beta) * ((math.sqrt(2.0) - 1.0) / _CS_K) - np.sqrt(gamma / _CS_K)
    spread = np.maximum(2.0 * np.tanh(alpha / 2.0), 0.0)
    bps: FloatArray = spread.mean(axis=1) * 10_000.0
    return bps


def abdi_ranaldo(x: NewestWindows) -> FloatArray:
    """``spread.abdi_ranaldo_pair_moment`` over the last 24 pairs, averaged, in bps."""
    w = SPREAD_WINDOW_BARS
    eta = (np.log(x.h[:, -w - 1 :]) + np.log(x.l[:, -w - 1 :])) / 2.0
    c_prev = x.log_close[:, -w - 1 : -1]
    moment = 4.0 * (c_prev - eta[:, :-1]) * (c_prev - eta[:, 1:])
    bps: FloatArray = np.sqrt(np.maximum(moment.mean(axis=1), 0.0)) * 10_000.0
    return bps


def trend_corr(x: NewestWindows) -> FloatArray:
    """``expressions.time_correlation`` of log close over 48 bars."""
    w = 48
    y = x.log_close[:, -w:]
    y = y - y[:, -1:]  # a flat window gives exactly 0 / 0, as in polars; the weights sum to 0
    centred = np.arange(w) - (w - 1) / 2.0
    cross = (y * centred).sum(axis=1)
    corr = cross / (w * math.sqrt((w * w - 1) / 12.0) * np.sqrt(y.var(axis=1, ddof=0)))
    result: FloatArray = np.where(np.isfinite(corr), np.clip(corr, -1.0, 1.0), 0.0)
    return result


def donchian(x: NewestWindows) -> FloatArray:
    hh, ll = x.prior_extreme(48)
    return safe_div(x.c[:, -1] - (hh + ll) / 2.0, (hh - ll) / 2.0)


def range_pos(x: NewestWindows) -> FloatArray:
    hh, ll = x.h[:, -48:].max(axis=1), x.l[:, -48:].min(axis=1)
    return safe_div(x.c[:, -1] - ll, hh - ll, 0.5)


def vol_ratio(x: NewestWindows) -> FloatArray:
    rv12, rv72 = x.realized_vol(12), x.realized_vol(72)
    result: FloatArray = np.where((rv12 > 0) & (rv72 > 0), np.log(rv12 / rv72), 0.0)
    return result


def squeeze_ratio(x: NewestWindows, back: int = 0) -> FloatArray:
    end = x.m - back
    std20 = std_about_last(x.c[:, end - 20 : end], ddof=1)
    return safe_div(2.0 * std20, 1.5 * x.atr_at(back), default=1.0)


def squeeze_recent(x: NewestWindows) -> FloatArray:
    below = [(squeeze_ratio(x, back) < 1.0) for back in range(SQUEEZE_BARS)]
    recent: FloatArray = np.max(np.column_stack(below), axis=1).astype(np.float64)
    return recent


def rsi(x: NewestWindows) -> FloatArray:
    alpha = 1.0 / RSI_BARS
    gain = x.ewm_last(np.maximum(x.diff, 0.0), alpha)
    loss = x.ewm_last(np.maximum(-x.diff, 0.0), alpha)
    return safe_div(gain, gain + loss, 0.5) * 100.0


def macd_hist(x: NewestWindows) -> FloatArray:
    macd = x.ema(12) - x.ema(26)
    signal = (x.c * macd_signal_weights(x.m)).sum(axis=1)
    return safe_div(macd - signal, x.atr)


def vwap_dev(x: NewestWindows) -> FloatArray:
    vol24 = x.volume_sum(24)
    tpv24 = ((x.h[:, -24:] + x.l[:, -24:] + x.c[:, -24:]) / 3.0 * x.v[:, -24:]).sum(axis=1)
    result: FloatArray = np.where(vol24 > 0.0, safe_div(x.c[:, -1] - tpv24 / vol24, x.atr), 0.0)
    return result


def ribbon(x: NewestWindows) -> FloatArray:
    pairs = [(a, b) for i, a in enumerate(RIBBON_SPANS) for b in RIBBON_SPANS[i + 1 :]]
    quarter_atr = 0.25 * x.atr
    terms = [np.tanh(safe_div(x.ema(a) - x.ema(b), quarter_atr)) for a, b in pairs]
    total = terms[0]
    for term in terms[1:]:  # left to right, as pl.sum_horizontal adds
        total = total + term
    return total / len(pairs)


def variance_ratio(x: NewestWindows) -> FloatArray:
    lc = x.log_close
    ms4 = np.square(lc[:, -72:] - lc[:, -76:-4]).mean(axis=1)
    return safe_div(ms4, 4.0 * x.mean_sq_return(72), 1.0)


def money_flow(x: NewestWindows) -> FloatArray:
    flow = (x.close_location(12) * x.v[:, -12:]).sum(axis=1)
    return safe_div(flow, x.volume_sum(12))


def obv_flow(x: NewestWindows) -> FloatArray:
    signed = (np.sign(x.lr1[:, -24:]) * x.v[:, -24:]).sum(axis=1)
    return safe_div(signed, x.volume_sum(24))


def engulfing(x: NewestWindows) -> FloatArray:
    o, c = x.o[:, -1], x.c[:, -1]
    prev_o, prev_c = x.o[:, -2], x.c[:, -2]
    bull = (prev_c < prev_o) & (c > o) & (c >= prev_o) & (o <= prev_c)
    bear = (prev_c > prev_o) & (c < o) & (c <= prev_o) & (o >= prev_c)
    result: FloatArray = np.where(bull, 1.0, np.where(bear, -1.0, 0.0))
    return result
