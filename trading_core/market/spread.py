"""Spread estimate for a universe snapshot built from candles: EDGE.

EDGE: Ardia, D., Guidotti, E. and Kroencke, T. A. (2024), "Efficient estimation of bid-ask
spreads from open, high, low, and close prices", Journal of Financial Economics 161, 103916;
computed by the authors' ``bidask`` package. On real Binance 1h candles (shared/data/real, last
7 days of each file) it gives BTC/USDT 2.2 bps, ETH/USDT 1.6, XRP/USDT 1.9, while the
Corwin–Schultz (2012) high-low estimator (``trading_core.features.spread``) gives 41, 49 and
52 bps: on hourly crypto bars the high-low range is almost all volatility, and Corwin–Schultz
is dominated by it (so a ``max_spread_bps: 8`` filter would reject every coin).
"""

import math

import numpy as np
import numpy.typing as npt
import polars as pl

from trading_core.features.spread import corwin_schultz_spread_bps


def edge_spread_bps(
    open_: npt.ArrayLike, high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike
) -> float:
    """EDGE spread estimate (Ardia, Guidotti & Kroencke, 2024) in bps of mid; NaN when the
    bars do not allow an estimate (too few, or no price movement)."""
    prices = [np.asarray(x, dtype=np.float64) for x in (open_, high, low, close)]
    if len({p.shape for p in prices}) != 1 or prices[0].ndim != 1:
        shapes = [p.shape for p in prices]
        raise ValueError(f"open/high/low/close must be 1-D of one length, got {shapes}")
    if prices[0].size < 3:
        return math.nan
    # imported here: bidask pulls pandas (~0.3 s), and the training workers that import this
    # module through the parquet store never estimate a spread
    from bidask import edge

    estimate = float(edge(*prices))
    return estimate * 10_000.0 if math.isfinite(estimate) else math.nan


def corwin_schultz_window_bps(bars: pl.DataFrame) -> float:
    """Corwin–Schultz spread averaged over every bar pair of ``bars`` (the features module's
    estimator with a window spanning the frame), in bps; NaN with fewer than two bars."""
    pairs = bars.height - 1
    if pairs < 1:
        return math.nan
    value = bars.select(corwin_schultz_spread_bps(pairs)).to_series()[-1]
    return float(value) if value is not None else math.nan
