"""The daily shadow evaluation and the automatic rollback, against the Brain Library.

``evaluate_shadow_models``: for every model in shadow, the periods Hamilton recorded against the
key's current production model become a verdict (:mod:`trading_core.shadow.lifecycle`):

* promote -> the challenger enters production (the library archives the previous production
  model in the same transaction); the stage history keeps the verdict's statistics;
* reject -> the challenger is archived with the reasons and statistics;
* wait -> a review entry in the stage history (same stage) with the statistics of the look.

The newest recorded period of the challenger is re-recorded with the decision, so the
``shadow_results`` rows say where each test ended.

``auto_rollback_production`` (``shadow_testing.auto_rollback``): a production model's live
performance is its realized PnL (trade outcomes linked to DecisionEvents it decided, real book,
never shadow) since it last entered production, within the trailing ``window_days`` up to
``as_of``, as per-bar returns on ``risk.initial_capital_usd`` (its contribution to the account's
return). :func:`trading_core.shadow.rollback.auto_rollback_check` judges it; on a breach the
key's previous production version comes back (``BrainLibrary.rollback``) with the reason. A
breach without an earlier version to restore is recorded as a review and left serving.
The caller writes a release afterwards (the asset's push), which Hamilton then follows.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from trading_core.brain import BrainLibrary, ModelVersion
from trading_core.config.models import EngineConfig
from trading_core.errors import ModelNotFoundError
from trading_core.observability.logging import get_logger
from trading_core.shadow.lifecycle import (
    audit_statistics,
    collect_evidence,
    review_challenger,
    review_seed,
    verdict_reason,
)
from trading_core.shadow.periods import ShadowPeriod
from trading_core.shadow.rollback import auto_rollback_check
from trading_core.shadow.trades import realized_bar_returns
from trading_core.types import Stage, bars_per_year, timeframe_ms

SHADOW_ACTOR = "shadow-evaluation"
ROLLBACK_ACTOR = "auto-rollback"
_DECISION_COLUMN = {"promote": "promote", "reject": "reject", "wait": "continue"}


def _log() -> Any:
    return get_logger(__name__)


@dataclass(frozen=True)
class ShadowReview:
    """What the evaluation decided for one challenger and why."""

    key: str
    challenger: str
    champion: str | None
    decision: str
    reasons: tuple[str, ...]
    statistics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RollbackReview:
    """The auto-rollback check of one production model; ``restored`` names the model that
    serves again after a rollback (None: nothing rolled back)."""

    key: str
    model: str
    breached: bool
    reasons: tuple[str, ...]
    max_drawdown_pct: float
    sharpe_annualized: float
    bars_used: int
    restored: str | None = None


def evaluate_shadow_models(library: BrainLibrary, config: EngineConfig) -> list[ShadowReview]:
    """Decide every model in shadow (module docstring); keys in sorted order."""
    reviews = []
    for model in sorted(library.list_models(stage=Stage.SHADOW), key=lambda m: m.name):
        reviews.append(_evaluate(library, config, model))
    return reviews


def _evaluate(library: BrainLibrary, config: EngineConfig, model: ModelVersion) -> ShadowReview:
    champion = library.production_model(model.key)
    results = library.shadow_results(model.key)
    evidence = collect_evidence(
        results, challenger=model.name, champion=None if champion is None else champion.name
    )
    verdict = review_challenger(
        evidence,
        section=config.shadow_testing,
        timeframe=model.key.timeframe,
        seed=review_seed(model.name),
    )
    stats = audit_statistics(verdict, evidence)
    reason = verdict_reason(verdict)
    if verdict.decision == "promote":
        library.set_stage(
            model.name, Stage.PRODUCTION, actor=SHADOW_ACTOR, reason=reason, statistics=stats
        )
    elif verdict.decision == "reject":
        library.set_stage(
            model.name, Stage.ARCHIVED, actor=SHADOW_ACTOR, reason=reason, statistics=stats
        )
    else:
        library.record_stage_review(model.name, actor=SHADOW_ACTOR, reason=reason, statistics=stats)
    if evidence.periods:
        _mark_last_period(library, evidence.periods[-1], verdict.decision, stats)
    _log().info(
        "shadow_evaluated",
        key=model.key.slug,
        challenger=model.name,
        champion=evidence.champion,
        decision=verdict.decision,
        bars=evidence.n_bars,
        p_value_mean_difference=stats.get("p_value_mean_difference"),
        p_value_sharpe=stats.get("p_value_sharpe"),
    )
    return ShadowReview(
        model.key.slug,
        model.name,
        evidence.champion,
        verdict.decision,
        verdict.reasons,
        stats,
    )


def _mark_last_period(
    library: BrainLibrary, period: ShadowPeriod, decision: str, stats: dict[str, Any]
) -> None:
    arguments = period.record_arguments(_DECISION_COLUMN[decision])
    arguments["statistics"] = {**arguments["statistics"], "verdict": stats}
    library.record_shadow_result(**arguments)


def auto_rollback_production(
    library: BrainLibrary, config: EngineConfig, *, as_of: datetime
) -> list[RollbackReview]:
    """Check every production model that traded in the window (module docstring)."""
    section = config.shadow_testing.auto_rollback
    if not section.enabled:
        return []
    window_start = as_of - timedelta(days=section.window_days)
    trades: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for outcome in library.trade_outcomes(since=window_start, until=as_of):
        if not outcome["shadow"] and outcome["model_version"]:
            trades[outcome["model_version"]].append((outcome["closed_at"], outcome["pnl_usd"]))
    reviews = []
    for model in sorted(library.list_models(stage=Stage.PRODUCTION), key=lambda m: m.name):
        review = _check_model(library, config, model, trades.get(model.name, []), window_start,
                              as_of)  # fmt: skip
        if review is not None:
            reviews.append(review)
    return reviews


def _check_model(
    library: BrainLibrary,
    config: EngineConfig,
    model: ModelVersion,
    closes: list[tuple[datetime, float]],
    window_start: datetime,
    as_of: datetime,
) -> RollbackReview | None:
    entered, earlier = _production_entry(library, model)
    start = max(window_start, entered)
    closes = [(at, pnl) for at, pnl in closes if at >= start]
    if not closes or start >= as_of:
        return None  # nothing traded while serving: no live evidence either way
    bar_ms = timeframe_ms(model.key.timeframe)
    returns = realized_bar_returns(
        closes, start=start, end=as_of, bar_ms=bar_ms, capital_usd=config.risk.initial_capital_usd
    )
    verdict = auto_rollback_check(
        returns,
        section=config.shadow_testing.auto_rollback,
        bars_per_year=bars_per_year(model.key.timeframe),
    )
    restored = None
    if verdict.breached:
        restored = _roll_back(library, model, verdict.reasons, earlier, trades=len(closes))
    return RollbackReview(
        model.key.slug,
        model.name,
        verdict.breached,
        verdict.reasons,
        verdict.max_drawdown_pct,
        verdict.sharpe_annualized,
        verdict.bars_used,
        restored,
    )


def _production_entry(library: BrainLibrary, model: ModelVersion) -> tuple[datetime, bool]:
    """When the model last entered production, and whether another version served before."""
    key_history = library.stage_history(model.key)
    entries = [
        c
        for c in key_history
        if c.to_stage is Stage.PRODUCTION and c.from_stage is not Stage.PRODUCTION
    ]
    mine = [c.at for c in entries if c.model_name == model.name]
    if not mine:
        raise ModelNotFoundError(f"{model.name} is in production but its history has no entry")
    earlier = any(c.model_name != model.name for c in entries)
    return max(mine), earlier


def _roll_back(
    library: BrainLibrary,
    model: ModelVersion,
    reasons: tuple[str, ...],
    earlier: bool,
    *,
    trades: int,
) -> str | None:
    why = f"live performance breached the floor over {trades} closed trades: " + "; ".join(reasons)
    if not earlier:
        library.record_stage_review(
            model.name, actor=ROLLBACK_ACTOR, reason=f"{why}; no earlier version to restore"
        )
        _log().error("auto_rollback_impossible", model=model.name, reasons=list(reasons))
        return None
    restored = library.rollback(model.key, actor=ROLLBACK_ACTOR, reason=why)
    _log().warning("auto_rolled_back", model=model.name, restored=restored.name)
    return restored.name
