"""Best-model selection: what stage a freshly validated candidate goes to.

The rule (config ``training.model_versioning``: ``selection_metric``, ``min_improvement``;
``shadow_testing.enabled``):

1. A candidate that is not eligible (too few walk-forward windows or test trades) stays a
   candidate and is never released.
2. The first eligible model of a key goes to production.
3. An eligible challenger whose out-of-sample metric beats the production model's by more than
   ``min_improvement`` goes to ``shadow`` when shadow testing is on (the shadow evaluation
   promotes it later), else straight to production.
4. Otherwise it is archived with the comparison as the reason.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from trading_core.types import Stage

Metric = Literal["sharpe", "edge_after_cost_bps", "sortino"]


@dataclass(frozen=True, slots=True)
class StageDecision:
    stage: Stage
    reason: str


def choose_stage(
    candidate: Mapping[str, float],
    production: Mapping[str, float] | None,
    *,
    eligible: bool,
    ineligible_reason: str = "",
    metric: Metric,
    min_improvement: float,
    shadow_enabled: bool,
) -> StageDecision:
    """Stage for one candidate given its and the current champion's out-of-sample metrics."""
    if not eligible:
        return StageDecision(Stage.CANDIDATE, f"not eligible: {ineligible_reason or 'unknown'}")
    score = _metric(candidate, metric)
    if production is None:
        return StageDecision(
            Stage.PRODUCTION, f"first eligible model of the key ({metric}={score:.3f})"
        )
    champion = _metric(production, metric)
    if score > champion + min_improvement:
        stage = Stage.SHADOW if shadow_enabled else Stage.PRODUCTION
        return StageDecision(
            stage,
            f"{metric} {score:.3f} beats production {champion:.3f} by more than {min_improvement}",
        )
    return StageDecision(
        Stage.ARCHIVED,
        f"{metric} {score:.3f} does not beat production {champion:.3f} + {min_improvement}",
    )


def _metric(metrics: Mapping[str, float], name: str) -> float:
    value = metrics.get(name)
    if value is None or not math.isfinite(float(value)):
        return -math.inf
    return float(value)
