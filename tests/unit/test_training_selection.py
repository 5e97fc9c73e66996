"""Best-model selection rule: known cases."""

import pytest

from trading_core.training.selection import choose_stage
from trading_core.types import Stage


@pytest.mark.parametrize(
    ("candidate", "production", "eligible", "shadow", "expected"),
    [
        ({"sharpe": 1.0}, None, True, True, Stage.PRODUCTION),
        ({"sharpe": 1.0}, None, False, True, Stage.CANDIDATE),
        ({"sharpe": 1.5}, {"sharpe": 1.0}, True, True, Stage.SHADOW),
        ({"sharpe": 1.5}, {"sharpe": 1.0}, True, False, Stage.PRODUCTION),
        ({"sharpe": 1.05}, {"sharpe": 1.0}, True, True, Stage.ARCHIVED),
        ({"sharpe": 0.5}, {"sharpe": 1.0}, True, True, Stage.ARCHIVED),
        ({"sharpe": float("nan")}, {"sharpe": 1.0}, True, True, Stage.ARCHIVED),
        ({"sharpe": 0.2}, {"sharpe": float("nan")}, True, True, Stage.SHADOW),
        ({"sharpe": 2.0}, {"sharpe": 1.0}, False, True, Stage.CANDIDATE),
    ],
)
def test_choose_stage_known_cases(
    candidate: dict, production: dict | None, eligible: bool, shadow: bool, expected: Stage
) -> None:
    decision = choose_stage(
        candidate,
        production,
        eligible=eligible,
        ineligible_reason="3 windows < min_windows 5",
        metric="sharpe",
        min_improvement=0.1,
        shadow_enabled=shadow,
    )
    assert decision.stage == expected
    assert decision.reason


def test_ineligible_reason_is_carried() -> None:
    decision = choose_stage(
        {"sharpe": 3.0},
        None,
        eligible=False,
        ineligible_reason="12 trades < 100",
        metric="sharpe",
        min_improvement=0.0,
        shadow_enabled=True,
    )
    assert "12 trades < 100" in decision.reason
