"""``ml_brain``: the learned engine, backed by the Brain Library model via ``ctx.ml_predictor``.

The model sees exactly :data:`ML_INPUT_COLUMNS` (every feature plus the 22 rule engines'
signals, built by :func:`ml_input_frame`; training must build its matrix the same way) and
predicts the forward return in bps. The engine maps it to ``tanh(pred / ml_scale_bps)`` with
confidence ``|signal|``. Without a predictor it abstains (0, 0); a non-finite prediction
abstains on that bar.
"""

from typing import Final

import numpy as np
import polars as pl

from trading_core.engines.base import (
    EngineContext,
    EngineFn,
    EngineSignal,
    EngineSpec,
    FloatArray,
    guard,
)
from trading_core.engines.rules import RULE_ENGINES, SIGNAL_COLUMNS, run_rule_engines
from trading_core.features.core import FEATURE_COLUMNS
from trading_core.types import Regime

ML_INPUT_COLUMNS: Final[tuple[str, ...]] = (*FEATURE_COLUMNS, *SIGNAL_COLUMNS)
ML_WARMUP_BARS: Final = max(spec.warmup_bars for spec in RULE_ENGINES)


def ml_input_frame(bars_with_features: pl.DataFrame, rule_signals: pl.DataFrame) -> pl.DataFrame:
    """Bars with features plus the ``sig_<name>`` columns of ``rule_signals`` (same rows)."""
    if rule_signals.height != bars_with_features.height:
        raise ValueError(
            f"rule_signals has {rule_signals.height} rows; bars have {bars_with_features.height}"
        )
    missing = [c for c in SIGNAL_COLUMNS if c not in rule_signals.columns]
    if missing:
        raise ValueError(f"rule_signals lacks {missing}; run_rule_engines() produces them")
    present = [c for c in SIGNAL_COLUMNS if c in bars_with_features.columns]
    return bars_with_features.drop(present).hstack(rule_signals.select(SIGNAL_COLUMNS))


def _predict(frame: pl.DataFrame, ctx: EngineContext) -> FloatArray:
    assert ctx.ml_predictor is not None  # noqa: S101 - checked by the caller
    pred = np.asarray(ctx.ml_predictor(frame), dtype=np.float64)
    if pred.shape != (frame.height,):
        raise ValueError(
            f"ml_predictor returned shape {pred.shape}; expected ({frame.height},): one "
            "forward-return prediction in bps per bar"
        )
    return pred


def ml_brain_signal(frame: pl.DataFrame, ctx: EngineContext) -> tuple[FloatArray, FloatArray]:
    """Raw learned-engine output on the ML input frame (NaN = abstain)."""
    if ctx.ml_predictor is None:
        return np.full(frame.height, np.nan), np.full(frame.height, np.nan)
    with np.errstate(over="ignore", invalid="ignore"):
        signal = np.tanh(_predict(frame, ctx) / ctx.ml_scale_bps)
    return signal, np.abs(signal)


def ml_brain(bars: pl.DataFrame, ctx: EngineContext) -> EngineSignal:
    """Learned engine: the Brain Library model's forward-return forecast, tanh-scaled."""
    frame = bars
    if ctx.ml_predictor is not None and not all(c in bars.columns for c in SIGNAL_COLUMNS):
        frame = ml_input_frame(bars, run_rule_engines(bars, ctx))
    signal, confidence = ml_brain_signal(frame, ctx)
    return EngineSignal(*guard(signal, confidence, np.arange(bars.height) < ML_WARMUP_BARS))


_ML_FN: EngineFn = ml_brain
ML_BRAIN: Final = EngineSpec(
    name="ml_brain",
    family="learned",
    description="Learned engine: the Brain Library model's forward-return forecast, tanh-scaled.",
    regimes=(Regime.TREND, Regime.RANGE, Regime.PANIC),
    fn=_ML_FN,
    warmup_bars=ML_WARMUP_BARS,
    inputs=ML_INPUT_COLUMNS,
)
