"""Trend, momentum and breakout engines: they bet that a move continues.

Each raw engine maps feature columns (see trading_core.features) to a raw signal and confidence;
``guarded`` in the registry zeroes the warm-up and clips to range.
"""

import numpy as np

from trading_core.engines.base import EngineContext, Features, FloatArray, ramp

Raw = tuple[FloatArray, FloatArray]


def trend_v1(x: Features, ctx: EngineContext, n: int) -> Raw:
    """SMA(20) - SMA(100) gap in ATRs; confidence grows with the efficiency ratio."""
    gap = x["ma_gap_20_100_atr"]
    signal = np.tanh(gap / 2.0)
    er = x["efficiency_ratio_24"]
    return signal, np.abs(signal) * (0.5 + 0.5 * ramp(er, 0.0, 0.5))


def trend_v2(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Signed R^2 of log price on time over 48 bars (linear-regression trend)."""
    r = x["trend_corr_48"]
    return np.sign(r) * r * r, r * r


def momentum(x: Features, ctx: EngineContext, n: int) -> Raw:
    """24-bar return in units of its realised volatility (time-series momentum)."""
    z = x["momentum_z_24"]
    return np.tanh(z / 2.0), ramp(np.abs(z), 0.0, 3.0)


def macd(x: Features, ctx: EngineContext, n: int) -> Raw:
    """MACD(12, 26, 9) histogram in ATRs (Appel)."""
    hist = x["macd_hist_atr"]
    return np.tanh(hist / 0.25), ramp(np.abs(hist), 0.0, 0.5)


def ema_ribbon(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Ordering of EMAs 5/8/13/21 scaled by the fast-slow spread in ATRs."""
    score = x["ema_ribbon_score"]
    spread = x["ema_spread_5_21_atr"]
    return score * np.clip(np.abs(spread), 0.0, 1.0), np.abs(score)


def breakout(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Close beyond the previous 48-bar Donchian channel; volume adds confidence."""
    pos = x["donchian_pos_48"]
    signal = np.sign(pos) * ramp(np.abs(pos), 0.9, 1.15)
    rel_volume = x["relative_volume_24"]
    return signal, np.abs(signal) * np.clip(0.5 + 0.25 * rel_volume, 0.0, 1.0)


def volatility_squeeze(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Bollinger(20, 2) inside Keltner(20, 1.5 ATR) within 6 bars and released now: follow the
    side of the close versus its 20-bar mean (Carter's squeeze)."""
    released = (x["squeeze_recent_6"] >= 1.0) & (x["squeeze_ratio_20"] >= 1.0)
    distance = x["close_sma20_atr"]
    on = np.where(np.isnan(distance), np.nan, released.astype(np.float64))
    return on * np.tanh(distance), on * ramp(np.abs(distance), 0.0, 2.0)
