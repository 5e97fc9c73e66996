"""Purged walk-forward validation and leakage detection."""

from trading_core.validation.walk_forward import (
    WalkForwardSplit,
    assert_no_leakage,
    leaking_training_bars,
    purged_walk_forward_splits,
)

__all__ = [
    "WalkForwardSplit",
    "assert_no_leakage",
    "leaking_training_bars",
    "purged_walk_forward_splits",
]
