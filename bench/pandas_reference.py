"""A straightforward pandas implementation of the same features, 22 rule signals and regimes.

The named peer of bench/features_engines.py: one coin at a time, pandas rolling/ewm, the same
formulas as trading_core.features / engines / regime written again from their docstrings. The
regime hysteresis is plain numpy here (the product's is a numba kernel).
"""

import math

import numpy as np
import pandas as pd

from trading_core.config.models import RegimeDetectionSection
from trading_core.engines.registry import ENGINE_REGISTRY
from trading_core.engines.rules import RULE_ENGINE_NAMES
from trading_core.features.core import FEATURE_WARMUP_BARS
from trading_core.regime.detector import (
    ILLIQUID,
    PANIC,
    RANGE,
    TREND,
    raw_warmup_bars,
)

_BY_PRIORITY = np.array([RANGE, TREND, PANIC, ILLIQUID], dtype=np.int8)  # ties go to the last


def _hysteresis(
    raw: np.ndarray, immediate: np.ndarray, hysteresis_bars: int, warmup_bars: int, memory: int
) -> np.ndarray:
    """Label of the latest confirmation (``hysteresis_bars`` equal raw labels in a row, a jump,
    or the warm-up) within ``memory`` bars; else the most frequent raw label of the last
    ``memory + 1`` bars (ties to the higher priority)."""
    idx = np.arange(raw.size)
    run_start = np.maximum.accumulate(np.where(np.r_[True, raw[1:] != raw[:-1]], idx, 0))
    confirmed = (idx - run_start + 1 >= hysteresis_bars) | immediate | (idx < warmup_bars)
    last = np.maximum.accumulate(np.where(confirmed, idx, -1))
    one_hot = (raw[:, None] == _BY_PRIORITY[None, :]).astype(np.int64)
    cumulative = np.vstack([np.zeros((1, 4), np.int64), np.cumsum(one_hot, axis=0)])
    counts = cumulative[idx + 1] - cumulative[np.maximum(idx - memory, 0)]
    mode = _BY_PRIORITY[np.argmax(counts * 4 + np.arange(4)[None, :], axis=1)]
    fresh = (last >= 0) & (idx - last <= memory)
    return np.where(fresh, raw[np.maximum(last, 0)], mode).astype(np.int8)


def _sdiv(num: pd.Series, den: pd.Series, default: float = 0.0) -> pd.Series:
    out = np.where(den > 0, num / den.where(den > 0), np.where(den.isna(), np.nan, default))
    return pd.Series(out, index=num.index)


def _base(df: pd.DataFrame) -> dict[str, pd.Series]:
    o, h, lo, c, v = (df[k] for k in ("open", "high", "low", "close", "volume"))
    lc = np.log(c)
    prev_c = c.shift(1)
    rng = h - lo
    f: dict[str, pd.Series] = {"lc": lc, "lr1": lc.diff(), "d": c.diff()}
    f["tr"] = pd.concat([rng, (h - prev_c).abs(), (lo - prev_c).abs()], axis=1).max(axis=1)
    f["dollar_volume_usd"] = c * v
    f["close_location_value"] = _sdiv((c - lo) - (h - c), rng)
    body_lo, body_hi = np.minimum(o, c), np.maximum(o, c)
    f["wick_imbalance"] = _sdiv((body_lo - lo) - (h - body_hi), rng)
    f["hl_range_log"] = np.log(h / lo)
    f["tpv"] = (h + lo + c) / 3.0 * v
    return f


def _spreads(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    h, lo, c = df["high"], df["low"], df["close"]
    c_prev = c.shift(1)
    gap = (lo - c_prev).clip(lower=0.0) + (h - c_prev).clip(upper=0.0)
    h1, l1 = h - gap, lo - gap
    k = 3.0 - 2.0 * math.sqrt(2.0)
    beta = np.log(h.shift(1) / lo.shift(1)) ** 2 + np.log(h1 / l1) ** 2
    gamma = np.log(np.maximum(h.shift(1), h1) / np.minimum(lo.shift(1), l1)) ** 2
    alpha = (np.sqrt(2 * beta) - np.sqrt(beta)) / k - np.sqrt(gamma / k)
    cs = (2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha))).clip(lower=0.0)
    eta = (np.log(h) + np.log(lo)) / 2
    moment = 4 * (np.log(c_prev) - eta.shift(1)) * (np.log(c_prev) - eta)
    ar = np.sqrt(moment.rolling(24).mean().clip(lower=0.0))
    return cs.rolling(24).mean() * 1e4, ar * 1e4


def _indicators(
    df: pd.DataFrame,
    b: dict[str, pd.Series],
    rv: dict[int, pd.Series],
    atr: pd.Series,
    gain_loss: tuple[pd.Series, pd.Series],
    ema: dict[int, pd.Series],
    sma: dict[int, pd.Series],
    std: dict[int, pd.Series],
) -> dict[str, pd.Series]:
    c, h, lo, v, o = df["close"], df["high"], df["low"], df["volume"], df["open"]
    lc, lr1 = b["lc"], b["lr1"]
    gain, loss = gain_loss
    hh48p, ll48p = h.shift(1).rolling(48).max(), lo.shift(1).rolling(48).min()
    hh48, ll48 = h.rolling(48).max(), lo.rolling(48).min()
    hh14, ll14 = h.rolling(14).max(), lo.rolling(14).min()
    vol24, vol12 = v.rolling(24).sum(), v.rolling(12).sum()
    out: dict[str, pd.Series] = {}
    out["log_ret_24"], out["log_ret_12"] = lc - lc.shift(24), lc - lc.shift(12)
    index = pd.Series(np.arange(len(df), dtype=np.float64), index=df.index)
    corr = index.rolling(48).corr(lc)
    out["trend_corr_48"] = corr.where(np.isfinite(corr), 0.0).where(corr.notna()).clip(-1, 1)
    out["ma_gap_20_100_atr"] = _sdiv(sma[20] - sma[100], atr)
    out["donchian_pos_48"] = _sdiv(c - (hh48p + ll48p) / 2, (hh48p - ll48p) / 2)
    out["range_pos_48"] = _sdiv(c - ll48, hh48 - ll48, 0.5)
    out["momentum_z_24"] = _sdiv(out["log_ret_24"], rv[24] * math.sqrt(24))
    out["momentum_z_12"] = _sdiv(out["log_ret_12"], rv[48] * math.sqrt(12))
    out["close_z_24"] = _sdiv(c - sma[24], std[24])
    out["support_dist_atr_72"] = _sdiv(c - lo.shift(1).rolling(72).min(), atr)
    out["resistance_dist_atr_72"] = _sdiv(h.shift(1).rolling(72).max() - c, atr)
    both = (rv[12] > 0) & (rv[72] > 0)
    out["vol_ratio_12_72"] = pd.Series(
        np.where(both, np.log(rv[12] / rv[72].where(both)), np.where(rv[72].isna(), np.nan, 0.0)),
        index=df.index,
    )
    out["squeeze_ratio_20"] = _sdiv(2 * std[20], 1.5 * atr, 1.0)
    out["close_sma20_atr"] = _sdiv(c - sma[20], atr)
    out["rsi_14"] = _sdiv(gain, gain + loss, 0.5) * 100
    out["stoch_k_14"] = _sdiv(c - ll14, hh14 - ll14, 0.5) * 100
    macd_line = ema[12] - ema[26]
    out["macd_hist_atr"] = _sdiv(macd_line - macd_line.ewm(span=9, adjust=True).mean(), atr)
    vwap = b["tpv"].rolling(24).sum() / vol24.where(vol24 > 0)
    dev = _sdiv(c - vwap, atr)
    out["vwap_dev_24_atr"] = dev.where(vol24 > 0, np.where(vol24.isna(), np.nan, 0.0))
    spans = (5, 8, 13, 21)
    pairs = [(a, s) for i, a in enumerate(spans) for s in spans[i + 1 :]]
    out["ema_ribbon_score"] = sum(np.tanh(_sdiv(ema[a] - ema[s], 0.25 * atr)) for a, s in pairs) / 6
    out["ema_spread_5_21_atr"] = _sdiv(ema[5] - ema[21], atr)
    ms4 = ((lc - lc.shift(4)) ** 2).rolling(72).mean()
    out["variance_ratio_4_72"] = _sdiv(ms4, 4 * rv[72] ** 2, 1.0)
    out["money_flow_12"] = _sdiv((b["close_location_value"] * v).rolling(12).sum(), vol12)
    out["obv_flow_24"] = _sdiv((np.sign(lr1) * v).rolling(24).sum(), vol24)
    out["candle_body_atr"] = _sdiv(c - o, atr)
    po, pc = o.shift(1), c.shift(1)
    bull = (pc < po) & (c > o) & (c >= po) & (o <= pc)
    bear = (pc > po) & (c < o) & (c <= po) & (o >= pc)
    out["engulfing"] = pd.Series(np.where(bull, 1.0, np.where(bear, -1.0, 0.0)), index=df.index)
    out["stoch_d_3"] = out["stoch_k_14"].rolling(3).mean()
    out["squeeze_recent_6"] = (out["squeeze_ratio_20"] < 1).astype(float).rolling(6).max()
    return out


def features_pandas(df: pd.DataFrame) -> pd.DataFrame:
    """The FEATURE_COLUMNS of trading_core.features for one coin, NaN in warm-up."""
    b = _base(df)
    c, v = df["close"], df["volume"]
    lc, lr1, d = b["lc"], b["lr1"], b["d"]
    out: dict[str, pd.Series] = {}
    for k in (1, 4, 12, 24, 72):
        out[f"log_ret_{k}"] = lc - lc.shift(k)
    rv = {w: np.sqrt((lr1**2).rolling(w).mean()) for w in (12, 24, 48, 72)}
    for w in (12, 24, 72):
        out[f"realized_vol_{w}"] = rv[w]
    atr = b["tr"].ewm(alpha=1 / 14, adjust=True).mean()
    gain = d.clip(lower=0).ewm(alpha=1 / 14, adjust=True).mean()
    loss = (-d).clip(lower=0).ewm(alpha=1 / 14, adjust=True).mean()
    ema = {s: c.ewm(span=s, adjust=True).mean() for s in (5, 8, 13, 21, 12, 26)}
    sma = {w: c.rolling(w).mean() for w in (20, 24, 100)}
    std = {w: c.rolling(w).std() for w in (20, 24)}
    vol24 = v.rolling(24).sum()
    out |= _indicators(df, b, rv, atr, (gain, loss), ema, sma, std)
    out["atr_14_pct"] = atr / c
    out["dollar_volume_usd"] = b["dollar_volume_usd"]
    out["dollar_volume_mean_24_usd"] = b["dollar_volume_usd"].rolling(24).mean()
    out["relative_volume_24"] = _sdiv(v * 24.0, vol24)
    ldv = np.log1p(b["dollar_volume_usd"])
    out["log_dollar_volume_z_168"] = _sdiv(ldv - ldv.rolling(168).mean(), ldv.rolling(168).std())
    out["efficiency_ratio_24"] = _sdiv((c - c.shift(24)).abs(), d.abs().rolling(24).sum())
    for name in ("hl_range_log", "close_location_value", "wick_imbalance"):
        out[name] = b[name]
    out["spread_cs_bps"], out["spread_ar_bps"] = _spreads(df)
    frame = pd.DataFrame({name: out[name] for name in FEATURE_WARMUP_BARS}, index=df.index)
    for name, warm in FEATURE_WARMUP_BARS.items():
        frame.iloc[:warm, frame.columns.get_loc(name)] = np.nan
    return frame


def _ramp(x: pd.Series, lo: float, hi: float) -> pd.Series:
    return ((x - lo) / (hi - lo)).clip(0.0, 1.0)


def signals_pandas(f: pd.DataFrame, btc_close: np.ndarray) -> pd.DataFrame:
    """The 22 rule signals (columns named like the engines), zero in warm-up / unknown."""
    s: dict[str, pd.Series] = {}
    s["trend_v1"] = np.tanh(f["ma_gap_20_100_atr"] / 2)
    r = f["trend_corr_48"]
    s["trend_v2"] = np.sign(r) * r * r
    p = f["donchian_pos_48"]
    s["breakout"] = np.sign(p) * _ramp(p.abs(), 0.9, 1.15)
    s["momentum"] = np.tanh(f["momentum_z_24"] / 2)
    s["mean_reversion"] = -np.tanh(f["close_z_24"] / 2)
    s["range_trading"] = -(2 * f["range_pos_48"] - 1) * (
        1 - _ramp(f["efficiency_ratio_24"], 0, 0.5)
    )
    ts, tr, clv = f["support_dist_atr_72"], f["resistance_dist_atr_72"], f["close_location_value"]
    ns = pd.Series(np.where(ts >= 0, np.exp(-ts.abs()), 0.0), index=f.index)
    nr = pd.Series(np.where(tr >= 0, np.exp(-tr.abs()), 0.0), index=f.index)
    s["support_resistance"] = (ns * (1 + clv) / 2 - nr * (1 - clv) / 2).where(
        ts.notna() & tr.notna()
    )
    width = f["hl_range_log"] / f["atr_14_pct"]
    s["scalping"] = f["wick_imbalance"] * (width / 2).clip(0, 1)
    expansion = _ramp(f["vol_ratio_12_72"], 0.0, math.log(2.0))
    s["volatility"] = np.tanh(f["log_ret_4"] / (2 * f["realized_vol_12"])) * expansion
    surge = _ramp(f["log_dollar_volume_z_168"], 1.0, 3.0)
    s["liquidity"] = -np.tanh(f["log_ret_1"] / f["realized_vol_24"] / 2) * surge
    s["funding_carry"] = pd.Series(np.nan, index=f.index)
    btc = pd.Series(btc_close, index=f.index)
    excess = (f["log_ret_24"] - np.log(btc / btc.shift(24))) / (
        f["realized_vol_24"] * math.sqrt(24)
    )
    s["relative_strength_btc"] = np.tanh(excess / 2)
    s["order_flow_imbalance"] = np.tanh(3 * f["money_flow_12"])
    s["obv_trend"] = np.tanh(2 * f["obv_flow_24"])
    released = (f["squeeze_recent_6"] >= 1) & (f["squeeze_ratio_20"] >= 1)
    dist = f["close_sma20_atr"]
    s["volatility_squeeze"] = released.astype(float).where(dist.notna()) * np.tanh(dist)
    rsi = f["rsi_14"]
    s["rsi_oscillator"] = _ramp(30 - rsi, 0, 20) - _ramp(rsi - 70, 0, 20)
    k, dd = f["stoch_k_14"], f["stoch_d_3"]
    cross = ((k - dd) / 10).clip(-1, 1)
    side = pd.Series(np.where(cross > 0, dd < 50, dd > 50), index=f.index)
    s["stochastic"] = cross * side * _ramp((dd - 50).abs(), 0, 30)
    s["macd"] = np.tanh(f["macd_hist_atr"] / 0.25)
    s["vwap_reversion"] = -np.tanh(f["vwap_dev_24_atr"] / 2)
    s["ema_ribbon"] = f["ema_ribbon_score"] * f["ema_spread_5_21_atr"].abs().clip(0, 1)
    persistence = (2 * (f["variance_ratio_4_72"] - 1)).clip(-1, 1)
    s["variance_ratio"] = np.tanh(f["momentum_z_12"] / 2) * persistence
    s["candle_pattern"] = f["engulfing"] * (f["candle_body_atr"].abs() / 1.5).clip(0, 1)
    out = pd.DataFrame({n: s[n] for n in RULE_ENGINE_NAMES}, index=f.index)
    out = out.replace([np.inf, -np.inf], np.nan).clip(-1, 1).fillna(0.0)
    for name in RULE_ENGINE_NAMES:
        out.iloc[: ENGINE_REGISTRY[name].warmup_bars, out.columns.get_loc(name)] = 0.0
    return out


def regimes_pandas(df: pd.DataFrame, detection: RegimeDetectionSection) -> np.ndarray:
    """Regime codes per bar, same rules as trading_core.regime.detect_regimes (defaults)."""
    window, lookback = detection.percentile_window_bars, detection.lookback_bars
    lc = np.log(df["close"])
    lr1 = lc.diff()
    vol = np.sqrt((lr1**2).rolling(24).mean())
    vol_q = vol.rolling(window).quantile(detection.panic_vol_percentile, interpolation="linear")
    dv = (df["close"] * df["volume"]).rolling(24).mean()
    dv_q = dv.rolling(window).quantile(detection.illiquid_volume_percentile, interpolation="linear")
    efficiency = ((lc - lc.shift(lookback)).abs() / lr1.abs().rolling(lookback).sum()).fillna(0)
    illiquid = ((dv <= 0) | (dv < dv_q)).to_numpy()
    jump = (lr1.abs() > detection.panic_jump_sigma * vol.shift(1)).to_numpy().copy()
    panic = (vol > vol_q).to_numpy() | jump
    trend = (efficiency >= detection.trend_strength_threshold).to_numpy()
    raw = np.select([illiquid, panic, trend], [ILLIQUID, PANIC, TREND], RANGE).astype(np.int8)
    warm = raw_warmup_bars(detection)
    raw[:warm] = ILLIQUID
    jump[:warm] = False
    return _hysteresis(
        raw, jump & (raw == PANIC), detection.hysteresis_bars, warm, detection.state_memory_bars
    )


def pipeline_pandas(
    df: pd.DataFrame, btc_close: np.ndarray, detection: RegimeDetectionSection
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Features, rule signals and regimes of one coin."""
    features = features_pandas(df)
    full = pd.concat([df, features], axis=1)
    return features, signals_pandas(full, btc_close), regimes_pandas(df, detection)
