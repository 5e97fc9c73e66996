"""How likely an out-of-sample Sharpe ratio is luck: the statistics behind the promotion gate.

* :func:`sharpe_evidence` — the per-bar Sharpe ratio of an out-of-sample return series with its
  sample size, skewness and kurtosis, or the reason the series is no evidence at all (too short,
  constant, non-finite).
* :func:`sharpe_standard_error` — its standard error under non-normal i.i.d. returns (Mertens
  2002, as used by Bailey & López de Prado 2012, eq. 5):
  ``sqrt((1 - g3 SR + (g4 - 1) / 4 SR^2) / (n - 1))`` with ``g3`` the skewness and ``g4`` the
  (Pearson, normal = 3) kurtosis.
* :func:`probabilistic_sharpe_ratio` — Bailey & López de Prado (2012), "The Sharpe Ratio
  Efficient Frontier", Journal of Risk 15(2): ``PSR(SR*) = Phi((SR - SR*) / se(SR))``, the
  probability that the true Sharpe ratio exceeds the benchmark ``SR*``.
* :func:`expected_max_sharpe` / :func:`deflated_sharpe_ratio` — Bailey & López de Prado (2014),
  "The Deflated Sharpe Ratio", Journal of Portfolio Management 40(5), eq. (2): the benchmark is
  the expected maximum of ``N`` Sharpe ratios of zero-edge trials,
  ``sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))``, and the DSR is the PSR
  against it.

Hand-written because neither scipy, statsmodels nor arch ships these formulas (arch's SPA /
StepM test a cross-section of bootstrap losses, not one Sharpe ratio's moments); each is tested
against the papers' worked examples and against simulation
(``tests/unit/trading_core/training/test_significance.py``). All Sharpe ratios here are per bar (not
annualized), so ``n`` is the number of bars.
"""

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

EULER_MASCHERONI: Final = 0.5772156649015329
# Below this many returns the normal approximation of the Sharpe ratio's distribution (Lo 2002)
# is poor; 30 is the usual floor of the central limit theorem's rule of thumb.
MIN_RETURNS_FOR_INFERENCE: Final = 30


@dataclass(frozen=True, slots=True)
class SharpeEvidence:
    """Moments of one out-of-sample per-bar return series; ``problem`` says why it is none."""

    n_returns: int
    mean: float
    std: float
    sharpe_per_bar: float
    skewness: float
    kurtosis: float  # Pearson: 3 for a normal distribution
    problem: str = ""

    @property
    def usable(self) -> bool:
        return not self.problem

    @property
    def standard_error(self) -> float:
        if not self.usable:
            return math.nan
        return sharpe_standard_error(
            self.sharpe_per_bar, self.n_returns, skewness=self.skewness, kurtosis=self.kurtosis
        )


def sharpe_evidence(
    returns: npt.ArrayLike, *, min_returns: int = MIN_RETURNS_FOR_INFERENCE
) -> SharpeEvidence:
    """Per-bar Sharpe ratio (sample std, ``ddof=1``), skewness and kurtosis of ``returns``.

    Never raises on bad data: a series that is too short, constant or holds NaN/inf comes back
    with ``problem`` set (and NaN moments), which the gate turns into "insufficient evidence".
    """
    # imported here, not at module level: scipy.stats and statsmodels cost every process that
    # imports the training package (each Dagster step) ~1.5 s (bench/cli_startup.py)
    from scipy.stats import kurtosis, skew

    values = np.asarray(returns, dtype=np.float64).ravel()
    n = int(values.size)
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        return _no_evidence(n, f"{bad} of {n} out-of-sample returns are NaN or infinite")
    if n < min_returns:
        return _no_evidence(n, f"{n} out-of-sample returns < {min_returns}")
    std = float(values.std(ddof=1))
    mean = float(values.mean())
    if not std > 1e-15 * max(1.0, abs(mean)):
        return _no_evidence(n, "constant out-of-sample returns (no trades or no variation)")
    return SharpeEvidence(
        n_returns=n,
        mean=mean,
        std=std,
        sharpe_per_bar=mean / std,
        skewness=float(skew(values, bias=False)),
        kurtosis=float(kurtosis(values, fisher=False, bias=False)),
    )


def _no_evidence(n: int, problem: str) -> SharpeEvidence:
    nan = math.nan
    return SharpeEvidence(n, nan, nan, nan, nan, nan, problem=problem)


def sharpe_standard_error(
    sharpe_per_bar: float, n_returns: int, *, skewness: float = 0.0, kurtosis: float = 3.0
) -> float:
    """Standard error of a per-bar Sharpe ratio from ``n_returns`` non-normal i.i.d. returns."""
    if n_returns < 2:
        raise ValueError(f"n_returns={n_returns} must be >= 2 for a standard error")
    sr = sharpe_per_bar
    variance = 1.0 - skewness * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    # The bracket is a variance ratio; with extreme skew it can dip below 0 in sample, where the
    # formula has no meaning: floor it at the normal case's leading term (1) to stay conservative
    return math.sqrt(max(variance, 1.0) / (n_returns - 1))


def probabilistic_sharpe_ratio(
    sharpe_per_bar: float,
    n_returns: int,
    *,
    benchmark_sharpe: float = 0.0,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """P(true Sharpe > ``benchmark_sharpe``) given the observed per-bar Sharpe ratio."""
    from scipy.stats import norm

    se = sharpe_standard_error(sharpe_per_bar, n_returns, skewness=skewness, kurtosis=kurtosis)
    return float(norm.cdf((sharpe_per_bar - benchmark_sharpe) / se))


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum of ``n_trials`` zero-mean Sharpe estimates with variance
    ``sharpe_variance`` (Bailey & López de Prado 2014, eq. 2; 0 for a single trial)."""
    from scipy.stats import norm

    if n_trials < 1:
        raise ValueError(f"n_trials={n_trials} must be >= 1")
    if not sharpe_variance >= 0.0:
        raise ValueError(f"sharpe_variance={sharpe_variance!r} must be >= 0")
    if n_trials == 1:
        return 0.0
    gamma = EULER_MASCHERONI
    quantiles = (1.0 - gamma) * norm.ppf(1.0 - 1.0 / n_trials) + gamma * norm.ppf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return float(math.sqrt(sharpe_variance) * quantiles)


def deflated_sharpe_ratio(
    sharpe_per_bar: float,
    n_returns: int,
    *,
    n_trials: int,
    sharpe_variance: float,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """PSR against the expected maximum Sharpe ratio of ``n_trials`` lucky trials."""
    benchmark = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(
        sharpe_per_bar,
        n_returns,
        benchmark_sharpe=benchmark,
        skewness=skewness,
        kurtosis=kurtosis,
    )
