"""The automatic shadow-test verdict: promote the challenger, keep waiting, or reject it.

Rules, in order (``alpha = 1 - promotion_criteria.statistical_significance``):

1. Gate. While ``duration_days < min_duration_days`` or either model has fewer than
   ``min_trades`` trades, the verdict is "wait", unless ``max_duration_days`` is reached, when it
   is "reject" (inconclusive: not enough evidence in the allowed time).
2. Promote only when ALL of these hold:
   - annualized Sharpe improvement >= ``min_sharpe_improvement`` (point estimate);
   - win-rate improvement >= ``min_win_rate_improvement`` (point estimate);
   - the HAC paired mean-difference test rejects "challenger not better" at the look's level;
   - the Sharpe-difference test (Ledoit–Wolf studentized block bootstrap by default) rejects
     "challenger not better" at the look's level.
   Both improvement thresholds are required because the seed lists both as promotion criteria
   and a production swap is costly to undo: a challenger that wins by a higher Sharpe but loses
   more often, or the reverse, stays in shadow. Requiring every test to reject is an
   intersection–union test (Berger 1982, "Multiparameter Hypothesis Testing and Acceptance
   Sampling", Technometrics 24(4)): its size is at most the level of each test, so no
   multiple-testing correction is needed; the price is power, not false promotions. The
   win-rate z test is reported but not required (with ~100 trades per side its standard error
   is ~0.07, so requiring it would make promotion nearly impossible within four weeks).
3. Reject when the challenger is significantly worse (either return test's opposite one-sided
   p-value < ``alpha``), or when ``max_duration_days`` is reached without promotion.
4. Otherwise wait.

The look's level: the pipeline re-evaluates a running shadow test every day, and repeated looks
at a fixed ``alpha`` promote an equal challenger far more often than ``alpha`` (measured: ~0.09
for daily looks, ``alpha`` = 0.05). With ``sequential_looks=True`` (the default) the promotion
tests use the O'Brien–Fleming-type per-look level of :mod:`trading_core.shadow.sequential`,
which keeps the false-promotion rate over ALL looks between ``min_duration_days`` and
``max_duration_days`` at most ``alpha``; ``sequential_looks=False`` tests every look at ``alpha``
(right for a single, final evaluation only). Rejection for being worse always uses ``alpha``:
a false rejection only keeps the incumbent.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, get_args

import numpy.typing as npt

from trading_core.config.models import ShadowTestingSection
from trading_core.errors import ConfigError
from trading_core.shadow.paired import TestResult, as_paired_returns, paired_mean_difference_test
from trading_core.shadow.sequential import sequential_alpha
from trading_core.shadow.sharpe import (
    MIN_SHARPE_PERIODS,
    SharpeMethod,
    per_bar_sharpe,
    sharpe_difference_test,
)
from trading_core.shadow.win_rate import win_count, win_rate_difference

Decision = Literal["promote", "wait", "reject"]
DECISIONS: Final[tuple[str, ...]] = get_args(Decision)


@dataclass(frozen=True, slots=True)
class ShadowVerdict:
    """What to do with a challenger, why (human-readable), and the figures behind it."""

    decision: Decision
    reasons: tuple[str, ...]
    statistics: Mapping[str, float]

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision={self.decision!r} must be one of {list(DECISIONS)}")
        if not self.reasons:
            raise ValueError("a verdict needs at least one reason")
        object.__setattr__(self, "statistics", MappingProxyType(dict(self.statistics)))


@dataclass(frozen=True, slots=True)
class _Evidence:
    mean_test: TestResult
    sharpe_test: TestResult
    sharpe_improvement: float
    win_rate_improvement: float
    win_rate_p_value: float


def evaluate_challenger(
    champion_returns: npt.ArrayLike,
    challenger_returns: npt.ArrayLike,
    champion_trades: npt.ArrayLike,
    challenger_trades: npt.ArrayLike,
    *,
    section: ShadowTestingSection,
    bars_per_year: float,
    duration_days: float,
    seed: int,
    sharpe_method: SharpeMethod = "ledoit_wolf_bootstrap",
    sequential_looks: bool = True,
) -> ShadowVerdict:
    """Verdict on a challenger from paired per-bar net returns and per-trade net returns.

    ``duration_days`` is how long the shadow test has run; ``seed`` fixes the bootstrap;
    ``sequential_looks`` picks the per-look promotion level (see the module docstring, which
    states the rules).
    """
    _check_inputs(section, bars_per_year, duration_days)
    champ, chall = as_paired_returns(
        champion_returns, challenger_returns, min_periods=MIN_SHARPE_PERIODS
    )
    wins_champ, n_champ = win_count(champion_trades, name="champion trade returns")
    wins_chall, n_chall = win_count(challenger_trades, name="challenger trade returns")
    alpha = 1.0 - section.promotion_criteria.statistical_significance
    stats: dict[str, float] = {
        "duration_days": duration_days,
        "n_periods": champ.size,
        "n_trades_champion": n_champ,
        "n_trades_challenger": n_chall,
        "significance_level": alpha,
        "promotion_level": _promotion_level(section, alpha, duration_days, sequential_looks),
    }
    gate = _gate_reasons(section, duration_days, min(n_champ, n_chall))
    if gate:
        if duration_days >= section.max_duration_days:
            inconclusive = f"inconclusive: max duration {section.max_duration_days} days reached"
            return ShadowVerdict("reject", (inconclusive, *gate), stats)
        return ShadowVerdict("wait", gate, stats)
    sharpe_champ = per_bar_sharpe(champ) * math.sqrt(bars_per_year)
    sharpe_chall = per_bar_sharpe(chall) * math.sqrt(bars_per_year)
    win_diff, win_p = win_rate_difference(champion_trades, challenger_trades)
    evidence = _Evidence(
        mean_test=paired_mean_difference_test(champ, chall),
        sharpe_test=sharpe_difference_test(
            champ,
            chall,
            method=sharpe_method,
            block_length_bars=min(section.block_length_bars, champ.size),
            bootstrap_samples=section.bootstrap_samples,
            seed=seed,
        ),
        sharpe_improvement=sharpe_chall - sharpe_champ,
        win_rate_improvement=win_diff,
        win_rate_p_value=win_p,
    )
    stats |= {
        "sharpe_champion_annualized": sharpe_champ,
        "sharpe_challenger_annualized": sharpe_chall,
        "win_rate_champion": wins_champ / n_champ,
        "win_rate_challenger": wins_chall / n_chall,
        **_evidence_statistics(evidence),
    }
    decision, reasons = _decide(evidence, section, duration_days, stats["promotion_level"])
    return ShadowVerdict(decision, reasons, stats)


def _promotion_level(
    section: ShadowTestingSection, alpha: float, duration_days: float, sequential_looks: bool
) -> float:
    if not sequential_looks:
        return alpha
    return sequential_alpha(
        alpha,
        duration_days=duration_days,
        min_duration_days=section.min_duration_days,
        max_duration_days=section.max_duration_days,
    )


def _check_inputs(
    section: ShadowTestingSection, bars_per_year: float, duration_days: float
) -> None:
    if not (math.isfinite(bars_per_year) and bars_per_year > 0.0):
        raise ValueError(f"bars_per_year={bars_per_year!r} must be a finite number > 0")
    if not (math.isfinite(duration_days) and duration_days >= 0.0):
        raise ValueError(f"duration_days={duration_days!r} must be a finite number >= 0")
    if section.max_duration_days < section.min_duration_days:
        raise ConfigError(
            f"shadow_testing.max_duration_days={section.max_duration_days} is below "
            f"shadow_testing.min_duration_days={section.min_duration_days}; it must be >= it"
        )


def _gate_reasons(
    section: ShadowTestingSection, duration_days: float, fewest_trades: int
) -> tuple[str, ...]:
    reasons = []
    if duration_days < section.min_duration_days:
        reasons.append(f"duration {duration_days:.1f} days < min {section.min_duration_days}")
    if fewest_trades < section.min_trades:
        reasons.append(f"fewest trades {fewest_trades} < min {section.min_trades} (either model)")
    return tuple(reasons)


def _evidence_statistics(evidence: _Evidence) -> dict[str, float]:
    return {
        "sharpe_improvement_annualized": evidence.sharpe_improvement,
        "win_rate_improvement": evidence.win_rate_improvement,
        "mean_difference_per_bar": evidence.mean_test.estimate,
        "p_value_mean_difference": evidence.mean_test.p_value,
        "p_value_mean_difference_worse": evidence.mean_test.p_value_worse,
        "p_value_sharpe": evidence.sharpe_test.p_value,
        "p_value_sharpe_worse": evidence.sharpe_test.p_value_worse,
        "p_value_win_rate": evidence.win_rate_p_value,
    }


def _decide(
    evidence: _Evidence, section: ShadowTestingSection, duration_days: float, level: float
) -> tuple[Decision, tuple[str, ...]]:
    criteria = section.promotion_criteria
    alpha = 1.0 - criteria.statistical_significance
    checks = (
        _threshold(
            "sharpe improvement", evidence.sharpe_improvement, criteria.min_sharpe_improvement
        ),
        _threshold(
            "win-rate improvement", evidence.win_rate_improvement, criteria.min_win_rate_improvement
        ),
        _significant("HAC mean-difference", evidence.mean_test.p_value, level),
        _significant(
            f"Sharpe-difference ({_name(evidence.sharpe_test)})",
            evidence.sharpe_test.p_value,
            level,
        ),
    )
    reasons = tuple(text for _, text in checks)
    win_note = f"win-rate z-test p={evidence.win_rate_p_value:.3g} (reported, not required)"
    if all(passed for passed, _ in checks):
        return "promote", (*reasons, win_note)
    worse = _significantly_worse(evidence, alpha)
    if worse:
        return "reject", (*worse, *reasons)
    if duration_days >= section.max_duration_days:
        ended = f"max duration {section.max_duration_days} days reached without promotion"
        return "reject", (ended, *reasons)
    return "wait", ("not every promotion criterion is met yet", *reasons)


def _significantly_worse(evidence: _Evidence, alpha: float) -> tuple[str, ...]:
    return tuple(
        f"challenger significantly worse: {label} p_worse={test.p_value_worse:.3g} < {alpha:.3g}"
        for label, test in (
            ("HAC mean-difference", evidence.mean_test),
            (f"Sharpe-difference ({_name(evidence.sharpe_test)})", evidence.sharpe_test),
        )
        if test.p_value_worse < alpha
    )


def _threshold(label: str, value: float, minimum: float) -> tuple[bool, str]:
    passed = value >= minimum
    return passed, f"{label} {value:.3g} {'>=' if passed else '<'} {minimum:.3g}"


def _significant(label: str, p_value: float, alpha: float) -> tuple[bool, str]:
    passed = p_value < alpha
    return passed, f"{label} p={p_value:.3g} {'<' if passed else '>='} {alpha:.3g}"


def _name(test: TestResult) -> str:
    return test.method.split("(", 1)[0]
