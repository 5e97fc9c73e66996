"""Auto-rollback check for a freshly promoted model: has it breached its guard rails?

Over the trailing ``window_days`` of per-bar net simple returns (fractions, e.g. 0.001 = 10 bps):

- drawdown: equity compounds ``prod(1 + r)`` from 1.0 at the window start; the maximum
  drawdown is ``max_t (1 - equity_t / max_{s<=t} equity_s)`` with the starting 1.0 counted as
  a peak. A breach when it exceeds ``max_drawdown_pct``, however little data there is (a loss
  is a loss);
- Sharpe: annualized ``mean / std * sqrt(bars_per_year)`` (divisor n). A breach when it is below
  ``min_sharpe``, judged only once a full window of bars is available (a few bars say nothing
  about a Sharpe ratio); a constant series (no trading) has no Sharpe ratio and no breach.

A disabled section reports the same figures and never breaches.
"""

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trading_core.config.models import AutoRollbackSection
from trading_core.errors import DataValidationError
from trading_core.shadow.paired import FloatArray, as_return_series


@dataclass(frozen=True, slots=True)
class RollbackVerdict:
    """Whether to roll back, why, and the figures over the window actually used."""

    breached: bool
    reasons: tuple[str, ...]
    max_drawdown_pct: float
    sharpe_annualized: float  # nan when undefined (constant returns or an empty window)
    window_bars: int
    bars_used: int

    def __post_init__(self) -> None:
        if not self.reasons:
            raise ValueError("a rollback verdict needs at least one reason")
        if not 0.0 <= self.max_drawdown_pct <= 100.0:
            raise ValueError(f"max_drawdown_pct={self.max_drawdown_pct!r} must lie in [0, 100]")
        if not 0 <= self.bars_used <= self.window_bars:
            raise ValueError(
                f"bars_used={self.bars_used} must lie in [0, window_bars={self.window_bars}]"
            )


def auto_rollback_check(
    returns: npt.ArrayLike, *, section: AutoRollbackSection, bars_per_year: float
) -> RollbackVerdict:
    """Rollback verdict on the trailing window of a production model's per-bar net returns."""
    if not (math.isfinite(bars_per_year) and bars_per_year > 0.0):
        raise ValueError(f"bars_per_year={bars_per_year!r} must be a finite number > 0")
    series = as_return_series(returns, name="returns")
    if series.size and series.min() < -1.0:
        at = int(series.argmin())
        raise DataValidationError(
            f"returns[{at}]={float(series[at])!r} is below -1 (a loss beyond 100%); simple returns "
            "must be >= -1"
        )
    window_bars = max(1, round(section.window_days * bars_per_year / 365.0))
    window = series[-window_bars:]
    drawdown_pct = _max_drawdown_pct(window)
    sharpe = _annualized_sharpe(window, bars_per_year)
    reasons = _breaches(section, drawdown_pct, sharpe, full_window=window.size == window_bars)
    breached = bool(reasons) and section.enabled
    if not section.enabled:
        reasons = ("auto_rollback disabled", *reasons)
    elif not reasons:
        reasons = (_healthy_reason(section, drawdown_pct, sharpe, window.size, window_bars),)
    return RollbackVerdict(breached, reasons, drawdown_pct, sharpe, window_bars, int(window.size))


def _max_drawdown_pct(window: FloatArray) -> float:
    if window.size == 0:
        return 0.0
    equity = np.cumprod(1.0 + window)
    peaks = np.maximum.accumulate(np.maximum(equity, 1.0))
    return float(np.clip(100.0 * (1.0 - equity / peaks).max(), 0.0, 100.0))


def _annualized_sharpe(window: FloatArray, bars_per_year: float) -> float:
    sigma = float(window.std()) if window.size else 0.0
    if not sigma > 0.0:
        return math.nan
    return float(window.mean()) / sigma * math.sqrt(bars_per_year)


def _breaches(
    section: AutoRollbackSection, drawdown_pct: float, sharpe: float, *, full_window: bool
) -> tuple[str, ...]:
    reasons = []
    if drawdown_pct > section.max_drawdown_pct:
        reasons.append(
            f"max drawdown {drawdown_pct:.2f}% > {section.max_drawdown_pct:.2f}% "
            f"over the last {section.window_days} days"
        )
    if full_window and sharpe < section.min_sharpe:  # nan compares False: no breach
        reasons.append(
            f"annualized Sharpe {sharpe:.2f} < {section.min_sharpe:.2f} "
            f"over the last {section.window_days} days"
        )
    return tuple(reasons)


def _healthy_reason(
    section: AutoRollbackSection, drawdown_pct: float, sharpe: float, bars: int, window_bars: int
) -> str:
    sharpe_note = (
        f"Sharpe {sharpe:.2f} >= {section.min_sharpe:.2f}"
        if bars == window_bars and not math.isnan(sharpe)
        else f"Sharpe not judged ({bars}/{window_bars} bars or constant returns)"
    )
    return (
        f"no breach: drawdown {drawdown_pct:.2f}% <= {section.max_drawdown_pct:.2f}%; {sharpe_note}"
    )
