"""Causal features over OHLCV bars, as polars expressions: the definition.

The features are declared in :mod:`trading_core.features.registry` (each with its polars
expression, warm-up, kernel slot and newest-bar function); this module runs their polars
expressions in dependency order, with the shared intermediates of
:mod:`trading_core.features.expressions`. Every value at bar t is a function of bars <= t only.
Each feature has a declared warm-up (:data:`FEATURE_WARMUP_BARS`): it is null on exactly the
first ``warmup`` bars of a series and never null or NaN after them (degenerate denominators
such as a zero range or zero volume map to a stated neutral value, not NaN).

Finite windows reproduce their value exactly from any window that covers them (up to
floating-point summation order, ~1e-12 relative). Exponential averages have infinite memory;
their warm-up is the number of bars after which the weight left outside a trailing window is
below :data:`~trading_core.features.expressions.EMA_TAIL_WEIGHT` (1e-12), so a trailing window
of ``warmup_bars()`` bars reproduces them to ~1e-12 relative (tests assert 1e-9).

Multi-coin "long" frames are supported with ``by="symbol"``: every time-series expression is
evaluated per coin with ``.over(by)``.

``compute_features_polars`` evaluates these expressions; the product path,
``compute_features``, runs the same formulas in one numba kernel
(:mod:`trading_core.features.compiled`), tested equal to them to 1e-9 feature by feature.
"""

import functools

import polars as pl

from trading_core.features.expressions import (
    ATR_BARS,
    BASE_TIME_SERIES,
    EMA_TAIL_WEIGHT,
    EMA_WARMUP_BARS,
    RETURN_HORIZONS_BARS,
    RIBBON_SPANS,
    RSI_BARS,
    SPREAD_WINDOW_BARS,
    VOL_WINDOWS_BARS,
    base_intermediates,
    ewm_warmup_bars,
    rolling_intermediates,
    smoothed_intermediates,
)
from trading_core.features.registry import (
    FEATURE_COLUMNS,
    FEATURE_WARMUP_BARS,
    FEATURES,
    Stage,
    warmup_bars,
)

__all__ = [
    "ATR_BARS",
    "EMA_TAIL_WEIGHT",
    "EMA_WARMUP_BARS",
    "FEATURE_COLUMNS",
    "FEATURE_WARMUP_BARS",
    "RETURN_HORIZONS_BARS",
    "RIBBON_SPANS",
    "RSI_BARS",
    "SPREAD_WINDOW_BARS",
    "VOL_WINDOWS_BARS",
    "apply_feature_stages",
    "ewm_warmup_bars",
    "feature_stages",
    "warmup_bars",
]

_I = "__bar_index"


def _stage(stage: Stage) -> list[tuple[str, pl.Expr]]:
    """The registry's polars definitions that run in ``stage``, as (name, expression)."""
    return [(f.name, f.polars()) for f in FEATURES if f.stage == stage]


@functools.cache
def feature_stages(by: str | None = None) -> tuple[tuple[pl.Expr, ...], ...]:
    """The feature expressions in dependency order, each list one ``with_columns`` stage.

    With ``by`` every time-series expression is evaluated per group (``.over(by)``); element-wise
    expressions need no grouping.
    """

    def ts(expr: pl.Expr) -> pl.Expr:
        return expr if by is None else expr.over(by)

    index = pl.int_range(pl.len(), dtype=pl.Int64)
    stage0 = [ts(index).alias(_I)]
    stage0 += [
        (ts(e) if k in BASE_TIME_SERIES else e).alias(k) for k, e in base_intermediates().items()
    ]
    stage0 += [e.alias(k) for k, e in _stage(Stage.BASE)]
    stage1 = [ts(e).alias(k) for k, e in (*rolling_intermediates().items(), *_stage(Stage.ROLLING))]
    stage1b = [ts(e).alias(k) for k, e in smoothed_intermediates().items()]
    stage2 = [e.alias(k) for k, e in _stage(Stage.DERIVED)]
    stage3 = [ts(e).alias(k) for k, e in _stage(Stage.SMOOTHED)]
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
