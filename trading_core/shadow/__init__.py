"""Shadow testing: statistical promotion criteria for challenger models and auto-rollback.

Pure functions over per-bar net return series and per-trade net returns; the Dagster asset
(shadow_evaluation) and Hamilton feed them and act on the verdicts.
"""

from trading_core.shadow.paired import TestResult, newey_west_lag, paired_mean_difference_test
from trading_core.shadow.promotion import Decision, ShadowVerdict, evaluate_challenger
from trading_core.shadow.rollback import RollbackVerdict, auto_rollback_check
from trading_core.shadow.sequential import sequential_alpha
from trading_core.shadow.sharpe import SharpeMethod, per_bar_sharpe, sharpe_difference_test
from trading_core.shadow.win_rate import win_count, win_rate_difference

__all__ = [
    "Decision",
    "RollbackVerdict",
    "ShadowVerdict",
    "SharpeMethod",
    "TestResult",
    "auto_rollback_check",
    "evaluate_challenger",
    "newey_west_lag",
    "paired_mean_difference_test",
    "per_bar_sharpe",
    "sequential_alpha",
    "sharpe_difference_test",
    "win_count",
    "win_rate_difference",
]
