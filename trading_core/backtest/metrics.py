"""Performance metrics of one backtest.

Sharpe (1994, "The Sharpe Ratio") and Sortino (Sortino and Price 1994, downside deviation
against a 0 target) of per-bar equity returns, annualized with ``sqrt(bars_per_year)`` for the
timeframe (crypto trades 365 days a year); maximum drawdown from the running equity peak
(initial capital included); trade statistics from the closed round trips.
"""

import math
from dataclasses import asdict, dataclass

import numba
import numpy as np
import numpy.typing as npt

from trading_core.backtest.trades import TradeRecords
from trading_core.types import bars_per_year

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BacktestMetrics:
    """Headline figures; ratios are annualized, returns and drawdown are fractions."""

    total_return: float
    final_equity_usd: float
    sharpe: float
    sortino: float
    max_drawdown: float
    n_trades: int
    n_orders: int
    hit_rate: float
    avg_net_return_bps: float
    avg_expected_net_edge_bps: float
    turnover: float
    annual_turnover: float
    exposure: float
    fees_usd: float
    funding_usd: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def equity_returns(equity: FloatArray, initial_equity_usd: float) -> FloatArray:
    """Per-bar simple returns of the equity curve (the first against the initial capital)."""
    previous = np.concatenate(([initial_equity_usd], equity[:-1]))
    result: FloatArray = equity / previous - 1.0
    return result


@numba.njit(cache=True, error_model="numpy")
def _path_statistics(
    returns: FloatArray,
    equity: FloatArray,
    initial_equity_usd: float,
    position: FloatArray,
    fill_qty: FloatArray,
    fill_price: FloatArray,
) -> tuple[float, float, float, float, float, float, int, int]:
    """One pass: mean, sample std and downside deviation of returns, max drawdown, traded
    notional, mean equity, bars with a position, fills."""
    n = returns.shape[0]
    total = 0.0
    for r in returns:
        total += r
    mean = total / n
    squares, downside = 0.0, 0.0
    for r in returns:
        squares += (r - mean) ** 2
        downside += min(r, 0.0) ** 2
    peak, drawdown, traded, equity_sum = initial_equity_usd, 0.0, 0.0, 0.0
    exposed, fills = 0, 0
    for t in range(n):
        peak = max(peak, equity[t])
        drawdown = max(drawdown, 1.0 - equity[t] / peak)
        equity_sum += equity[t]
        exposed += position[t] != 0.0
        if fill_qty[t] != 0.0:
            fills += 1
            traded += abs(fill_qty[t] * fill_price[t])
    std = math.sqrt(squares / (n - 1)) if n > 1 else 0.0
    return mean, std, math.sqrt(downside / n), drawdown, traded, equity_sum / n, exposed, fills


def _annualized_ratio(mean: float, deviation: float, periods: float) -> float:
    if not deviation > 0.0:
        return 0.0
    return mean / deviation * math.sqrt(periods)


def compute_metrics(
    *,
    returns: FloatArray,
    equity: FloatArray,
    position: FloatArray,
    fill_qty: FloatArray,
    fill_price: FloatArray,
    fee_usd: FloatArray,
    funding_usd: FloatArray,
    trades: TradeRecords,
    initial_equity_usd: float,
    timeframe: str,
) -> BacktestMetrics:
    """All :class:`BacktestMetrics` of one simulated coin (``returns`` from
    :func:`equity_returns`)."""
    if equity.size == 0 or returns.shape != equity.shape:
        raise ValueError(f"need equal, non-empty returns and equity; got {returns.shape}")
    periods = bars_per_year(timeframe)
    mean, std, downside, drawdown, traded, mean_equity, exposed, fills = _path_statistics(
        returns, equity, initial_equity_usd, position, fill_qty, fill_price
    )
    turnover = traded / mean_equity if mean_equity > 0 else math.inf
    closed = trades.n_trades
    final = float(equity[-1])
    return BacktestMetrics(
        total_return=final / initial_equity_usd - 1.0,
        final_equity_usd=final,
        sharpe=_annualized_ratio(mean, std, periods),
        sortino=_annualized_ratio(mean, downside, periods),
        max_drawdown=drawdown,
        n_trades=closed,
        n_orders=fills,
        hit_rate=float((trades.pnl_usd > 0.0).mean()) if closed else math.nan,
        avg_net_return_bps=float(trades.return_bps.mean()) if closed else math.nan,
        avg_expected_net_edge_bps=(
            float(np.nanmean(trades.expected_net_edge_bps)) if closed else math.nan
        ),
        turnover=turnover,
        annual_turnover=turnover * periods / equity.size,
        exposure=exposed / equity.size,
        fees_usd=float(fee_usd.sum()),
        funding_usd=float(funding_usd.sum()),
    )
