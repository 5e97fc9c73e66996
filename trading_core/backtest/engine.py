"""Cost- and risk-aware backtest of one coin (and of many, as independent sub-accounts).

Split as the decision step demands: a vectorized pre-pass produces every per-bar input as an
array (:class:`BacktestInputs`), then the numba kernel (:mod:`trading_core.backtest.kernel`)
walks the bars once, calling the same decision core as Hamilton. No look-ahead: the decision
of bar t uses data up to its close and fills at ``open[t + 1]`` (``fill_at="next_open"``) or at
``close[t]`` (``fill_at="close"``); a decision on the last bar with ``next_open`` is not filled.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from trading_core.backtest import kernel
from trading_core.backtest.metrics import BacktestMetrics, compute_metrics, equity_returns
from trading_core.backtest.trades import N_TRADE_COLUMNS, TradeRecords, extract_trades
from trading_core.config.models import EngineConfig
from trading_core.decision import DecisionConfig
from trading_core.types import timeframe_ms

FloatArray = npt.NDArray[np.float64]
FillAt = Literal["next_open", "close"]
_FLOAT_FIELDS = (
    "open",
    "close",
    "volume",
    "atr",
    "volatility_bps",
    "half_spread_bps",
    "confidence",
    "score",
    "expected_return_bps",
)
_DTYPES: dict[str, type[np.generic]] = {
    "timestamps_ms": np.int64,
    **dict.fromkeys(_FLOAT_FIELDS, np.float64),
    "regime": np.int8,
    "action": np.int8,
    "data_valid": np.bool_,
}


@dataclass(frozen=True)
class BacktestInputs:
    """Per-bar arrays of one coin (all of one length). ``timestamps_ms`` are candle open times;
    ``action`` codes are +1/-1/0; ``regime`` codes follow ``REGIME_CODES``."""

    symbol: str
    timestamps_ms: npt.NDArray[np.int64]
    open: FloatArray
    close: FloatArray
    volume: FloatArray
    atr: FloatArray
    volatility_bps: FloatArray
    half_spread_bps: FloatArray
    regime: npt.NDArray[np.int8]
    action: npt.NDArray[np.int8]
    confidence: FloatArray
    score: FloatArray
    expected_return_bps: FloatArray
    data_valid: npt.NDArray[np.bool_]

    def __post_init__(self) -> None:
        n = np.asarray(self.close).shape[0]
        if n == 0:
            raise ValueError(f"{self.symbol}: backtest inputs are empty")
        for name, dtype in _DTYPES.items():
            # one canonical dtype per field, so the numba kernel compiles once
            array = np.ascontiguousarray(getattr(self, name), dtype=dtype)
            if array.shape != (n,):
                raise ValueError(f"{self.symbol}: {name} has shape {array.shape}, expected ({n},)")
            object.__setattr__(self, name, array)
        if np.any(np.diff(self.timestamps_ms) <= 0):
            raise ValueError(f"{self.symbol}: timestamps_ms must be strictly increasing")
        prices = np.concatenate([self.open, self.close])
        if not np.all(np.isfinite(prices) & (prices > 0.0)):
            raise ValueError(f"{self.symbol}: open/close must be finite prices > 0")
        if not np.all(np.isin(self.action, (-1, 0, 1))):
            raise ValueError(f"{self.symbol}: action codes must be -1, 0 or 1")
        if not np.all((self.regime >= 0) & (self.regime <= 3)):
            raise ValueError(f"{self.symbol}: regime codes must be in 0..3")
        if np.any(np.isnan(self.expected_return_bps)):
            raise ValueError(f"{self.symbol}: expected_return_bps has NaN; use 0 for no forecast")

    @property
    def n_bars(self) -> int:
        return int(self.close.shape[0])


@dataclass(frozen=True)
class BacktestConfig:
    """The decision step's configuration plus the simulation's capital and fill timing."""

    decision: DecisionConfig
    initial_capital_usd: float
    fill_at: FillAt = "next_open"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.initial_capital_usd) and self.initial_capital_usd > 0):
            raise ValueError(f"initial_capital_usd={self.initial_capital_usd!r} must be > 0")
        if self.fill_at not in ("next_open", "close"):
            raise ValueError(f"fill_at={self.fill_at!r}; allowed: 'next_open', 'close'")

    @classmethod
    def from_engine_config(
        cls,
        config: EngineConfig,
        *,
        timeframe: str,
        fill_at: FillAt = "next_open",
        holding_bars: int | None = None,
        preset: str | None = None,
    ) -> "BacktestConfig":
        decision = DecisionConfig.from_engine_config(
            config, timeframe=timeframe, holding_bars=holding_bars, preset=preset
        )
        return cls(decision, config.risk.initial_capital_usd, fill_at)


@dataclass(frozen=True)
class BacktestResult:
    """Per-bar paths (position, cash and equity at each bar's close after its fills), the
    decisions (order qty at the decision bar, reason codes), fills (at the fill bar: qty,
    price, the half-spread + slippage that priced it, fee), trades and metrics."""

    symbol: str
    timestamps_ms: npt.NDArray[np.int64]
    position: FloatArray
    cash: FloatArray
    equity: FloatArray
    returns: FloatArray
    order_qty: FloatArray
    fill_qty: FloatArray
    fill_price: FloatArray
    fill_price_adjust_bps: FloatArray
    fee_usd: FloatArray
    funding_usd: FloatArray
    expected_edge_bps: FloatArray
    cost_bps: FloatArray
    reason_code: npt.NDArray[np.int64]
    denial_code: npt.NDArray[np.int64]
    trading_state_code: npt.NDArray[np.int64]
    trades: TradeRecords
    metrics: BacktestMetrics


def run_backtest(inputs: BacktestInputs, config: BacktestConfig) -> BacktestResult:
    """Simulate one coin bar by bar with the shared decision core (see the module docstring)."""
    decision = config.decision
    out_f = np.zeros((inputs.n_bars, kernel.N_FLOAT_OUT), order="F")
    out_i = np.zeros((inputs.n_bars, kernel.N_INT_OUT), dtype=np.int64, order="F")
    next_open = config.fill_at == "next_open"
    kernel.simulate(
        inputs.timestamps_ms + timeframe_ms(decision.timeframe),
        inputs.open,
        inputs.close,
        inputs.volume,
        inputs.atr,
        inputs.volatility_bps,
        inputs.half_spread_bps,
        inputs.regime,
        inputs.action,
        inputs.confidence,
        inputs.score,
        inputs.expected_return_bps,
        inputs.data_valid,
        config.initial_capital_usd,
        next_open,
        decision.holding_bars,
        decision.holding_hours,
        decision.bar_hours,
        decision.allow_short,
        decision.accrue_funding,
        decision.cost_array,
        decision.limit_array,
        out_f,
        out_i,
    )
    return _result(inputs, config, out_f, out_i, next_open)


def _result(
    inputs: BacktestInputs,
    config: BacktestConfig,
    out_f: FloatArray,
    out_i: npt.NDArray[np.int64],
    next_open: bool,
) -> BacktestResult:
    column = {name: out_f[:, index] for name, index in _FLOAT_COLUMNS.items()}
    trade_rows = np.zeros((inputs.n_bars, N_TRADE_COLUMNS))
    n_trades = extract_trades(
        column["fill_qty"],
        column["fill_price"],
        column["fee_usd"],
        column["funding_usd"],
        column["expected_edge_bps"] - column["cost_bps"],
        next_open,
        trade_rows,
    )
    trades = TradeRecords.from_matrix(trade_rows[:n_trades])
    returns = equity_returns(column["equity"], config.initial_capital_usd)
    metrics = compute_metrics(
        returns=returns,
        equity=column["equity"],
        position=column["position"],
        fill_qty=column["fill_qty"],
        fill_price=column["fill_price"],
        fee_usd=column["fee_usd"],
        funding_usd=column["funding_usd"],
        trades=trades,
        initial_equity_usd=config.initial_capital_usd,
        timeframe=config.decision.timeframe,
    )
    result = BacktestResult(
        symbol=inputs.symbol,
        timestamps_ms=inputs.timestamps_ms.copy(),
        returns=returns,
        reason_code=out_i[:, kernel.I_REASON],
        denial_code=out_i[:, kernel.I_DENIAL],
        trading_state_code=out_i[:, kernel.I_STATE],
        trades=trades,
        metrics=metrics,
        **column,
    )
    for value in vars(result).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return result


_FLOAT_COLUMNS = {
    "position": kernel.O_POSITION,
    "cash": kernel.O_CASH,
    "equity": kernel.O_EQUITY,
    "order_qty": kernel.O_ORDER_QTY,
    "fill_qty": kernel.O_FILL_QTY,
    "fill_price": kernel.O_FILL_PRICE,
    "fill_price_adjust_bps": kernel.O_FILL_ADJUST_BPS,
    "fee_usd": kernel.O_FEE_USD,
    "funding_usd": kernel.O_FUNDING_USD,
    "expected_edge_bps": kernel.O_EDGE_BPS,
    "cost_bps": kernel.O_COST_BPS,
}


def run_many(inputs: Sequence[BacktestInputs], config: BacktestConfig) -> dict[str, BacktestResult]:
    """One backtest per coin, each an independent sub-account with the full initial capital
    (no shared cash, no cross-coin leverage): the per-coin view the training DAG scores."""
    symbols = [i.symbol for i in inputs]
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"symbols must be unique; got duplicates in {symbols}")
    return {i.symbol: run_backtest(i, config) for i in inputs}
