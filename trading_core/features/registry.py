"""The feature registry: every feature declared once, everything else derived from it.

A :class:`Feature` holds a feature's name, its warm-up (the bars at the start of a series on
which it is null), its polars definition (an expression and the stage it runs in), its column
in the compiled kernel's matrix and its newest-bar function. From :data:`FEATURES` come

* :data:`FEATURE_COLUMNS` (the output and model column order: the declaration order) and
  :data:`FEATURE_WARMUP_BARS`;
* the polars path's stages (:func:`trading_core.features.core.feature_stages`);
* the kernel's column order :data:`KERNEL_COLUMNS` (features by ``kernel_slot``), the warm-up
  mask and the naming of its columns (:mod:`trading_core.features.compute`);
* the newest-bar path (:func:`trading_core.features.lastbar.newest_bar_features`);
* the parity tests (polars vs kernel vs newest bar, warm-up nulls), parametrized over
  :data:`FEATURES` in ``tests/unit/trading_core/features/test_features_registry.py``.

Adding a feature:

1. declare it at the end of :data:`FEATURES`: name, warm-up, stage, polars expression (shared
   ``__*`` intermediates live in :mod:`~trading_core.features.expressions`), the next free
   ``kernel_slot`` and the newest-bar function (one line here, or a function in
   :mod:`~trading_core.features.lastbar_formulas`; intermediates in
   :mod:`~trading_core.features.lastbar_windows`);
2. write its kernel code in :mod:`~trading_core.features.compiled` (``out[t, slot] = ...``)
   and delete the numba caches (``find trading_core -name "*.nb[ic]" -delete``).

The parity tests then cover it with no edit. A new feature changes the model's columns (new
model bytes); the declared order of the existing ones must not change.
"""

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np
import polars as pl

from trading_core.features import lastbar_formulas as nb
from trading_core.features.expressions import (
    EMA_WARMUP_BARS,
    RETURN_HORIZONS_BARS,
    SPREAD_WINDOW_BARS,
    VOL_WINDOWS_BARS,
    col,
    engulfing,
    realized_vol,
    ribbon_score,
    safe_div,
    time_correlation,
)
from trading_core.features.lastbar_formulas import NewestFn, atr_ratio
from trading_core.features.lastbar_windows import safe_div as np_div
from trading_core.features.spread import abdi_ranaldo_spread_bps, corwin_schultz_spread_bps


class Stage(enum.IntEnum):
    """When a polars definition runs (each stage is one ``with_columns`` over the previous)."""

    BASE = 0  # element-wise on the bars
    ROLLING = 1  # a time series over the bars and the base columns (``.over(by)``)
    DERIVED = 2  # element-wise on the rolling intermediates and features
    SMOOTHED = 3  # a time series over derived features (``.over(by)``)


@dataclass(frozen=True)
class Feature:
    """One feature: null on exactly its first ``warmup_bars`` bars, finite after them."""

    name: str
    warmup_bars: int
    stage: Stage
    polars: Callable[[], pl.Expr]
    kernel_slot: int
    newest: NewestFn


_W = EMA_WARMUP_BARS
_S = Stage
_C, _O, _V = col("close"), col("open"), col("volume")


def _log_ret(k: int, slot: int) -> Feature:
    lc = col("__log_close")
    return Feature(
        f"log_ret_{k}", k, _S.ROLLING, lambda: lc - lc.shift(k), slot, lambda x: x.log_ret(k)
    )


def _realized_vol(w: int, slot: int) -> Feature:
    return Feature(
        f"realized_vol_{w}",
        w,
        _S.DERIVED,
        lambda: realized_vol(w),
        slot,
        lambda x: x.realized_vol(w),
    )


def _atr_feature(name: str, slot: int, polars_num: pl.Expr, newest_num: NewestFn) -> Feature:
    """A distance in ATRs: ``num / ATR`` (0 where the ATR is 0), warm with the EMAs."""
    return Feature(
        name,
        _W,
        _S.DERIVED,
        lambda: safe_div(polars_num, col("__atr")),
        slot,
        atr_ratio(newest_num),
    )


def _clv() -> pl.Expr:
    return safe_div((_C - col("low")) - (col("high") - _C), col("high") - col("low"))


def _hl_range() -> pl.Expr:
    return (col("high") / col("low")).log()


def _wick_expr() -> pl.Expr:
    body_lo, body_hi = pl.min_horizontal(_O, _C), pl.max_horizontal(_O, _C)
    return safe_div((body_lo - col("low")) - (col("high") - body_hi), col("high") - col("low"))


def _vol_ratio() -> pl.Expr:
    rv12, rv72 = realized_vol(12), realized_vol(72)
    log_ratio = (rv12 / rv72).log()
    return pl.when((rv12 > 0) & (rv72 > 0)).then(log_ratio).when(rv72.is_not_null()).then(0.0)


def _vwap_dev() -> pl.Expr:
    vol24 = col("__vol24")
    return (
        pl.when(vol24 > 0.0)
        .then(safe_div(_C - col("__tpv24") / vol24, col("__atr")))
        .when(vol24.is_not_null())
        .then(0.0)
    )


def _stoch_k() -> pl.Expr:
    return safe_div(_C - col("__ll14"), col("__hh14") - col("__ll14"), 0.5) * 100.0


def _rsi() -> pl.Expr:
    gain, loss = col("__rsi_gain"), col("__rsi_loss")
    return safe_div(gain, gain + loss, 0.5) * 100.0


def _donchian() -> pl.Expr:
    hh48p, ll48p = col("__hh48p"), col("__ll48p")
    return safe_div(_C - (hh48p + ll48p) / 2.0, (hh48p - ll48p) / 2.0)


_MACD = col("__ema_12") - col("__ema_26")

FEATURES: Final[tuple[Feature, ...]] = (
    *(_log_ret(k, j) for j, k in enumerate(RETURN_HORIZONS_BARS)),
    *(_realized_vol(w, 5 + j) for j, w in enumerate(VOL_WINDOWS_BARS)),
    Feature(
        "atr_14_pct", _W, _S.DERIVED, lambda: col("__atr") / _C, 8, lambda x: x.atr / x.c[:, -1]
    ),
    Feature("dollar_volume_usd", 0, _S.BASE, lambda: _C * _V, 9, lambda x: x.dollar_volume[:, -1]),
    Feature(
        "dollar_volume_mean_24_usd", 23, _S.ROLLING,
        lambda: col("dollar_volume_usd").rolling_mean(24, min_samples=24),
        10, lambda x: x.dollar_volume[:, -24:].mean(axis=1),
    ),
    Feature(
        "relative_volume_24", 23, _S.DERIVED, lambda: safe_div(_V * 24.0, col("__vol24")),
        11, lambda x: np_div(x.v[:, -1] * 24.0, x.volume_sum(24)),
    ),
    Feature(
        "log_dollar_volume_z_168", 167, _S.DERIVED,
        lambda: safe_div(col("__ldv") - col("__ldv_mean"), col("__ldv_std")),
        12, nb.log_dollar_volume_z,
    ),
    Feature(
        "efficiency_ratio_24", 24, _S.DERIVED,
        lambda: safe_div(col("__move24"), col("__path24")), 13, nb.efficiency_ratio,
    ),
    Feature(
        "hl_range_log", 0, _S.BASE, _hl_range,
        14, lambda x: np.log(x.h[:, -1] / x.l[:, -1]),
    ),
    Feature(
        "close_location_value", 0, _S.BASE, _clv,
        15, lambda x: x.close_location(1)[:, 0],
    ),
    Feature("wick_imbalance", 0, _S.BASE, _wick_expr, 16, nb.wick_imbalance),
    Feature(
        "spread_cs_bps", SPREAD_WINDOW_BARS, _S.ROLLING,
        lambda: corwin_schultz_spread_bps(SPREAD_WINDOW_BARS), 17, nb.corwin_schultz,
    ),
    Feature(
        "spread_ar_bps", SPREAD_WINDOW_BARS, _S.ROLLING,
        lambda: abdi_ranaldo_spread_bps(SPREAD_WINDOW_BARS), 18, nb.abdi_ranaldo,
    ),
    Feature(
        "trend_corr_48", 47, _S.ROLLING, lambda: time_correlation(col("__log_close"), 48),
        19, nb.trend_corr,
    ),
    _atr_feature(
        "ma_gap_20_100_atr", 20, col("__sma_20") - col("__sma_100"),
        lambda x: x.sma(20) - x.sma(100),
    ),
    Feature("donchian_pos_48", 48, _S.DERIVED, _donchian, 21, nb.donchian),
    Feature(
        "range_pos_48", 47, _S.DERIVED,
        lambda: safe_div(_C - col("__ll48"), col("__hh48") - col("__ll48"), 0.5),
        22, nb.range_pos,
    ),
    Feature(
        "momentum_z_24", 24, _S.DERIVED,
        lambda: safe_div(col("log_ret_24"), realized_vol(24) * math.sqrt(24.0)),
        23, lambda x: np_div(x.log_ret(24), x.realized_vol(24) * math.sqrt(24.0)),
    ),
    Feature(
        "momentum_z_12", 48, _S.DERIVED,
        lambda: safe_div(col("log_ret_12"), realized_vol(48) * math.sqrt(12.0)),
        24, lambda x: np_div(x.log_ret(12), x.realized_vol(48) * math.sqrt(12.0)),
    ),
    Feature(
        "close_z_24", 23, _S.DERIVED, lambda: safe_div(_C - col("__sma_24"), col("__std_24")),
        25, lambda x: np_div(x.c[:, -1] - x.sma(24), x.std(24)),
    ),
    _atr_feature(
        "support_dist_atr_72", 26, _C - col("__ll72p"),
        lambda x: x.c[:, -1] - x.prior_extreme(72)[1],
    ),
    _atr_feature(
        "resistance_dist_atr_72", 27, col("__hh72p") - _C,
        lambda x: x.prior_extreme(72)[0] - x.c[:, -1],
    ),
    Feature("vol_ratio_12_72", 72, _S.DERIVED, _vol_ratio, 28, nb.vol_ratio),
    Feature(
        "squeeze_ratio_20", _W, _S.DERIVED,
        lambda: safe_div(2.0 * col("__std_20"), 1.5 * col("__atr"), default=1.0),
        29, nb.squeeze_ratio,
    ),
    Feature(
        "squeeze_recent_6", _W + 5, _S.SMOOTHED,
        lambda: (col("squeeze_ratio_20") < 1.0).cast(pl.Float64).rolling_max(6, min_samples=6),
        30, nb.squeeze_recent,
    ),
    _atr_feature("close_sma20_atr", 31, _C - col("__sma_20"), lambda x: x.c[:, -1] - x.sma(20)),
    Feature("rsi_14", _W, _S.DERIVED, _rsi, 32, nb.rsi),
    Feature("stoch_k_14", 13, _S.DERIVED, _stoch_k, 33, lambda x: x.stoch_k_at(1)[:, 0]),
    Feature(
        "stoch_d_3", 15, _S.SMOOTHED, lambda: col("stoch_k_14").rolling_mean(3, min_samples=3),
        34, lambda x: x.stoch_k_at(3).mean(axis=1),
    ),
    Feature(
        "macd_hist_atr", _W, _S.DERIVED,
        lambda: safe_div(_MACD - col("__macd_signal"), col("__atr")), 35, nb.macd_hist,
    ),
    Feature("vwap_dev_24_atr", _W, _S.DERIVED, _vwap_dev, 36, nb.vwap_dev),
    Feature("ema_ribbon_score", _W, _S.DERIVED, ribbon_score, 37, nb.ribbon),
    _atr_feature(
        "ema_spread_5_21_atr", 38, col("__ema_5") - col("__ema_21"),
        lambda x: x.ema(5) - x.ema(21),
    ),
    Feature(
        "variance_ratio_4_72", 75, _S.DERIVED,
        lambda: safe_div(col("__ms4_72"), 4.0 * col("__ms_72"), 1.0), 39, nb.variance_ratio,
    ),
    Feature(
        "money_flow_12", 11, _S.DERIVED, lambda: safe_div(col("__mf12"), col("__vol12")),
        40, nb.money_flow,
    ),
    Feature(
        "obv_flow_24", 24, _S.DERIVED, lambda: safe_div(col("__obv24"), col("__vol24")),
        41, nb.obv_flow,
    ),
    _atr_feature("candle_body_atr", 42, _C - _O, lambda x: x.c[:, -1] - x.o[:, -1]),
    Feature("engulfing", 1, _S.ROLLING, engulfing, 43, nb.engulfing),
)  # fmt: skip

FEATURE_COLUMNS: Final[tuple[str, ...]] = tuple(f.name for f in FEATURES)
FEATURE_WARMUP_BARS: Final[Mapping[str, int]] = MappingProxyType(
    {f.name: f.warmup_bars for f in FEATURES}
)
FEATURE_BY_NAME: Final[Mapping[str, Feature]] = MappingProxyType({f.name: f for f in FEATURES})
KERNEL_COLUMNS: Final[tuple[str, ...]] = tuple(
    f.name for f in sorted(FEATURES, key=lambda f: f.kernel_slot)
)


def warmup_bars() -> int:
    """The longest warm-up of any feature: bars before every feature is defined."""
    return max(FEATURE_WARMUP_BARS.values())


def _check_registry() -> None:
    if len(FEATURE_BY_NAME) != len(FEATURES):  # pragma: no cover - a declaration error
        raise RuntimeError(f"feature names repeat: {FEATURE_COLUMNS}")
    slots = sorted(f.kernel_slot for f in FEATURES)
    if slots != list(range(len(FEATURES))):  # pragma: no cover - a declaration error
        raise RuntimeError(f"kernel slots must be 0..{len(FEATURES) - 1} once each: {slots}")


_check_registry()
