"""Mean-reversion, range and oscillator engines: they bet that a stretch snaps back."""

import numpy as np

from trading_core.engines.base import EngineContext, Features, FloatArray, ramp

Raw = tuple[FloatArray, FloatArray]


def mean_reversion(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Fade the close's z-score against its 24-bar mean and deviation."""
    z = x["close_z_24"]
    return -np.tanh(z / 2.0), ramp(np.abs(z), 1.0, 3.0)


def range_trading(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Sell the top / buy the bottom of the 48-bar range, only as much as the market is not
    trending (low efficiency ratio)."""
    centred = 2.0 * x["range_pos_48"] - 1.0
    ranging = 1.0 - ramp(x["efficiency_ratio_24"], 0.0, 0.5)
    return -centred * ranging, np.abs(centred) * ranging


def support_resistance(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Bounce off the previous 72-bar low (support) or high (resistance), confirmed by where
    the bar closed in its range; a broken level gives no bounce."""
    to_support = x["support_dist_atr_72"]
    to_resistance = x["resistance_dist_atr_72"]
    clv = x["close_location_value"]
    near_support = np.where(to_support >= 0.0, np.exp(-np.abs(to_support)), 0.0)
    near_resistance = np.where(to_resistance >= 0.0, np.exp(-np.abs(to_resistance)), 0.0)
    signal = near_support * (1.0 + clv) / 2.0 - near_resistance * (1.0 - clv) / 2.0
    unknown = np.isnan(to_support) | np.isnan(to_resistance)
    return np.where(unknown, np.nan, signal), np.maximum(near_support, near_resistance)


def rsi_oscillator(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Wilder RSI(14): buy below 30, sell above 70, silent in between."""
    rsi = x["rsi_14"]
    signal = ramp(30.0 - rsi, 0.0, 20.0) - ramp(rsi - 70.0, 0.0, 20.0)
    return signal, np.abs(signal)


def stochastic(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Stochastic %K(14) crossing %D(3) on the oversold (buy) or overbought (sell) side."""
    k, d = x["stoch_k_14"], x["stoch_d_3"]
    cross = np.clip((k - d) / 10.0, -1.0, 1.0)
    right_side = np.where(cross > 0.0, d < 50.0, d > 50.0)
    extreme = ramp(np.abs(d - 50.0), 0.0, 30.0)
    signal = cross * right_side * extreme
    return signal, extreme * np.abs(cross)


def vwap_reversion(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Fade the distance of the close from its 24-bar VWAP, in ATRs."""
    dev = x["vwap_dev_24_atr"]
    return -np.tanh(dev / 2.0), ramp(np.abs(dev), 0.0, 3.0)


def scalping(x: Features, ctx: EngineContext, n: int) -> Raw:
    """One-bar wick rejection: a long lower (upper) wick on a wide bar buys (sells); the
    estimated spread against the ATR lowers confidence."""
    wick = x["wick_imbalance"]
    width = x["hl_range_log"] / x["atr_14_pct"]
    signal = wick * np.clip(width / 2.0, 0.0, 1.0)
    spread_to_atr = x["spread_cs_bps"] / 10_000.0 / x["atr_14_pct"]
    return signal, np.abs(signal) * np.clip(1.0 - 2.0 * spread_to_atr, 0.0, 1.0)


def candle_pattern(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Bullish / bearish engulfing candle, weighted by its body in ATRs (Nison)."""
    engulfing = x["engulfing"]
    body = np.abs(x["candle_body_atr"])
    signal = engulfing * np.clip(body / 1.5, 0.0, 1.0)
    return signal, np.abs(signal)
