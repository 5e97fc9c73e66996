"""Volatility, liquidity, order-flow, volume, statistical, carry and relative-value engines."""

import math
from typing import Final

import numpy as np

from trading_core.engines.base import EngineContext, Features, FloatArray, ramp

Raw = tuple[FloatArray, FloatArray]

FUNDING_SCALE: Final = 3e-4  # 3 bps per 8h: a clearly rich (or cheap) perp
FUNDING_MEAN_BARS: Final = 8
RELATIVE_STRENGTH_BARS: Final = 24


def volatility(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Volatility expansion (12-bar over 72-bar realised vol) follows the 4-bar move."""
    expansion = ramp(x["vol_ratio_12_72"], 0.0, math.log(2.0))
    move = x["log_ret_4"] / (2.0 * x["realized_vol_12"])
    return np.tanh(move) * expansion, expansion


def liquidity(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Provide liquidity into capitulation: fade a large bar on abnormally high dollar volume."""
    surge = ramp(x["log_dollar_volume_z_168"], 1.0, 3.0)
    shock = x["log_ret_1"] / x["realized_vol_24"]
    return -np.tanh(shock / 2.0) * surge, surge * ramp(np.abs(shock), 0.0, 3.0)


def order_flow_imbalance(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Candle buy/sell pressure: volume-weighted close location over 12 bars (Chaikin)."""
    flow = x["money_flow_12"]
    signal = np.tanh(3.0 * flow)
    return signal, np.abs(signal) * ramp(x["relative_volume_24"], 0.0, 2.0)


def obv_trend(x: Features, ctx: EngineContext, n: int) -> Raw:
    """On-balance volume over 24 bars as a share of volume traded (Granville)."""
    flow = x["obv_flow_24"]
    return np.tanh(2.0 * flow), np.abs(flow)


def variance_ratio(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Lo-MacKinlay variance ratio VR(4) over 72 bars: follow the 12-bar move when returns
    trend (VR > 1), fade it when they revert (VR < 1)."""
    persistence = np.clip(2.0 * (x["variance_ratio_4_72"] - 1.0), -1.0, 1.0)
    move = np.tanh(x["momentum_z_12"] / 2.0)
    return move * persistence, np.abs(persistence)


def _aligned(values: FloatArray, n_bars: int, what: str) -> FloatArray:
    if values.shape != (n_bars,):
        raise ValueError(f"EngineContext.{what} has shape {values.shape}; expected ({n_bars},)")
    return values.astype(np.float64, copy=False)


def trailing_mean(values: FloatArray, window: int) -> FloatArray:
    """Mean of the last ``window`` values (NaN if any is NaN or fewer than ``window`` exist)."""
    out = np.full(values.shape, np.nan)
    if values.size < window:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(values, window)
    out[window - 1 :] = windows.mean(axis=1)
    return out


def funding_carry(x: Features, ctx: EngineContext, n: int) -> Raw:
    """Perp carry: short when longs pay rich funding, long when shorts pay (8-bar mean)."""
    if ctx.funding_rate is None:
        return np.full(n, np.nan), np.full(n, np.nan)
    aligned = _aligned(ctx.funding_rate, n, "funding_rate")
    funding = trailing_mean(aligned, FUNDING_MEAN_BARS)
    return -np.tanh(funding / FUNDING_SCALE), ramp(np.abs(funding), 0.0, FUNDING_SCALE)


def relative_strength_btc(x: Features, ctx: EngineContext, n: int) -> Raw:
    """24-bar return in excess of BTC's, in units of the coin's own 24-bar volatility."""
    if ctx.btc_close is None:
        return np.full(n, np.nan), np.full(n, np.nan)
    btc = _aligned(ctx.btc_close, n, "btc_close")
    k = RELATIVE_STRENGTH_BARS
    btc_return = np.full(n, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        btc_return[k:] = np.log(btc[k:] / btc[:-k])
    scale = x["realized_vol_24"] * math.sqrt(k)
    excess = (x["log_ret_24"] - btc_return) / scale
    return np.tanh(excess / 2.0), ramp(np.abs(excess), 0.0, 3.0)
