"""Best-model selection: the gate's verdict, the first model of a key, challengers against the
champion on the same out-of-sample days."""

import math

import numpy as np
import pytest

from trading_core.config.models import PromotionGateSection
from trading_core.training.gate import GateVerdict
from trading_core.training.selection import (
    DAY_MS,
    ChallengerComparison,
    choose_stage,
    compare_with_champion,
    daily_returns,
)
from trading_core.types import Stage

PASSED = GateVerdict("K", True, "passed (fdr_bh adjusted p <= 0.05): ...", "fdr_bh", 0.05, 10)
FAILED = GateVerdict("K", False, "not significant (...)", "fdr_bh", 0.05, 10, p_adjusted=0.4)
BETTER = ChallengerComparison(True, "mean daily return difference +3 bps, p 0.01")
NOT_BETTER = ChallengerComparison(False, "not significant: p 0.3")


@pytest.mark.parametrize(
    ("gate", "has_production", "comparison", "shadow", "expected"),
    [
        (PASSED, False, None, True, Stage.PRODUCTION),
        (FAILED, False, None, True, Stage.CANDIDATE),
        (FAILED, True, BETTER, True, Stage.CANDIDATE),
        (PASSED, True, BETTER, True, Stage.SHADOW),
        (PASSED, True, BETTER, False, Stage.PRODUCTION),
        (PASSED, True, NOT_BETTER, True, Stage.ARCHIVED),
        (PASSED, True, None, True, Stage.ARCHIVED),
    ],
)
def test_choose_stage_known_cases(
    gate: GateVerdict,
    has_production: bool,
    comparison: ChallengerComparison | None,
    shadow: bool,
    expected: Stage,
) -> None:
    decision = choose_stage(
        gate,
        has_production=has_production,
        comparison=comparison,
        candidate_metric=2.0,
        champion_metric=1.0,
        shadow_enabled=shadow,
    )
    assert decision.stage == expected and decision.reason


def test_failed_gate_reason_is_carried() -> None:
    decision = choose_stage(FAILED, has_production=False, comparison=None, shadow_enabled=True)
    assert decision.reason == f"gate: {FAILED.reason}"


def test_significant_challenger_must_also_clear_min_improvement() -> None:
    decision = choose_stage(
        PASSED,
        has_production=True,
        comparison=BETTER,
        candidate_metric=1.05,
        champion_metric=1.0,
        min_improvement=0.1,
        shadow_enabled=True,
    )
    assert decision.stage is Stage.ARCHIVED and "does not beat" in decision.reason


def _points(returns: np.ndarray, first_day: int = 20_000) -> list[list[float]]:
    equity = 100_000.0 * np.cumprod(1.0 + returns)
    return [
        [float((first_day + i) * DAY_MS + 23 * 3_600_000), float(e)] for i, e in enumerate(equity)
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_challenger_significantly_better_on_same_days_wins(seed: int) -> None:
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0, 0.01, 80)
    champion = market + rng.normal(0.0, 0.001, 80)
    challenger = market + 0.002 + rng.normal(0.0, 0.001, 80)
    result = compare_with_champion(_points(challenger), _points(champion), PromotionGateSection())
    assert result.significant and result.test is not None and result.test.n_periods == 79


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_challenger_equal_to_champion_is_not_significant(seed: int) -> None:
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0005, 0.01, 80)
    champion = market + rng.normal(0.0, 0.002, 80)
    challenger = market + rng.normal(0.0, 0.002, 80)
    result = compare_with_champion(_points(challenger), _points(champion), PromotionGateSection())
    assert not result.significant and "not significant" in result.reason


def test_challenger_on_disjoint_days_has_insufficient_paired_evidence() -> None:
    rng = np.random.default_rng(5)
    champion = _points(rng.normal(0, 0.01, 60), first_day=20_000)
    challenger = _points(rng.normal(0.01, 0.01, 60), first_day=20_050)
    result = compare_with_champion(challenger, champion, PromotionGateSection())
    assert not result.significant
    assert result.reason.startswith("insufficient paired evidence: 9 common")


def test_daily_returns_skip_bad_points_and_gaps() -> None:
    day = DAY_MS
    points = [
        [0, 100.0],
        [day, 110.0],
        [2 * day, float("nan")],
        [3 * day, 121.0],
        [4 * day, 133.1],
        [9],
    ]
    returns = daily_returns(points)
    assert returns == {1: pytest.approx(0.1), 4: pytest.approx(0.1)}
    assert all(math.isfinite(v) for v in returns.values())
