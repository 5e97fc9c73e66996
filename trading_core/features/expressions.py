"""The polars building blocks of the feature definitions: parameters, helpers, intermediates.

Every value at bar t is a function of bars <= t only: trailing (never centred) rolling windows,
``shift`` with positive offsets, exponential averages run forwards, no full-sample statistics.
The features themselves are declared in :mod:`trading_core.features.registry` (each one's
polars expression beside its warm-up, kernel slot and newest-bar function); this module holds
what they share: the ``__*`` intermediates (rolling sums, EMAs, channels), computed once per
stage and dropped from the output, and the helpers the expressions use.

Exponential averages (Wilder's ATR and RSI, the MACD and ribbon EMAs) have infinite memory;
their warm-up is the number of bars after which the weight left outside a trailing window is
below :data:`EMA_TAIL_WEIGHT` (1e-12). References: Wilder (1978) "New Concepts in Technical
Trading Systems" (ATR, RSI); Kaufman (1995) "Smarter Trading" (efficiency ratio); Chaikin money
flow / close location value; Lo and MacKinlay (1988, RFS) variance ratio.
"""

import math
from typing import Final

import polars as pl

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

# Intermediates that are time series (wrapped with ``.over(by)``) in the base stage.
BASE_TIME_SERIES: Final = frozenset({"__lr1", "__diff", "__tr"})


def safe_div(num: pl.Expr, den: pl.Expr, default: float = 0.0) -> pl.Expr:
    """num / den where den > 0, else ``default`` (keeps nulls of warm-up as nulls)."""
    return pl.when(den > 0.0).then(num / den).when(den.is_not_null()).then(default)


def sign(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr > 0).then(1.0).when(expr < 0).then(-1.0).when(expr.is_not_null()).then(0.0)


def col(name: str) -> pl.Expr:
    """A column (``pl.col``), short for the declarations."""
    return pl.col(name)


def base_intermediates() -> dict[str, pl.Expr]:
    """Intermediates every stage uses (those in :data:`BASE_TIME_SERIES` are time series)."""
    c, high, low, volume = col("close"), col("high"), col("low"), col("volume")
    prev_close = c.shift(1)
    rng = high - low
    true_range = pl.max_horizontal(rng, (high - prev_close).abs(), (low - prev_close).abs())
    return {
        "__log_close": c.log(),
        "__lr1": c.log().diff(),
        "__diff": c.diff(),
        "__tr": true_range,
        "__tp_volume": (high + low + c) / 3.0 * volume,
    }


def rolling_intermediates() -> dict[str, pl.Expr]:
    """Trailing-window and exponential intermediates (all time series)."""
    c, high, low, volume = col("close"), col("high"), col("low"), col("volume")
    lc, lr1, diff = col("__log_close"), col("__lr1"), col("__diff")
    out: dict[str, pl.Expr] = {}
    for w in (*VOL_WINDOWS_BARS, 48):
        out[f"__ms_{w}"] = lr1.pow(2).rolling_mean(w, min_samples=w)
    out["__atr"] = col("__tr").ewm_mean(alpha=1.0 / ATR_BARS, adjust=True)
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
    ldv = col("dollar_volume_usd").log1p()
    out["__ldv_mean"] = ldv.rolling_mean(168, min_samples=168)
    out["__ldv_std"] = ldv.rolling_std(168, min_samples=168)
    out["__ldv"] = ldv
    out["__mf12"] = (col("close_location_value") * volume).rolling_sum(12, min_samples=12)
    out["__obv24"] = (sign(lr1) * volume).rolling_sum(24, min_samples=24)
    out["__tpv24"] = col("__tp_volume").rolling_sum(24, min_samples=24)
    out["__ms4_72"] = (lc - lc.shift(4)).pow(2).rolling_mean(72, min_samples=72)
    return out


def smoothed_intermediates() -> dict[str, pl.Expr]:
    """Time-series steps on the rolling intermediates."""
    macd = col("__ema_12") - col("__ema_26")
    return {"__macd_signal": macd.ewm_mean(span=9, adjust=True)}


def realized_vol(w: int) -> pl.Expr:
    """Root mean square log return over ``w`` bars (from the rolling intermediates)."""
    return col(f"__ms_{w}").sqrt()


def time_correlation(y: pl.Expr, window: int) -> pl.Expr:
    """Pearson correlation of ``y`` with time over a trailing window.

    sum((k - k_mean) y_k) is a fixed-weight filter (no global index, so a trailing window
    reproduces it exactly); var(k) = (w^2 - 1) / 12. A flat window (0/0) gives 0.
    """
    centred = [k - (window - 1) / 2.0 for k in range(window)]
    cross = y.rolling_sum(window, weights=centred, min_samples=window)
    y_var = y.rolling_var(window, min_samples=window, ddof=0)
    corr = cross / (window * math.sqrt((window * window - 1) / 12.0) * y_var.sqrt())
    return pl.when(corr.is_finite()).then(corr.clip(-1.0, 1.0)).when(corr.is_not_null()).then(0.0)


def ribbon_score() -> pl.Expr:
    """Mean tanh of the six ordered EMA-ribbon gaps over a quarter ATR."""
    pairs = [(a, b) for i, a in enumerate(RIBBON_SPANS) for b in RIBBON_SPANS[i + 1 :]]
    atr = col("__atr")
    terms = [safe_div(col(f"__ema_{a}") - col(f"__ema_{b}"), 0.25 * atr).tanh() for a, b in pairs]
    return pl.sum_horizontal(terms) / len(pairs)


def engulfing() -> pl.Expr:
    """+1 bullish / -1 bearish engulfing candle against the previous bar, else 0."""
    c, open_ = col("close"), col("open")
    prev_open, prev_close = open_.shift(1), c.shift(1)
    bull = (prev_close < prev_open) & (c > open_) & (c >= prev_open) & (open_ <= prev_close)
    bear = (prev_close > prev_open) & (c < open_) & (c <= prev_open) & (open_ >= prev_close)
    return pl.when(bull).then(1.0).when(bear).then(-1.0).when(prev_close.is_not_null()).then(0.0)
