"""Shadow testing: statistical promotion criteria for challenger models and auto-rollback.

Pure functions over per-bar net return series and per-trade net returns (``paired``,
``sharpe``, ``win_rate``, ``sequential``, ``promotion``, ``rollback``), the record of a shadow
period that Hamilton writes (``periods``, ``trades``), and the evidence and verdict built from
those records (``lifecycle``). ``trading_core.shadow.evaluation`` applies the verdicts to the
Brain Library (the ``shadow_evaluation`` asset calls it).
"""

from trading_core.shadow.lifecycle import (
    ShadowEvidence,
    audit_statistics,
    collect_evidence,
    review_challenger,
    review_seed,
)
from trading_core.shadow.paired import TestResult, newey_west_lag, paired_mean_difference_test
from trading_core.shadow.periods import ShadowPeriod
from trading_core.shadow.promotion import Decision, ShadowVerdict, evaluate_challenger
from trading_core.shadow.rollback import RollbackVerdict, auto_rollback_check
from trading_core.shadow.sequential import sequential_alpha
from trading_core.shadow.sharpe import SharpeMethod, per_bar_sharpe, sharpe_difference_test
from trading_core.shadow.trades import FillAccounting, account_fill, realized_bar_returns
from trading_core.shadow.win_rate import win_count, win_rate_difference

__all__ = [
    "Decision",
    "FillAccounting",
    "RollbackVerdict",
    "ShadowEvidence",
    "ShadowPeriod",
    "ShadowVerdict",
    "SharpeMethod",
    "TestResult",
    "account_fill",
    "audit_statistics",
    "auto_rollback_check",
    "collect_evidence",
    "evaluate_challenger",
    "newey_west_lag",
    "paired_mean_difference_test",
    "per_bar_sharpe",
    "realized_bar_returns",
    "review_challenger",
    "review_seed",
    "sequential_alpha",
    "sharpe_difference_test",
    "win_count",
    "win_rate_difference",
]
