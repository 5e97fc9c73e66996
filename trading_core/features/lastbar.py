"""Every feature's value at the newest bar of many coins at once, in numpy (no polars).

:func:`~trading_core.features.compute.compute_features` evaluates the feature expressions of
:mod:`trading_core.features.core` over a whole history; a live service needs them at one bar per
coin, and polars' fixed cost per call dominates on a few hundred bars. Here the same definitions
are evaluated at the last column of ``(n_coins, n_bars)`` arrays, one vectorised numpy step per
feature across all coins (the intermediates live in :mod:`trading_core.features.lastbar_windows`):

* trailing rolling statistics (means, sums, standard deviations, extrema, the weighted time
  correlation) are reductions over the last ``w`` columns;
* the exponential averages (``adjust=True``: Wilder's ATR and RSI, the ribbon, MACD and signal
  EMAs) are dot products with their normalised weights ``(1 - alpha)^k`` from the first bar of
  the window, which is exactly polars' adjusted EWM restricted to the window; the MACD signal
  line (an EMA of a difference of EMAs) is linear in the closes, so it is one dot product with
  a precomputed weight vector (cached per window length);
* warm-up nulls become NaN: a feature is NaN when the newest bar's position ``n_bars - 1`` is
  below its :data:`~trading_core.features.core.FEATURE_WARMUP_BARS`, as ``compute_features``
  masks it.

So row ``i`` equals the last row of ``compute_features`` on the same ``n_bars`` bars of coin
``i``, up to floating-point summation order (polars sums incrementally; tests assert 1e-9
relative, observed ~1e-13). Each row depends only on its own coin's bars (every reduction runs
along a C-contiguous row), so a coin's values do not depend on which other coins share the
batch. References are those of :mod:`trading_core.features.core`.
"""

import math
from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt

from trading_core.errors import DataValidationError
from trading_core.features.core import (
    FEATURE_COLUMNS,
    FEATURE_WARMUP_BARS,
    RIBBON_SPANS,
    RSI_BARS,
    SPREAD_WINDOW_BARS,
)
from trading_core.features.lastbar_windows import (
    SQUEEZE_BARS,
    NewestWindows,
    macd_signal_weights,
    safe_div,
    std_about_last,
)

FloatArray = npt.NDArray[np.float64]
BAR_FIELDS: Final[tuple[str, ...]] = ("open", "high", "low", "close", "volume")
FEATURE_INDEX: Final[dict[str, int]] = {name: j for j, name in enumerate(FEATURE_COLUMNS)}
_CS_K: Final = 3.0 - 2.0 * math.sqrt(2.0)


def validate_bar_arrays(bars: FloatArray) -> None:
    """Raise unless ``bars`` is (5, n_coins, n_bars) with n_bars >= 1, finite prices > 0 and
    finite volume >= 0 (the checks ``compute_features`` makes)."""
    if bars.ndim != 3 or bars.shape[0] != len(BAR_FIELDS) or bars.shape[2] < 1:
        raise ValueError(
            f"bars must be (5, n_coins, n_bars >= 1) arrays of {BAR_FIELDS}; got {bars.shape}"
        )
    prices, volume = bars[:4], bars[4]
    if not np.all(np.isfinite(prices) & (prices > 0.0)):
        bad = np.argwhere(~(np.isfinite(prices) & (prices > 0.0)))[0]
        raise DataValidationError(
            f"prices must be finite and > 0; {BAR_FIELDS[bad[0]]} of coin row {bad[1]} at bar "
            f"{bad[2]} is {prices[tuple(bad)]!r}"
        )
    if not np.all(np.isfinite(volume) & (volume >= 0.0)):
        bad = np.argwhere(~(np.isfinite(volume) & (volume >= 0.0)))[0]
        raise DataValidationError(
            f"volume must be finite and >= 0; coin row {bad[0]} at bar {bad[1]} is "
            f"{volume[tuple(bad)]!r}"
        )


def newest_bar_features(bars: FloatArray) -> FloatArray:
    """(n_coins, len(FEATURE_COLUMNS)) feature values at the newest of ``bars``' bars.

    ``bars`` is (5, n_coins, n_bars): open, high, low, close, volume, each row one coin's last
    ``n_bars`` bars oldest first (one length for all: group coins by window length). NaN
    where ``compute_features`` would give null (see the module docstring).
    """
    array = np.asarray(bars, dtype=np.float64)
    validate_bar_arrays(array)
    newest = NewestWindows(*(np.ascontiguousarray(array[k]) for k in range(len(BAR_FIELDS))))
    position = array.shape[2] - 1
    out = np.full((array.shape[1], len(FEATURE_COLUMNS)), np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for j, name in enumerate(FEATURE_COLUMNS):
            if position >= FEATURE_WARMUP_BARS[name]:
                out[:, j] = _FEATURES[name](newest)
    return out


# --- the features, by name ------------------------------------------------------------------

FeatureFn = Callable[[NewestWindows], FloatArray]


def _atr_ratio(num: Callable[[NewestWindows], FloatArray]) -> FeatureFn:
    return lambda x: safe_div(num(x), x.atr)


def _realized_vol(w: int) -> FeatureFn:
    return lambda x: x.realized_vol(w)


def _log_ret(k: int) -> FeatureFn:
    return lambda x: x.log_ret(k)


def _clv(x: NewestWindows) -> FloatArray:
    return x.close_location(1)[:, 0]


def _wick_imbalance(x: NewestWindows) -> FloatArray:
    o, h, lo, c = x.o[:, -1], x.h[:, -1], x.l[:, -1], x.c[:, -1]
    return safe_div((np.minimum(o, c) - lo) - (h - np.maximum(o, c)), h - lo)


def _relative_volume(x: NewestWindows) -> FloatArray:
    return safe_div(x.v[:, -1] * 24.0, x.volume_sum(24))


def _log_dollar_volume_z(x: NewestWindows) -> FloatArray:
    ldv = np.log1p(x.dollar_volume[:, -168:])
    return safe_div(ldv[:, -1] - ldv.mean(axis=1), std_about_last(ldv, ddof=1))


def _efficiency_ratio(x: NewestWindows) -> FloatArray:
    move = np.abs(x.c[:, -1] - x.c[:, -25])
    return safe_div(move, np.abs(x.diff[:, -24:]).sum(axis=1))


def _corwin_schultz(x: NewestWindows) -> FloatArray:
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


def _abdi_ranaldo(x: NewestWindows) -> FloatArray:
    """``spread.abdi_ranaldo_pair_moment`` over the last 24 pairs, averaged, in bps."""
    w = SPREAD_WINDOW_BARS
    eta = (np.log(x.h[:, -w - 1 :]) + np.log(x.l[:, -w - 1 :])) / 2.0
    c_prev = x.log_close[:, -w - 1 : -1]
    moment = 4.0 * (c_prev - eta[:, :-1]) * (c_prev - eta[:, 1:])
    bps: FloatArray = np.sqrt(np.maximum(moment.mean(axis=1), 0.0)) * 10_000.0
    return bps


def _trend_corr(x: NewestWindows) -> FloatArray:
    """``core._time_correlation`` of log close over 48 bars."""
    w = 48
    y = x.log_close[:, -w:]
    y = y - y[:, -1:]  # a flat window gives exactly 0 / 0, as in polars; the weights sum to 0
    centred = np.arange(w) - (w - 1) / 2.0
    cross = (y * centred).sum(axis=1)
    corr = cross / (w * math.sqrt((w * w - 1) / 12.0) * np.sqrt(y.var(axis=1, ddof=0)))
    result: FloatArray = np.where(np.isfinite(corr), np.clip(corr, -1.0, 1.0), 0.0)
    return result


def _donchian(x: NewestWindows) -> FloatArray:
    hh, ll = x.prior_extreme(48)
    return safe_div(x.c[:, -1] - (hh + ll) / 2.0, (hh - ll) / 2.0)


def _range_pos(x: NewestWindows) -> FloatArray:
    hh, ll = x.h[:, -48:].max(axis=1), x.l[:, -48:].min(axis=1)
    return safe_div(x.c[:, -1] - ll, hh - ll, 0.5)


def _vol_ratio(x: NewestWindows) -> FloatArray:
    rv12, rv72 = x.realized_vol(12), x.realized_vol(72)
    result: FloatArray = np.where((rv12 > 0) & (rv72 > 0), np.log(rv12 / rv72), 0.0)
    return result


def _squeeze_ratio(x: NewestWindows, back: int) -> FloatArray:
    end = x.m - back
    std20 = std_about_last(x.c[:, end - 20 : end], ddof=1)
    return safe_div(2.0 * std20, 1.5 * x.atr_at(back), default=1.0)


def _squeeze_recent(x: NewestWindows) -> FloatArray:
    below = [(_squeeze_ratio(x, back) < 1.0) for back in range(SQUEEZE_BARS)]
    recent: FloatArray = np.max(np.column_stack(below), axis=1).astype(np.float64)
    return recent


def _rsi(x: NewestWindows) -> FloatArray:
    alpha = 1.0 / RSI_BARS
    gain = x.ewm_last(np.maximum(x.diff, 0.0), alpha)
    loss = x.ewm_last(np.maximum(-x.diff, 0.0), alpha)
    return safe_div(gain, gain + loss, 0.5) * 100.0


def _macd_hist(x: NewestWindows) -> FloatArray:
    macd = x.ema(12) - x.ema(26)
    signal = (x.c * macd_signal_weights(x.m)).sum(axis=1)
    return safe_div(macd - signal, x.atr)


def _vwap_dev(x: NewestWindows) -> FloatArray:
    vol24 = x.volume_sum(24)
    tpv24 = ((x.h[:, -24:] + x.l[:, -24:] + x.c[:, -24:]) / 3.0 * x.v[:, -24:]).sum(axis=1)
    result: FloatArray = np.where(vol24 > 0.0, safe_div(x.c[:, -1] - tpv24 / vol24, x.atr), 0.0)
    return result


def _ribbon(x: NewestWindows) -> FloatArray:
    pairs = [(a, b) for i, a in enumerate(RIBBON_SPANS) for b in RIBBON_SPANS[i + 1 :]]
    quarter_atr = 0.25 * x.atr
    terms = [np.tanh(safe_div(x.ema(a) - x.ema(b), quarter_atr)) for a, b in pairs]
    total = terms[0]
    for term in terms[1:]:  # left to right, as pl.sum_horizontal adds
        total = total + term
    return total / len(pairs)


def _variance_ratio(x: NewestWindows) -> FloatArray:
    lc = x.log_close
    ms4 = np.square(lc[:, -72:] - lc[:, -76:-4]).mean(axis=1)
    return safe_div(ms4, 4.0 * x.mean_sq_return(72), 1.0)


def _money_flow(x: NewestWindows) -> FloatArray:
    flow = (x.close_location(12) * x.v[:, -12:]).sum(axis=1)
    return safe_div(flow, x.volume_sum(12))


def _obv_flow(x: NewestWindows) -> FloatArray:
    signed = (np.sign(x.lr1[:, -24:]) * x.v[:, -24:]).sum(axis=1)
    return safe_div(signed, x.volume_sum(24))


def _engulfing(x: NewestWindows) -> FloatArray:
    o, c = x.o[:, -1], x.c[:, -1]
    prev_o, prev_c = x.o[:, -2], x.c[:, -2]
    bull = (prev_c < prev_o) & (c > o) & (c >= prev_o) & (o <= prev_c)
    bear = (prev_c > prev_o) & (c < o) & (c <= prev_o) & (o >= prev_c)
    result: FloatArray = np.where(bull, 1.0, np.where(bear, -1.0, 0.0))
    return result


_FEATURES: Final[dict[str, FeatureFn]] = {
    **{f"log_ret_{k}": _log_ret(k) for k in (1, 4, 12, 24, 72)},
    **{f"realized_vol_{w}": _realized_vol(w) for w in (12, 24, 72)},
    "atr_14_pct": lambda x: x.atr / x.c[:, -1],
    "dollar_volume_usd": lambda x: x.dollar_volume[:, -1],
    "dollar_volume_mean_24_usd": lambda x: x.dollar_volume[:, -24:].mean(axis=1),
    "relative_volume_24": _relative_volume,
    "log_dollar_volume_z_168": _log_dollar_volume_z,
    "efficiency_ratio_24": _efficiency_ratio,
    "hl_range_log": lambda x: np.log(x.h[:, -1] / x.l[:, -1]),
    "close_location_value": _clv,
    "wick_imbalance": _wick_imbalance,
    "spread_cs_bps": _corwin_schultz,
    "spread_ar_bps": _abdi_ranaldo,
    "trend_corr_48": _trend_corr,
    "ma_gap_20_100_atr": _atr_ratio(lambda x: x.sma(20) - x.sma(100)),
    "donchian_pos_48": _donchian,
    "range_pos_48": _range_pos,
    "momentum_z_24": lambda x: safe_div(x.log_ret(24), x.realized_vol(24) * math.sqrt(24.0)),
    "momentum_z_12": lambda x: safe_div(x.log_ret(12), x.realized_vol(48) * math.sqrt(12.0)),
    "close_z_24": lambda x: safe_div(x.c[:, -1] - x.sma(24), x.std(24)),
    "support_dist_atr_72": _atr_ratio(lambda x: x.c[:, -1] - x.prior_extreme(72)[1]),
    "resistance_dist_atr_72": _atr_ratio(lambda x: x.prior_extreme(72)[0] - x.c[:, -1]),
    "vol_ratio_12_72": _vol_ratio,
    "squeeze_ratio_20": lambda x: _squeeze_ratio(x, 0),
    "squeeze_recent_6": _squeeze_recent,
    "close_sma20_atr": _atr_ratio(lambda x: x.c[:, -1] - x.sma(20)),
    "rsi_14": _rsi,
    "stoch_k_14": lambda x: x.stoch_k_at(1)[:, 0],
    "stoch_d_3": lambda x: x.stoch_k_at(3).mean(axis=1),
    "macd_hist_atr": _macd_hist,
    "vwap_dev_24_atr": _vwap_dev,
    "ema_ribbon_score": _ribbon,
    "ema_spread_5_21_atr": _atr_ratio(lambda x: x.ema(5) - x.ema(21)),
    "variance_ratio_4_72": _variance_ratio,
    "money_flow_12": _money_flow,
    "obv_flow_24": _obv_flow,
    "candle_body_atr": _atr_ratio(lambda x: x.c[:, -1] - x.o[:, -1]),
    "engulfing": _engulfing,
}
if set(_FEATURES) != set(FEATURE_COLUMNS):  # pragma: no cover - a definition was added
    raise RuntimeError(f"lastbar lacks {sorted(set(FEATURE_COLUMNS) - set(_FEATURES))}")
