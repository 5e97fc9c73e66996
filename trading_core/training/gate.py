"""The promotion gate: which of the day's validated keys carry out-of-sample edge that is
unlikely to be luck, once the number of keys tried is taken into account.

Every key of the day is one trial (times ``configurations_per_key``, the hyperparameter
configurations tried behind each key). For each key the gate reads the per-bar out-of-sample
return series' moments (:func:`trading_core.training.significance.sharpe_evidence`, computed by
the walk-forward backtest after costs) and computes

* the probabilistic Sharpe ratio against 0 (Bailey & López de Prado 2012), whose complement is
  the one-sided p-value of "the true Sharpe ratio is not positive";
* that p-value adjusted across the day's tested keys by Benjamini & Hochberg (1995) (default;
  the false-discovery rate among promoted keys is at most ``alpha``; under a market with no edge
  at all, the chance that *any* key passes is at most ``alpha``) or Benjamini & Yekutieli (2001)
  (valid under any dependence between keys, more conservative), by
  ``statsmodels.stats.multitest.multipletests``. Keys with insufficient evidence (too few
  windows, trades or returns; constant or non-finite returns) are filtered out of that family
  *before* their returns are looked at: the filter reads counts, never the sign or size of the
  result, so under the null it is independent of the p-value and the FDR control holds
  (independent filtering: Bourgon, Gentleman & Huber 2010, PNAS 107(21)). With
  ``configurations_per_key`` k > 1 each tested key stands for k tests (the k - 1 unseen ones
  enter with p = 1);
* the deflated Sharpe ratio (Bailey & López de Prado 2014) against the expected maximum of
  *all* the day's trials (filtered keys included: every key tried counts here). The
  cross-sectional variance of the Sharpe estimates is taken in standardized units
  (``z = SR sqrt(n - 1)``, comparable across 1h and 4h keys) and floored at 1, the variance of a
  zero-edge trial, so a small or homogeneous day never lowers the bar.

A key passes when its evidence is sufficient, its out-of-sample Sharpe ratio and net edge after
costs are positive, and (``method``) its adjusted p-value is at most ``alpha`` ("fdr_bh",
"fdr_by") or its DSR is at least ``1 - alpha`` ("dsr"). Every figure is kept with the verdict.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from trading_core.config.models import PromotionGateSection
from trading_core.training.significance import (
    SharpeEvidence,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
)


@dataclass(frozen=True, slots=True)
class KeyEvidence:
    """What the gate needs of one validated key."""

    slug: str
    evidence: SharpeEvidence
    edge_after_cost_bps: float
    n_trades: int
    bars_per_year: float
    eligible: bool = True  # enough usable walk-forward windows and test trades
    ineligible_reason: str = ""


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """The gate's figures and verdict for one key (Sharpe ratios annualized)."""

    slug: str
    passed: bool
    reason: str
    method: str
    alpha: float
    n_trials: int
    n_tested: int = 0  # the Benjamini-Hochberg/Yekutieli family: tested keys x configurations
    sharpe: float = math.nan
    sharpe_se: float = math.nan
    psr: float = math.nan
    p_value: float = 1.0
    p_adjusted: float = 1.0
    dsr: float = math.nan
    expected_max_sharpe: float = math.nan

    def __post_init__(self) -> None:
        for name in ("p_value", "p_adjusted"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value!r} must lie in [0, 1]")
        if self.n_trials < 1:
            raise ValueError(f"n_trials={self.n_trials} must be >= 1")

    def metrics(self) -> dict[str, float]:
        """Flat figures for the Brain Library's metrics (finite ones only)."""
        values = {
            "oos_sharpe_se": self.sharpe_se,
            "oos_psr": self.psr,
            "oos_p_value": self.p_value,
            "oos_p_adjusted": self.p_adjusted,
            "oos_dsr": self.dsr,
            "gate_trials": float(self.n_trials),
            "gate_tested": float(self.n_tested),
            "gate_passed": 1.0 if self.passed else 0.0,
        }
        return {k: v for k, v in values.items() if math.isfinite(v)}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = None if isinstance(value, float) and not math.isfinite(value) else value
        return out


def judge_keys(
    keys: Sequence[KeyEvidence], section: PromotionGateSection, *, n_tried: int | None = None
) -> dict[str, GateVerdict]:
    """One verdict per key; ``n_tried`` keys were tried in all (default: ``len(keys)``)."""
    tried = max(len(keys), n_tried or 0)
    if tried == 0:
        return {}
    n_trials = tried * section.configurations_per_key
    problems = {k.slug: _insufficient(k, section) for k in keys}
    usable = [k for k in keys if not problems[k.slug]]
    n_tested = len(usable) * section.configurations_per_key
    p_values = {k.slug: _p_value(k.evidence) for k in usable}
    adjusted = _adjust(p_values, n_tested, section.method if section.method != "dsr" else "fdr_bh")
    z_variance = _standardized_variance(usable)
    verdicts: dict[str, GateVerdict] = {}
    for key in keys:
        if problems[key.slug]:
            verdicts[key.slug] = GateVerdict(
                slug=key.slug,
                passed=False,
                reason=f"insufficient evidence: {problems[key.slug]}",
                method=section.method,
                alpha=section.alpha,
                n_trials=n_trials,
                n_tested=n_tested,
            )
            continue
        verdicts[key.slug] = _verdict(
            key, section, (n_trials, n_tested), p_values[key.slug], adjusted[key.slug], z_variance
        )
    return verdicts


def _insufficient(key: KeyEvidence, section: PromotionGateSection) -> str:
    if not key.eligible:
        return key.ineligible_reason or "not eligible"
    if key.evidence.problem:
        return key.evidence.problem
    if key.evidence.n_returns < section.min_oos_returns:
        return f"{key.evidence.n_returns} out-of-sample returns < {section.min_oos_returns}"
    if not math.isfinite(key.edge_after_cost_bps) and key.n_trades > 0:
        return f"edge after cost {key.edge_after_cost_bps!r} is not a finite number"
    return ""


def _p_value(evidence: SharpeEvidence) -> float:
    """One-sided p-value of "true Sharpe <= 0": 1 - PSR(0)."""
    from scipy.stats import norm  # lazy: see _adjust

    se = evidence.standard_error
    return float(norm.sf(evidence.sharpe_per_bar / se))


def _adjust(p_values: dict[str, float], n_tests: int, method: str) -> dict[str, float]:
    """Multiple-testing adjusted p-values over ``n_tests`` (unseen tests count as p = 1)."""
    # imported here, not at module level: scipy.stats and statsmodels cost every process that
    # imports the training package (each Dagster step) ~1.5 s (bench/cli_startup.py)
    from statsmodels.stats.multitest import multipletests

    if not p_values:
        return {}
    observed = np.array(list(p_values.values()), dtype=np.float64)
    padded = np.concatenate([observed, np.ones(max(n_tests - observed.size, 0))])
    _, corrected, _, _ = multipletests(padded, method=method)
    return {
        slug: float(min(max(p, 0.0), 1.0))
        for slug, p in zip(p_values, corrected[: observed.size], strict=True)
    }


def _standardized_variance(usable: Sequence[KeyEvidence]) -> float:
    """Variance of ``SR sqrt(n - 1)`` across the usable trials, floored at the null's 1."""
    if len(usable) < 2:
        return 1.0
    z = np.array([k.evidence.sharpe_per_bar * math.sqrt(k.evidence.n_returns - 1) for k in usable])
    return max(float(np.var(z, ddof=1)), 1.0)


def _verdict(
    key: KeyEvidence,
    section: PromotionGateSection,
    counts: tuple[int, int],
    p_value: float,
    p_adjusted: float,
    z_variance: float,
) -> GateVerdict:
    ev = key.evidence
    n = ev.n_returns
    n_trials, n_tested = counts
    annual = math.sqrt(key.bars_per_year)
    sharpe_variance = z_variance / (n - 1)
    moments = {"skewness": ev.skewness, "kurtosis": ev.kurtosis}
    draft = GateVerdict(
        slug=key.slug,
        passed=False,
        reason="",
        method=section.method,
        alpha=section.alpha,
        n_trials=n_trials,
        n_tested=n_tested,
        sharpe=ev.sharpe_per_bar * annual,
        sharpe_se=ev.standard_error * annual,
        psr=probabilistic_sharpe_ratio(ev.sharpe_per_bar, n, **moments),
        p_value=p_value,
        p_adjusted=p_adjusted,
        dsr=deflated_sharpe_ratio(
            ev.sharpe_per_bar, n, n_trials=n_trials, sharpe_variance=sharpe_variance, **moments
        ),
        expected_max_sharpe=expected_max_sharpe(n_trials, sharpe_variance) * annual,
    )
    passed, reason = _rule(key, section, draft)
    return replace(draft, passed=passed, reason=reason)


def _rule(key: KeyEvidence, section: PromotionGateSection, v: GateVerdict) -> tuple[bool, str]:
    sharpe, edge = v.sharpe, key.edge_after_cost_bps
    summary = (
        f"OOS Sharpe {sharpe:.2f} ± {v.sharpe_se:.2f}, edge {edge:.1f} bps, "
        f"{key.n_trades} trades; PSR {v.psr:.3f}, adjusted p {v.p_adjusted:.3g} over "
        f"{v.n_tested} tested keys, DSR {v.dsr:.3f} over {v.n_trials} trials"
    )
    if not sharpe > 0.0 or not edge > 0.0:
        return False, f"no positive out-of-sample result after costs: {summary}"
    if section.method == "dsr":
        significant = v.dsr >= 1.0 - section.alpha
        rule = f"DSR >= {1.0 - section.alpha:g}"
    else:
        significant = v.p_adjusted <= section.alpha
        rule = f"{section.method} adjusted p <= {section.alpha:g}"
    if not significant:
        return False, f"not significant ({rule} fails): {summary}"
    return True, f"passed ({rule}): {summary}"
