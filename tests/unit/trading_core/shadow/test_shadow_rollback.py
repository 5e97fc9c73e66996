"""auto_rollback_check: trailing-window drawdown and Sharpe breaches, known answers."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_core.config.models import AutoRollbackSection
from trading_core.errors import DataValidationError
from trading_core.shadow import auto_rollback_check
from trading_core.types import bars_per_year

BPY = bars_per_year("1h")
SECTION = AutoRollbackSection()  # 7 days = 168 hourly bars, 10% drawdown, min Sharpe -1


@pytest.mark.parametrize(
    ("returns", "drawdown_pct"),
    [
        # equity 1.1, 0.88, 0.924, 0.8316 against the 1.1 peak: 1 - 0.8316 / 1.1
        ([0.1, -0.2, 0.05, -0.1], 24.4),
        # the window start counts as a peak: 1 - 0.95 * 0.94
        ([-0.05, -0.06], 10.7),
        ([0.01, 0.02, 0.0], 0.0),
        ([-1.0, 0.5], 100.0),
    ],
)
def test_drawdown_known_answers(returns: list[float], drawdown_pct: float) -> None:
    verdict = auto_rollback_check(returns, section=SECTION, bars_per_year=BPY)
    assert verdict.max_drawdown_pct == pytest.approx(drawdown_pct, abs=1e-9)
    assert verdict.breached is (drawdown_pct > 10.0)
    assert verdict.window_bars == 168
    assert verdict.bars_used == len(returns)


def test_drawdown_breach_reason_quotes_figures() -> None:
    verdict = auto_rollback_check([0.1, -0.2, 0.05, -0.1], section=SECTION, bars_per_year=BPY)
    assert verdict.reasons == ("max drawdown 24.40% > 10.00% over the last 7 days",)


def test_loss_older_than_window_is_ignored() -> None:
    returns = np.concatenate([[-0.5], np.full(168, 0.0001) + np.tile([0.001, -0.001], 84)])
    verdict = auto_rollback_check(returns, section=SECTION, bars_per_year=BPY)
    assert not verdict.breached
    assert verdict.bars_used == 168
    assert verdict.reasons[0].startswith("no breach: drawdown")


def _drifting(n: int, drift: float) -> np.ndarray:
    return drift + 0.002 * np.tile([1.0, -1.0], n // 2)


def test_full_window_low_sharpe_breaches_with_known_sharpe() -> None:
    returns = _drifting(168, -0.0002)
    verdict = auto_rollback_check(returns, section=SECTION, bars_per_year=BPY)
    expected = returns.mean() / returns.std() * math.sqrt(BPY)  # -0.1 per bar
    assert verdict.sharpe_annualized == pytest.approx(expected, rel=1e-12)
    assert verdict.max_drawdown_pct < 10.0
    assert verdict.breached
    assert verdict.reasons == (f"annualized Sharpe {expected:.2f} < -1.00 over the last 7 days",)


def test_partial_window_sharpe_not_judged() -> None:
    verdict = auto_rollback_check(_drifting(100, -0.0002), section=SECTION, bars_per_year=BPY)
    assert not verdict.breached
    assert "Sharpe not judged (100/168 bars" in verdict.reasons[0]


def test_no_trading_zero_returns_no_breach_nan_sharpe() -> None:
    verdict = auto_rollback_check(np.zeros(200), section=SECTION, bars_per_year=BPY)
    assert not verdict.breached
    assert math.isnan(verdict.sharpe_annualized)


def test_disabled_section_reports_but_never_breaches() -> None:
    section = AutoRollbackSection(enabled=False)
    verdict = auto_rollback_check([0.1, -0.2, 0.05, -0.1], section=section, bars_per_year=BPY)
    assert not verdict.breached
    assert verdict.reasons[0] == "auto_rollback disabled"
    assert verdict.max_drawdown_pct == pytest.approx(24.4)


def test_daily_bars_window_is_window_days() -> None:
    verdict = auto_rollback_check(
        np.full(30, 0.001), section=SECTION, bars_per_year=bars_per_year("1d")
    )
    assert (verdict.window_bars, verdict.bars_used) == (7, 7)


@pytest.mark.parametrize(
    ("returns", "bars", "error", "match"),
    [
        ([0.1, -1.5], BPY, DataValidationError, r"returns\[1\]=-1.5"),
        ([0.1, math.nan], BPY, DataValidationError, "non-finite"),
        ([0.1], 0.0, ValueError, "bars_per_year"),
    ],
)
def test_bad_inputs_raise(
    returns: list[float], bars: float, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        auto_rollback_check(returns, section=SECTION, bars_per_year=bars)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-0.2, 0.2), min_size=1, max_size=300))
def test_drawdown_bounded_and_zero_for_gains_only(returns: list[float]) -> None:
    verdict = auto_rollback_check(returns, section=SECTION, bars_per_year=BPY)
    assert 0.0 <= verdict.max_drawdown_pct <= 100.0
    gains = auto_rollback_check(np.abs(returns), section=SECTION, bars_per_year=BPY)
    assert gains.max_drawdown_pct == 0.0
