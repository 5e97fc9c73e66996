"""Cost- and risk-aware backtest that applies the shared decision step bar by bar."""

from trading_core.backtest.engine import (
    BacktestConfig,
    BacktestInputs,
    BacktestResult,
    run_backtest,
    run_many,
)
from trading_core.backtest.metrics import BacktestMetrics, compute_metrics, equity_returns
from trading_core.backtest.prepare import build_inputs
from trading_core.backtest.replay import Replay, bar_inputs_at, replay_decisions
from trading_core.backtest.trades import TradeRecords

__all__ = [
    "BacktestConfig",
    "BacktestInputs",
    "BacktestMetrics",
    "BacktestResult",
    "Replay",
    "TradeRecords",
    "bar_inputs_at",
    "build_inputs",
    "compute_metrics",
    "equity_returns",
    "replay_decisions",
    "run_backtest",
    "run_many",
]
