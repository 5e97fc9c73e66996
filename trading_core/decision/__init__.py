"""The decision step end to end, one module per stage.

- :mod:`trading_core.decision.inputs`: from a prepared coin (or the newest bars) to per-bar
  decision inputs: engine votes, consensus, expected return, costs' market inputs
  (``decision_rows``, the one function the backtest, Hamilton and its shadow books use), over
  the columns of :mod:`trading_core.decision.columns`.
- :mod:`trading_core.decision.step`: one bar's decision (``decide_bar``), its paper fill and its
  DecisionEvent, shared by the backtest and Hamilton.
- :mod:`trading_core.decision.kernel`: the numba core both the backtest kernel and ``decide_bar``
  call, so the two agree bit for bit.
"""

from trading_core.decision.step import (
    ACTION_CODE,
    BarInputs,
    ConsensusRow,
    Decision,
    DecisionConfig,
    EventOrigin,
    consensus_row,
    decide_bar,
    decision_event,
    paper_fill,
)

__all__ = [
    "ACTION_CODE",
    "BarInputs",
    "ConsensusRow",
    "Decision",
    "DecisionConfig",
    "EventOrigin",
    "consensus_row",
    "decide_bar",
    "decision_event",
    "paper_fill",
]
