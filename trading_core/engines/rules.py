"""The 22 rule engines (fixed order: the ten seed engines first) and ``run_rule_engines``."""

from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from trading_core.engines import flow, reversion, trend
from trading_core.engines.base import (
    EngineContext,
    EngineSpec,
    Features,
    FloatArray,
    RawEngineFn,
    feature_arrays,
    guard_into,
    guarded,
    run_raw,
)
from trading_core.features.core import FEATURE_WARMUP_BARS
from trading_core.pooled import pooled_empty
from trading_core.types import Regime

T, R, P = Regime.TREND, Regime.RANGE, Regime.PANIC

# name, family, regimes, raw fn, feature inputs, extra warm-up bars beyond the inputs'
_RULES: Final[
    tuple[tuple[str, str, tuple[Regime, ...], RawEngineFn, tuple[str, ...], int], ...]
] = (
    ("trend_v1", "trend", (T,), trend.trend_v1, ("ma_gap_20_100_atr", "efficiency_ratio_24"), 0),
    ("trend_v2", "trend", (T,), trend.trend_v2, ("trend_corr_48",), 0),
    ("breakout", "breakout", (T, P), trend.breakout, ("donchian_pos_48", "relative_volume_24"), 0),
    ("momentum", "momentum", (T,), trend.momentum, ("momentum_z_24",), 0),
    ("mean_reversion", "mean_reversion", (R,), reversion.mean_reversion, ("close_z_24",), 0),
    (
        "range_trading",
        "range",
        (R,),
        reversion.range_trading,
        ("range_pos_48", "efficiency_ratio_24"),
        0,
    ),
    (
        "support_resistance",
        "range",
        (R,),
        reversion.support_resistance,
        ("support_dist_atr_72", "resistance_dist_atr_72", "close_location_value"),
        0,
    ),
    (
        "scalping",
        "microstructure",
        (R, P),
        reversion.scalping,
        ("wick_imbalance", "hl_range_log", "atr_14_pct", "spread_cs_bps"),
        0,
    ),
    (
        "volatility",
        "volatility",
        (P, T),
        flow.volatility,
        ("vol_ratio_12_72", "log_ret_4", "realized_vol_12"),
        0,
    ),
    (
        "liquidity",
        "liquidity",
        (P,),
        flow.liquidity,
        ("log_dollar_volume_z_168", "log_ret_1", "realized_vol_24"),
        0,
    ),
    ("funding_carry", "carry", (R, T), flow.funding_carry, (), flow.FUNDING_MEAN_BARS - 1),
    (
        "relative_strength_btc",
        "relative_value",
        (T, R),
        flow.relative_strength_btc,
        ("log_ret_24", "realized_vol_24"),
        0,
    ),
    (
        "order_flow_imbalance",
        "order_flow",
        (T, R, P),
        flow.order_flow_imbalance,
        ("money_flow_12", "relative_volume_24"),
        0,
    ),
    ("obv_trend", "volume", (T,), flow.obv_trend, ("obv_flow_24",), 0),
    (
        "volatility_squeeze",
        "volatility_breakout",
        (R, T),
        trend.volatility_squeeze,
        ("squeeze_recent_6", "squeeze_ratio_20", "close_sma20_atr"),
        0,
    ),
    ("rsi_oscillator", "oscillator", (R,), reversion.rsi_oscillator, ("rsi_14",), 0),
    ("stochastic", "oscillator", (R,), reversion.stochastic, ("stoch_k_14", "stoch_d_3"), 0),
    ("macd", "momentum", (T,), trend.macd, ("macd_hist_atr",), 0),
    ("vwap_reversion", "mean_reversion", (R, P), reversion.vwap_reversion, ("vwap_dev_24_atr",), 0),
    (
        "ema_ribbon",
        "trend",
        (T,),
        trend.ema_ribbon,
        ("ema_ribbon_score", "ema_spread_5_21_atr"),
        0,
    ),
    (
        "variance_ratio",
        "statistical",
        (T, R),
        flow.variance_ratio,
        ("variance_ratio_4_72", "momentum_z_12"),
        0,
    ),
    (
        "candle_pattern",
        "pattern",
        (R, P),
        reversion.candle_pattern,
        ("engulfing", "candle_body_atr"),
        0,
    ),
)


def _first_line(fn: RawEngineFn) -> str:
    doc = (fn.__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def _spec(
    name: str,
    family: str,
    regimes: tuple[Regime, ...],
    raw: RawEngineFn,
    inputs: tuple[str, ...],
    extra: int,
) -> EngineSpec:
    warmup = max((FEATURE_WARMUP_BARS[c] for c in inputs), default=0) + extra
    if name == "relative_strength_btc":
        warmup = max(warmup, flow.RELATIVE_STRENGTH_BARS)
    return EngineSpec(
        name=name,
        family=family,
        description=_first_line(raw),
        regimes=regimes,
        fn=guarded(raw, warmup, inputs),
        warmup_bars=warmup,
        inputs=inputs,
        raw_fn=raw,
    )


RULE_ENGINES: Final[tuple[EngineSpec, ...]] = tuple(_spec(*row) for row in _RULES)
RULE_ENGINE_NAMES: Final[tuple[str, ...]] = tuple(spec.name for spec in RULE_ENGINES)
SIGNAL_COLUMNS: Final[tuple[str, ...]] = tuple(f"sig_{n}" for n in RULE_ENGINE_NAMES)
CONFIDENCE_COLUMNS: Final[tuple[str, ...]] = tuple(f"conf_{n}" for n in RULE_ENGINE_NAMES)


RULE_INPUT_COLUMNS: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(c for spec in RULE_ENGINES for c in spec.inputs)
)


def rule_signal_arrays(
    features: Features,
    ctx: EngineContext,
    bar_index: npt.NDArray[np.integer],
    *,
    columns: int = len(RULE_ENGINES),
) -> tuple[FloatArray, FloatArray]:
    """Signals and confidences (n_bars, ``columns``) from feature arrays: the 22 rule engines
    in the first 22 columns, any further columns left for the caller to fill (ml_brain).

    ``bar_index`` is each row's position in its coin's history, which sets the warm-up; with a
    per-coin index one call covers a long multi-coin frame (ctx arrays aligned row by row):
    the only cross-row steps (BTC's 24-bar return, the 8-bar funding mean) reach back less
    than their engine's warm-up, so they never mix two coins in a live value.
    """
    if columns < len(RULE_ENGINES):
        raise ValueError(f"columns {columns} must be >= {len(RULE_ENGINES)} (the rule engines)")
    n = bar_index.shape[0]
    # Column-major: each engine writes one contiguous column.
    signals = pooled_empty((n, columns), fortran=True)  # see trading_core.pooled
    confidences = pooled_empty((n, columns), fortran=True)
    for j, spec in enumerate(RULE_ENGINES):
        assert spec.raw_fn is not None  # noqa: S101 - every rule spec is built with one
        raw_signal, raw_confidence = run_raw(spec.raw_fn, features, ctx, n)
        guard_into(
            raw_signal,
            raw_confidence,
            bar_index,
            spec.warmup_bars,
            signals[:, j],
            confidences[:, j],
        )
    return signals, confidences


def rule_arrays(
    bars_with_features: pl.DataFrame, ctx: EngineContext
) -> tuple[FloatArray, FloatArray]:
    """Signals and confidences of the 22 rule engines, each (n_bars, 22) float64."""
    features = feature_arrays(bars_with_features, RULE_INPUT_COLUMNS)
    return rule_signal_arrays(features, ctx, np.arange(bars_with_features.height))


def run_rule_engines(bars_with_features: pl.DataFrame, ctx: EngineContext) -> pl.DataFrame:
    """Columns ``sig_<name>`` (22) then ``conf_<name>`` (22), one row per bar, float64."""
    signals, confidences = rule_arrays(bars_with_features, ctx)
    data = {c: signals[:, j] for j, c in enumerate(SIGNAL_COLUMNS)}
    data |= {c: confidences[:, j] for j, c in enumerate(CONFIDENCE_COLUMNS)}
    return pl.DataFrame(data)
