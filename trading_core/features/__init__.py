"""Causal features over OHLCV bars (polars), candle spread estimates, and the training label.

Public: FEATURE_COLUMNS, FEATURE_WARMUP_BARS, compute_features, warmup_bars, validate_bars,
forward_return_bps (the non-causal label, kept in its own module), and the spread estimators
in :mod:`trading_core.features.spread`.
"""

from trading_core.features.compute import compute_features, validate_bars
from trading_core.features.core import (
    EMA_WARMUP_BARS,
    FEATURE_COLUMNS,
    FEATURE_WARMUP_BARS,
    warmup_bars,
)
from trading_core.features.labels import forward_return_bps
from trading_core.features.spread import abdi_ranaldo_spread_bps, corwin_schultz_spread_bps

__all__ = [
    "EMA_WARMUP_BARS",
    "FEATURE_COLUMNS",
    "FEATURE_WARMUP_BARS",
    "abdi_ranaldo_spread_bps",
    "compute_features",
    "corwin_schultz_spread_bps",
    "forward_return_bps",
    "validate_bars",
    "warmup_bars",
]
