"""Causal features over OHLCV bars, as polars expressions.

Every value at bar t is a function of bars <= t only: trailing (never centred) rolling windows,
``shift`` with positive offsets, exponential averages run forwards, no full-sample statistics.
Each feature has a declared warm-up (:data:`FEATURE_WARMUP_BARS`): it is null on exactly the
first ``warmup`` bars of a series and never null or NaN after them (degenerate denominators such
as a zero range or zero volume map to a stated neutral value, not NaN).

Finite windows reproduce their value exactly from any window that covers them (up to
floating-point summation order, ~1e-12 relative). Exponential averages (Wilder's ATR and RSI,
the MACD and ribbon EMAs) have infinite memory; their warm-up is the number of bars after which
the weight left outside a trailing window is below :data:`EMA_TAIL_WEIGHT` (1e-12), so a
trailing window of ``warmup_bars()`` bars reproduces them to ~1e-12 relative (tests assert
1e-9). References: Wilder (1978) "New Concepts in Technical Trading Systems" (ATR, RSI);
Kaufman (1995) "Smarter Trading" (efficiency ratio); Chaikin money flow / close location value;
Lo and MacKinlay (1988, RFS) variance ratio.

Multi-coin "long" frames are supported with ``by="symbol"``: every time-series expression is
evaluated per coin with ``.over(by)``.

These expressions are the definition (``compute_features_polars`` evaluates them); the product
path, ``compute_features``, runs the same formulas in one numba kernel
(:mod:`trading_core.features.compiled`), tested equal to them to 1e-9. A change here needs
the same change there.
"""

import functools
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import polars as pl

from trading_core.features.spread import abdi_ranaldo_spread_bps, corwin_schultz_spread_bps

EMA_TAIL_WEIGHT: Final = 1e-12
RETURN_HORIZONS_BARS: Final[tuple[int, ...]] = (1, 4, 12, 24, 72)
VOL_WINDOWS_BARS: Final[tuple[int, ...]] = (12, 24, 72)
ATR_BARS: Final = 14
RSI_BARS: Final = 14
SPREAD_WINDOW_BARS: Final = 24
RIBBON_SPANS: Final[tuple[int, ...]] = (5, 8, 13, 21)


def ewm_warmup_bars(alpha: float, tail_weight: float = EMA_TAIL_WEIGHT) -> int:
    """Bars after which an EMA with ``alpha`` keeps less than ``tail_weight`` on older data."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha {alpha!r} must be in (0, 1)")
    if not 0.0 < tail_weight < 1.0:
        raise ValueError(f"tail_weight {tail_weight!r} must be in (0, 1)")
    return math.ceil(math.log(tail_weight) / math.log1p(-alpha))


# Every EMA here has alpha >= 1/14 (Wilder 14; EMA span 26 has 2/27 > 1/14), so one warm-up
# covers them all; +1 because the first bar's true range / price change lacks a previous close.
EMA_WARMUP_BARS: Final = ewm_warmup_bars(1.0 / ATR_BARS) + 1

_I = "__bar_index"


def _safe_div(num: pl.Expr, den: pl.Expr, default: float = 0.0) -> pl.Expr:
    """num / den where den > 0, else ``default`` (keeps nulls of warm-up as nulls)."""
    return pl.when(den > 0.0).then(num / den).when(den.is_not_null()).then(default)


def _sign(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr > 0).then(1.0).when(expr < 0).then(-1.0).when(expr.is_not_null()).then(0.0)


def _stage_base(c: pl.Expr) -> dict[str, pl.Expr]:
    """Intermediates every stage uses (time-series ones are wrapped with .over by the caller)."""
    high, low, open_, volume = pl.col("high"), pl.col("low"), pl.col("open"), pl.col("volume")
    prev_close = c.shift(1)
    rng = high - low
    true_range = pl.max_horizontal(rng, (high - prev_close).abs(), (low - prev_close).abs())
    return {
        "__log_close": c.log(),
        "__lr1": c.log().diff(),
        "__diff": c.diff(),
        "__tr": true_range,
        "dollar_volume_usd": c * volume,
        "close_location_value": _safe_div((c - low) - (high - c), rng),
        "wick_imbalance": _safe_div(
            (pl.min_horizontal(open_, c) - low) - (high - pl.max_horizontal(open_, c)), rng
        ),
        "hl_range_log": (high / low).log(),
        "__tp_volume": (high + low + c) / 3.0 * volume,
    }


def _stage_rolling(c: pl.Expr) -> dict[str, pl.Expr]:
    high, low, open_, volume = pl.col("high"), pl.col("low"), pl.col("open"), pl.col("volume")
    lc, lr1, diff = pl.col("__log_close"), pl.col("__lr1"), pl.col("__diff")
    out: dict[str, pl.Expr] = {}
    for k in RETURN_HORIZONS_BARS:
        out[f"log_ret_{k}"] = lc - lc.shift(k)
    for w in (*VOL_WINDOWS_BARS, 48):
        out[f"__ms_{w}"] = lr1.pow(2).rolling_mean(w, min_samples=w)
    out["__atr"] = pl.col("__tr").ewm_mean(alpha=1.0 / ATR_BARS, adjust=True)
    out["__rsi_gain"] = diff.clip(lower_bound=0.0).ewm_mean(alpha=1.0 / RSI_BARS, adjust=True)
    out["__rsi_loss"] = (-diff).clip(lower_bound=0.0).ewm_mean(alpha=1.0 / RSI_BARS, adjust=True)
    for span in (*RIBBON_SPANS, 12, 26):
        out[f"__ema_{span}"] = c.ewm_mean(span=span, adjust=True)
    for w in (20, 24, 100):
        out[f"__sma_{w}"] = c.rolling_mean(w, min_samples=w)
    for w in (20, 24):
        out[f"__std_{w}"] = c.rolling_std(w, min_samples=w)
    out["__hh48p"] = high.shift(1).rolling_max(48, min_samples=48)
    out["__ll48p"] = low.shift(1).rolling_min(48, min_samples=48)
    out["__hh48"] = high.rolling_max(48, min_samples=48)
    out["__ll48"] = low.rolling_min(48, min_samples=48)
    out["__hh72p"] = high.shift(1).rolling_max(72, min_samples=72)
    out["__ll72p"] = low.shift(1).rolling_min(72, min_samples=72)
    out["__hh14"] = high.rolling_max(14, min_samples=14)
    out["__ll14"] = low.rolling_min(14, min_samples=14)
    out["__path24"] = diff.abs().rolling_sum(24, min_samples=24)
    out["__move24"] = (c - c.shift(24)).abs()
    out["__vol24"] = volume.rolling_sum(24, min_samples=24)
    out["__vol12"] = volume.rolling_sum(12, min_samples=12)
    out["dollar_volume_mean_24_usd"] = pl.col("dollar_volume_usd").rolling_mean(24, min_samples=24)
    ldv = pl.col("dollar_volume_usd").log1p()
    out["__ldv_mean"] = ldv.rolling_mean(168, min_samples=168)
    out["__ldv_std"] = ldv.rolling_std(168, min_samples=168)
    out["__ldv"] = ldv
    out["__mf12"] = (pl.col("close_location_value") * volume).rolling_sum(12, min_samples=12)
    out["__obv24"] = (_sign(lr1) * volume).rolling_sum(24, min_samples=24)
    out["__tpv24"] = pl.col("__tp_volume").rolling_sum(24, min_samples=24)
    out["__ms4_72"] = (lc - lc.shift(4)).pow(2).rolling_mean(72, min_samples=72)
    out["trend_corr_48"] = _time_correlation(lc, 48)
    out["spread_cs_bps"] = corwin_schultz_spread_bps(SPREAD_WINDOW_BARS)
    out["spread_ar_bps"] = abdi_ranaldo_spread_bps(SPREAD_WINDOW_BARS)
    prev_open, prev_close = open_.shift(1), c.shift(1)
    bull = (prev_close < prev_open) & (c > open_) & (c >= prev_open) & (open_ <= prev_close)
    bear = (prev_close > prev_open) & (c < open_) & (c <= prev_open) & (open_ >= prev_close)
    out["engulfing"] = (
        pl.when(bull).then(1.0).when(bear).then(-1.0).when(prev_close.is_not_null()).then(0.0)
    )
    return out


def _time_correlation(y: pl.Expr, window: int) -> pl.Expr:
    """Pearson correlation of ``y`` with time over a trailing window.

    sum((k - k_mean) y_k) is a fixed-weight filter (no global index, so a trailing window
    reproduces it exactly); var(k) = (w^2 - 1) / 12. A flat window (0/0) gives 0.
    """
    centred = [k - (window - 1) / 2.0 for k in range(window)]
    cross = y.rolling_sum(window, weights=centred, min_samples=window)
    y_var = y.rolling_var(window, min_samples=window, ddof=0)
    corr = cross / (window * math.sqrt((window * window - 1) / 12.0) * y_var.sqrt())
    return pl.when(corr.is_finite()).then(corr.clip(-1.0, 1.0)).when(corr.is_not_null()).then(0.0)


def _ribbon_score(atr: pl.Expr) -> pl.Expr:
    pairs = [(a, b) for i, a in enumerate(RIBBON_SPANS) for b in RIBBON_SPANS[i + 1 :]]
    terms = [
        _safe_div(pl.col(f"__ema_{a}") - pl.col(f"__ema_{b}"), 0.25 * atr).tanh() for a, b in pairs
    ]
    return pl.sum_horizontal(terms) / len(pairs)


def _stage_smoothed_inputs() -> dict[str, pl.Expr]:
    """Time-series steps on the rolling intermediates."""
    macd = pl.col("__ema_12") - pl.col("__ema_26")
    return {"__macd_signal": macd.ewm_mean(span=9, adjust=True)}


def _stage_derived(c: pl.Expr) -> dict[str, pl.Expr]:
    """Normalised features from the intermediates: element-wise only (no grouping needed)."""
    atr = pl.col("__atr")
    rv = {w: pl.col(f"__ms_{w}").sqrt() for w in (*VOL_WINDOWS_BARS, 48)}
    macd = pl.col("__ema_12") - pl.col("__ema_26")
    hh48p, ll48p = pl.col("__hh48p"), pl.col("__ll48p")
    squeeze_ratio = _safe_div(2.0 * pl.col("__std_20"), 1.5 * atr, default=1.0)
    stoch_k = _safe_div(c - pl.col("__ll14"), pl.col("__hh14") - pl.col("__ll14"), 0.5) * 100.0
    gain, loss = pl.col("__rsi_gain"), pl.col("__rsi_loss")
    out: dict[str, pl.Expr] = {f"realized_vol_{w}": rv[w] for w in VOL_WINDOWS_BARS}
    out |= {
        "atr_14_pct": atr / c,
        "efficiency_ratio_24": _safe_div(pl.col("__move24"), pl.col("__path24")),
        "relative_volume_24": _safe_div(pl.col("volume") * 24.0, pl.col("__vol24")),
        "log_dollar_volume_z_168": _safe_div(
            pl.col("__ldv") - pl.col("__ldv_mean"), pl.col("__ldv_std")
        ),
        "ma_gap_20_100_atr": _safe_div(pl.col("__sma_20") - pl.col("__sma_100"), atr),
        "donchian_pos_48": _safe_div(c - (hh48p + ll48p) / 2.0, (hh48p - ll48p) / 2.0),
        "range_pos_48": _safe_div(c - pl.col("__ll48"), pl.col("__hh48") - pl.col("__ll48"), 0.5),
        "momentum_z_24": _safe_div(pl.col("log_ret_24"), rv[24] * math.sqrt(24.0)),
        "momentum_z_12": _safe_div(pl.col("log_ret_12"), rv[48] * math.sqrt(12.0)),
        "close_z_24": _safe_div(c - pl.col("__sma_24"), pl.col("__std_24")),
        "support_dist_atr_72": _safe_div(c - pl.col("__ll72p"), atr),
        "resistance_dist_atr_72": _safe_div(pl.col("__hh72p") - c, atr),
        "vol_ratio_12_72": pl.when((rv[12] > 0) & (rv[72] > 0))
        .then((rv[12] / rv[72]).log())
        .when(rv[72].is_not_null())
        .then(0.0),
        "squeeze_ratio_20": squeeze_ratio,
        "close_sma20_atr": _safe_div(c - pl.col("__sma_20"), atr),
        "rsi_14": _safe_div(gain, gain + loss, 0.5) * 100.0,
        "stoch_k_14": stoch_k,
        "macd_hist_atr": _safe_div(macd - pl.col("__macd_signal"), atr),
        "vwap_dev_24_atr": pl.when(pl.col("__vol24") > 0.0)
        .then(_safe_div(c - pl.col("__tpv24") / pl.col("__vol24"), atr))
        .when(pl.col("__vol24").is_not_null())
        .then(0.0),
        "ema_ribbon_score": _ribbon_score(atr),
        "ema_spread_5_21_atr": _safe_div(pl.col("__ema_5") - pl.col("__ema_21"), atr),
        "variance_ratio_4_72": _safe_div(pl.col("__ms4_72"), 4.0 * pl.col("__ms_72"), 1.0),
        "money_flow_12": _safe_div(pl.col("__mf12"), pl.col("__vol12")),
        "obv_flow_24": _safe_div(pl.col("__obv24"), pl.col("__vol24")),
        "candle_body_atr": _safe_div(c - pl.col("open"), atr),
    }
    return out


def _stage_smoothed() -> dict[str, pl.Expr]:
    """Features that smooth a derived feature over a short trailing window."""
    return {
        "stoch_d_3": pl.col("stoch_k_14").rolling_mean(3, min_samples=3),
        "squeeze_recent_6": (pl.col("squeeze_ratio_20") < 1.0)
        .cast(pl.Float64)
        .rolling_max(6, min_samples=6),
    }


_W = EMA_WARMUP_BARS
FEATURE_WARMUP_BARS: Final[Mapping[str, int]] = MappingProxyType(
    {
        **{f"log_ret_{k}": k for k in RETURN_HORIZONS_BARS},
        **{f"realized_vol_{w}": w for w in VOL_WINDOWS_BARS},
        "atr_14_pct": _W,
        "dollar_volume_usd": 0,
        "dollar_volume_mean_24_usd": 23,
        "relative_volume_24": 23,
        "log_dollar_volume_z_168": 167,
        "efficiency_ratio_24": 24,
        "hl_range_log": 0,
        "close_location_value": 0,
        "wick_imbalance": 0,
        "spread_cs_bps": SPREAD_WINDOW_BARS,
        "spread_ar_bps": SPREAD_WINDOW_BARS,
        "trend_corr_48": 47,
        "ma_gap_20_100_atr": _W,
        "donchian_pos_48": 48,
        "range_pos_48": 47,
        "momentum_z_24": 24,
        "momentum_z_12": 48,
        "close_z_24": 23,
        "support_dist_atr_72": _W,
        "resistance_dist_atr_72": _W,
        "vol_ratio_12_72": 72,
        "squeeze_ratio_20": _W,
        "squeeze_recent_6": _W + 5,
        "close_sma20_atr": _W,
        "rsi_14": _W,
        "stoch_k_14": 13,
        "stoch_d_3": 15,
        "macd_hist_atr": _W,
        "vwap_dev_24_atr": _W,
        "ema_ribbon_score": _W,
        "ema_spread_5_21_atr": _W,
        "variance_ratio_4_72": 75,
        "money_flow_12": 11,
        "obv_flow_24": 24,
        "candle_body_atr": _W,
        "engulfing": 1,
    }
)
FEATURE_COLUMNS: Final[tuple[str, ...]] = tuple(FEATURE_WARMUP_BARS)


def warmup_bars() -> int:
    """The longest warm-up of any feature: bars before every feature is defined."""
    return max(FEATURE_WARMUP_BARS.values())


@functools.cache
def feature_stages(by: str | None = None) -> tuple[tuple[pl.Expr, ...], ...]:
    """The feature expressions in dependency order, each list one ``with_columns`` stage.

    With ``by`` every time-series expression is evaluated per group (``.over(by)``); element-wise
    expressions need no grouping.
    """

    def ts(expr: pl.Expr) -> pl.Expr:
        return expr if by is None else expr.over(by)

    c = pl.col("close")
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    base = _stage_base(c)
    time_series = {"__lr1", "__diff", "__tr"}
    stage0 = [ts(index).alias(_I)]
    stage0 += [(ts(e) if k in time_series else e).alias(k) for k, e in base.items()]
    stage1 = [ts(e).alias(k) for k, e in _stage_rolling(c).items()]
    stage1b = [ts(e).alias(k) for k, e in _stage_smoothed_inputs().items()]
    stage2 = [e.alias(k) for k, e in _stage_derived(c).items()]
    stage3 = [ts(e).alias(k) for k, e in _stage_smoothed().items()]
    masked = [
        pl.when(pl.col(_I) >= warm).then(pl.col(name)).alias(name)
        for name, warm in FEATURE_WARMUP_BARS.items()
    ]
    stages = (stage0, stage1, stage1b, stage2, stage3, masked)
    return tuple(tuple(stage) for stage in stages)


def apply_feature_stages(frame: pl.DataFrame, by: str | None = None) -> pl.DataFrame:
    """``frame`` with every stage's columns added (intermediates ``__*`` included).

    Eager on purpose: for an 800-bar Hamilton window the lazy planner costs more than the work.
    """
    for stage in feature_stages(by):
        frame = frame.with_columns(stage)
    return frame
