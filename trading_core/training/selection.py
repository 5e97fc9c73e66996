"""Best-model selection: what stage a freshly validated candidate goes to.

The rule (config ``validation.promotion_gate``, ``training.model_versioning``:
``selection_metric``, ``min_improvement``; ``shadow_testing.enabled``):

1. A candidate the promotion gate (``trading_core.training.gate``) does not pass stays a
   candidate, with the gate's reason, and is never released: insufficient evidence, no positive
   out-of-sample result after costs, or not significant once the day's trials are counted.
2. The first model of a key to pass the gate goes to production.
3. A challenger that passes the gate must also beat the production model *on the same
   out-of-sample days*: a one-sided HAC test (Newey–West, ``trading_core.shadow.paired``) of the
   mean daily return difference at ``challenger_alpha`` over at least ``min_paired_days``
   common days, and its metric must exceed the champion's by more than ``min_improvement``.
   Then it goes to ``shadow`` when shadow testing is on (the shadow evaluation promotes it
   later), else straight to production.
4. Otherwise it is archived with the comparison as the reason.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from trading_core.config.models import PromotionGateSection
from trading_core.shadow.paired import TestResult, paired_mean_difference_test
from trading_core.training.gate import GateVerdict
from trading_core.types import Stage

Metric = Literal["sharpe", "edge_after_cost_bps", "sortino"]
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class StageDecision:
    stage: Stage
    reason: str


@dataclass(frozen=True, slots=True)
class ChallengerComparison:
    """Challenger against champion on their common out-of-sample days."""

    significant: bool
    reason: str
    test: TestResult | None = None


def choose_stage(
    gate: GateVerdict,
    *,
    has_production: bool,
    comparison: ChallengerComparison | None,
    candidate_metric: float = math.nan,
    champion_metric: float = math.nan,
    metric: Metric = "sharpe",
    min_improvement: float = 0.0,
    shadow_enabled: bool,
) -> StageDecision:
    """Stage for one candidate given the gate's verdict and, when the key already has a
    production model, the paired comparison with it."""
    if not gate.passed:
        return StageDecision(Stage.CANDIDATE, f"gate: {gate.reason}")
    if not has_production:
        return StageDecision(
            Stage.PRODUCTION, f"first model of the key through the gate; {gate.reason}"
        )
    if comparison is None or not comparison.significant:
        why = comparison.reason if comparison else "no paired comparison with production"
        return StageDecision(Stage.ARCHIVED, f"does not beat production: {why}")
    score, champion = _finite(candidate_metric), _finite(champion_metric)
    if not score > champion + min_improvement:
        return StageDecision(
            Stage.ARCHIVED,
            f"{metric} {score:.3f} does not beat production {champion:.3f} + {min_improvement}",
        )
    stage = Stage.SHADOW if shadow_enabled else Stage.PRODUCTION
    return StageDecision(stage, f"beats production: {comparison.reason}")


def compare_with_champion(
    challenger_daily: Sequence[Sequence[float]],
    champion_daily: Sequence[Sequence[float]],
    section: PromotionGateSection,
) -> ChallengerComparison:
    """Paired test on the daily out-of-sample returns both models have (``[t_ms, equity]``
    points at each UTC day's last bar, as the validation stores them)."""
    chall, champ = daily_returns(challenger_daily), daily_returns(champion_daily)
    days = sorted(set(chall) & set(champ))
    if len(days) < section.min_paired_days:
        return ChallengerComparison(
            False,
            f"insufficient paired evidence: {len(days)} common out-of-sample days "
            f"< min_paired_days {section.min_paired_days}",
        )
    test = paired_mean_difference_test(
        np.array([champ[d] for d in days]), np.array([chall[d] for d in days])
    )
    figures = (
        f"mean daily return difference {test.estimate * 1e4:+.2f} bps "
        f"(se {test.standard_error * 1e4:.2f}), one-sided p {test.p_value:.3g} over {len(days)} "
        f"common days"
    )
    if test.p_value <= section.challenger_alpha:
        return ChallengerComparison(True, f"{figures} <= {section.challenger_alpha:g}", test)
    return ChallengerComparison(
        False, f"not significant: {figures} > {section.challenger_alpha:g}", test
    )


def daily_returns(points: Sequence[Sequence[float]]) -> dict[int, float]:
    """UTC day -> return of that day from consecutive daily equity points; bad points skipped."""
    out: dict[int, float] = {}
    previous: tuple[int, float] | None = None
    for point in points:
        if len(point) != 2:
            continue
        t, equity = float(point[0]), float(point[1])
        if not (math.isfinite(t) and math.isfinite(equity) and equity > 0.0):
            previous = None
            continue
        day = int(t // DAY_MS)
        if previous is not None and day == previous[0] + 1:
            out[day] = equity / previous[1] - 1.0
        previous = (day, equity)
    return out


def _finite(value: float) -> float:
    return float(value) if math.isfinite(float(value)) else -math.inf
