"""Regimes: the causal detector (TREND / RANGE / PANIC / ILLIQUID), gates, leaderboard."""

from trading_core.regime.detector import (
    apply_hysteresis,
    detect_regimes,
    raw_regimes,
    raw_warmup_bars,
    regime_warmup_bars,
)
from trading_core.regime.gates import RegimeGates
from trading_core.regime.leaderboard import LEADERBOARD_SCHEMA, auto_gate, engine_leaderboard

__all__ = [
    "LEADERBOARD_SCHEMA",
    "RegimeGates",
    "apply_hysteresis",
    "auto_gate",
    "detect_regimes",
    "engine_leaderboard",
    "raw_regimes",
    "raw_warmup_bars",
    "regime_warmup_bars",
]
