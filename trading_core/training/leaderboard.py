"""The weekly engine leaderboard across coins, and the gate overrides it implies."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from trading_core.config.models import RegimeGatesSection
from trading_core.engines import RULE_ENGINE_NAMES
from trading_core.regime import RegimeGates, auto_gate, engine_leaderboard
from trading_core.training.dataset import CoinFrame


def universe_leaderboard(frames: Sequence[CoinFrame], *, window_bars: int) -> pl.DataFrame:
    """Hit rate and PnL contribution of each rule engine by regime over the last
    ``window_bars`` bars of every coin (the coins' windows pooled)."""
    if not frames:
        raise ValueError("no coins to rank engines on")
    parts = [
        (f.rule_signals[-window_bars:], f.regimes[-window_bars:], f.label_bps[-window_bars:])
        for f in frames
    ]
    signals = np.vstack([p[0] for p in parts])
    regimes = np.concatenate([p[1] for p in parts])
    forward = np.concatenate([p[2] for p in parts])
    return engine_leaderboard(
        signals, regimes, forward, list(RULE_ENGINE_NAMES), window_bars=signals.shape[0]
    )


def gate_overrides(leaderboard: pl.DataFrame, section: RegimeGatesSection) -> dict[str, Any]:
    """The gates payload for next week; ml_brain keeps its standing (it is not ranked here)."""
    current = RegimeGates.from_config(section)
    payload = auto_gate(
        leaderboard,
        current,
        min_hit_rate=section.auto_gating_min_hit_rate,
        min_votes=section.auto_gating_min_votes,
    )
    for regime, gate in payload.items():
        if regime != "ILLIQUID" and "ml_brain" in getattr(section, regime).enabled_engines:
            enabled = list(gate.get("enabled_engines", []))
            if "ml_brain" not in enabled:
                gate["enabled_engines"] = [*enabled, "ml_brain"]
            gate["disabled_engines"] = [
                e for e in gate.get("disabled_engines", []) if e != "ml_brain"
            ]
    return payload
