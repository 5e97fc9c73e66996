"""Causal features over OHLCV bars, candle spread estimates, and the training label.

Each feature is declared once in :mod:`trading_core.features.registry` (name, warm-up, polars
definition, kernel slot, newest-bar function). The polars expressions are the definition
(:mod:`trading_core.features.core`, ``compute_features_polars``); one numba kernel computes them
(:mod:`trading_core.features.compiled`, ``compute_features``: 3x-4x faster on a year of bars)
and :mod:`trading_core.features.lastbar` their newest bar, both tested equal to them feature by
feature over the registry.

Public: FEATURES (the registry), FEATURE_COLUMNS, FEATURE_WARMUP_BARS, compute_features,
compute_features_polars, warmup_bars, validate_bars, forward_return_bps and label_end_ms (the
non-causal label, defined in time and kept in its own module), and the spread estimators in
:mod:`trading_core.features.spread`.
"""

from trading_core.features.compute import compute_features, compute_features_polars, validate_bars
from trading_core.features.expressions import EMA_WARMUP_BARS
from trading_core.features.labels import NO_LABEL_END_MS, forward_return_bps, label_end_ms
from trading_core.features.registry import (
    FEATURE_COLUMNS,
    FEATURE_WARMUP_BARS,
    FEATURES,
    Feature,
    warmup_bars,
)
from trading_core.features.spread import abdi_ranaldo_spread_bps, corwin_schultz_spread_bps

__all__ = [
    "EMA_WARMUP_BARS",
    "FEATURES",
    "FEATURE_COLUMNS",
    "FEATURE_WARMUP_BARS",
    "NO_LABEL_END_MS",
    "Feature",
    "abdi_ranaldo_spread_bps",
    "compute_features",
    "compute_features_polars",
    "corwin_schultz_spread_bps",
    "forward_return_bps",
    "label_end_ms",
    "validate_bars",
    "warmup_bars",
]
